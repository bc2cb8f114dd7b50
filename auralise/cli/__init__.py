"""The ``auralise`` command line: parse, call the library, report. Heavy imports happen inside commands.

One module per family of commands (``songs``: run, export, rank, tag; ``figures``; ``models``: import, inspect,
train; ``atlas``), ``options`` for the options they share and ``progress`` for progress on stderr (a bar on a
terminal, plain lines elsewhere). May import: anything (the command line is the top).
"""

from __future__ import annotations

import gc
import os
import signal
import sys
import warnings
from typing import NoReturn

# torch's OpenMP threads sleep as soon as a parallel region ends instead of spinning for a while: the cores go to the
# export's writer threads between convolutions (MTT_vgg's whole export 54 -> 49 s and 12 CPU-s less; the Choi demo
# model's 17.8 -> 16.9 s). Read when torch loads, which the commands do later; a value set by the user is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import click

from auralise.cli.options import COMMAND_LINE
from auralise.errors import AuraliseError, AuraliseWarning
from auralise.text import printable


class _DefaultGroup(click.Group):
    """A group whose default command is ``run``: ``auralise MODEL AUDIO ...`` means ``auralise run MODEL AUDIO``.

    Its ``--help`` shows the main command's usage and options too (``auralise COMMAND --help`` shows a command's).
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def format_usage(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_usage(ctx, formatter)
        run = self.commands.get("run")
        if run is not None:
            pieces = " ".join(run.collect_usage_pieces(click.Context(run, info_name=ctx.info_name)))
            formatter.write_usage(ctx.command_path, pieces, prefix="   or: ")

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The group's options, then the main command's (``run``), then the list of commands."""
        click.Command.format_options(self, ctx, formatter)
        run = self.commands.get("run")
        if run is not None:
            sub = click.Context(run, info_name=ctx.info_name)
            records = [
                record
                for param in run.get_params(sub)
                if isinstance(param, click.Option) and param.name != "help"
                for record in [param.get_help_record(sub)]
                if record is not None
            ]
            with formatter.section(f"Options of the main command ({ctx.command_path} MODEL AUDIO... = "
                                   f"{ctx.command_path} run MODEL AUDIO...)"):  # fmt: skip
                formatter.write_dl(records)
        self.format_commands(ctx, formatter)


@click.group(
    cls=_DefaultGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Main use:  auralise MODEL AUDIO --layer L --feature F   (same as `auralise run ...`). "
    "`auralise COMMAND --help` shows the options of COMMAND.",
)
@click.version_option(package_name="auralise", help="Show the version and exit.")
def cli() -> None:
    """Hear and see what each feature of a trained music CNN responds to (deconvnet auralisation)."""


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


_PYTHON_SHOWWARNING = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """auralise's own warnings as one ``warning:`` line; anything else as Python shows it."""
    if issubclass(category, AuraliseWarning):
        click.echo(f"warning: {printable(message)}", err=True)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


def _help_command(exc: click.ClickException) -> str:
    """The help that lists the options of the command a usage error is about: ``auralise export --help``..."""
    ctx = getattr(exc, "ctx", None)
    return f"{ctx.command_path if ctx is not None else 'auralise'} --help"


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and an exit code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)  # `kill` cleans up like Ctrl-C: temporary files go, targets stay
    warnings.showwarning = _show_warning
    COMMAND_LINE[:] = list(sys.argv[1:] if argv is None else argv)
    _PROCESS_COMMAND[0] = argv is None
    try:
        _run(argv)
    except SystemExit as exc:
        if argv is None:  # the process's own command: it ends here, and its objects with it
            _end_process(exc.code)
        raise


def _end_process(code) -> NoReturn:
    """End the process with the command's exit ``code`` (as ``sys.exit`` takes it) once its output is flushed.

    The command has finished or failed cleanly: its files are written and closed or removed, its thread pools joined,
    a Ray cluster it started shut down. What the interpreter's own ending would add is freeing every object torch and
    numba made and their libraries' destructors: 0.13-0.4 s of an export of 6-7 s."""
    if code is None:
        code = 0
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: as Python's own ending, 120 when it is stdout
            code = code or (120 if stream is sys.stdout else 0)
    os._exit(code)


_PROCESS_COMMAND = [False]  # whether main runs as the process's own command (argv from sys.argv)


def pause_collections() -> None:
    """No cyclic collections until :func:`keep_out_of_collections`, as the process's own command: while a command
    imports torch and loads the model, everything it makes lives on, and each collection would walk it all again
    (0.1-0.15 s of torch's import)."""
    if _PROCESS_COMMAND[0]:
        gc.disable()


def keep_out_of_collections(kept: bool) -> None:
    """A command's long-lived objects (torch's and numba's, the model, the song) out of the cyclic collector's
    sight while ``kept``, back in its sight after; only as the process's own command. Its full collections then
    stop walking ~280k objects each time (0.1 s each, a few in an export); what they hold becomes collectable
    again once the command moves on (a song's end), so nothing is kept longer than without. Collections paused by
    :func:`pause_collections` resume."""
    if _PROCESS_COMMAND[0]:
        gc.freeze() if kept else gc.unfreeze()
        gc.enable()


def _run(argv: list[str] | None) -> None:
    """:func:`main` without the exit's clean-up."""
    try:
        code = cli.main(args=argv, prog_name="auralise", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (KeyboardInterrupt) inside a command into Abort, even with standalone_mode=False
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("interrupted; no partial files were left" if interrupted else "aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted; no partial files were left", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        if type(exc).__name__ == "NoArgsIsHelpError":  # a group called bare (`auralise`): its help, as click shows it
            click.echo(exc.format_message(), err=True)
        else:
            click.echo(f"error: {exc.format_message()} (see `{_help_command(exc)}`)", err=True)
        sys.exit(exc.exit_code)
    except AuraliseError as exc:
        click.echo(f"error: {printable(exc)}", err=True)  # messages can quote text from a model file
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


from auralise.cli import atlas, figures, models, songs  # noqa: E402, F401 - the commands register themselves
