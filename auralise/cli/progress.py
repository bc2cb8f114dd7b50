"""Progress on stderr for long commands: a bar on a terminal, plain lines anywhere else.

On a terminal (stderr is a TTY) one tqdm bar per task (a song of an export, the attribute study), the current
stage after it; finished tasks keep their bar, one line each. Anywhere else (a pipe, a file, a CI log) plain lines
only: no escape sequences, no carriage returns, and a bounded number of lines per task: the first report, one line
at every twentieth of the work, one at each new stage (at most :data:`STAGE_LINES` of those) and the last one.
The library reports through callbacks and never prints; the commands turn the callbacks into calls of
:meth:`ProgressDisplay.show`.
"""

from __future__ import annotations

import sys
import time

STEPS = 20  # plain lines: one at every twentieth of a task's work
STAGE_LINES = 20  # plain lines: at most this many more per task, at changes of stage


def duration_text(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``1 h 02 min``: an elapsed or estimated time for people."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def _columns(stream) -> int:
    """The width of the terminal ``stream`` is (0 when it reports none)."""
    import os

    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return 0


class ProgressDisplay:
    """Show the progress of one task after another on ``stream`` (default stderr).

    ``tty`` forces the kind (default: whether ``stream`` is a terminal); ``eta`` shows tqdm's time left on the bar
    (for work counted in equal units of time).
    """

    def __init__(self, *, stream=None, tty: bool | None = None, eta: bool = True, unit: str = "unit"):
        self.stream = sys.stderr if stream is None else stream
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.tty, self.eta, self.unit = tty, eta, unit
        self.title: str | None = None
        self.bar = None
        self.start = time.monotonic()
        self.next_step, self.stage, self.stage_lines, self.finished = 1, None, 0, False

    def show(self, title: str, done: float, total: float, stage: str) -> None:
        """Task ``title`` has done ``done`` of ``total`` units (``total`` 0: not known yet) and is at ``stage``."""
        if title != self.title:
            self._close_bar()
            if self.title is not None:  # the first task's time counts from the display's creation
                self.start = time.monotonic()
            self.title = title
            self.next_step, self.stage, self.stage_lines, self.finished = 1, None, 0, False
            first = True
        else:
            first = False
        if self.tty:
            self._draw(done, total, stage)
        else:
            self._line(done, total, stage, first)

    def note(self, text: str) -> None:
        """A line of text between the bars or lines (an estimate, a remark)."""
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self.stream.write(text + "\n")
            self.stream.flush()

    def close(self) -> None:
        self._close_bar()

    # -- a terminal ------------------------------------------------------------------------------------------------

    def _draw(self, done: float, total: float, stage: str) -> None:
        from tqdm import tqdm

        if self.bar is None:
            left = "<{remaining}" if self.eta else ""
            fixed = None if _columns(self.stream) else 100  # a terminal that reports no width gets 100 columns
            self.bar = tqdm(total=total or 1, desc=self.title, unit=self.unit, file=self.stream, ncols=fixed,
                            nrows=fixed and 24, dynamic_ncols=fixed is None, leave=True, position=0,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}" + left + "{postfix}")  # fmt: skip
        if total and self.bar.total != total:
            self.bar.total = total
        self.bar.n = done
        self.bar.set_postfix_str(stage, refresh=False)
        self.bar.refresh()

    def _close_bar(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    # -- anything else ---------------------------------------------------------------------------------------------

    def _line(self, done: float, total: float, stage: str, first: bool) -> None:
        share = min(1.0, done / total) if total else None
        step = int(share * STEPS) if share is not None else None
        last = share is not None and done >= total and (not self.finished or stage != self.stage)
        stepped = step is not None and step >= self.next_step
        changed = stage != self.stage and self.stage_lines < STAGE_LINES
        if not (first or last or stepped or changed):
            return
        if changed and not first:
            self.stage_lines += 1
        self.stage, self.finished = stage, self.finished or last
        if step is not None:
            self.next_step = max(self.next_step, step + 1)
        percent = f"{100 * share:3.0f}% " if share is not None else ""
        elapsed = duration_text(time.monotonic() - self.start)
        text = f"{self.title}: {percent}{stage} ({elapsed})"
        self.stream.write(text.replace("\r", " ").replace("\x1b", "") + "\n")
        self.stream.flush()


class TaskProgress:
    """A study's progress on stderr as one task ``title`` (``progress(done, total, stage)``); nothing with
    ``quiet``."""

    def __init__(self, title: str, quiet: bool):
        self.title, self.quiet, self.display = title, quiet, None

    def __enter__(self):
        return None if self.quiet else self

    def __call__(self, done: int, total: int, stage: str) -> None:
        if self.display is None:
            self.display = ProgressDisplay(eta=True, unit="feature")
        self.display.show(self.title, done, total, stage)

    def __exit__(self, *exc) -> None:
        if self.display is not None:
            self.display.close()
