"""Help, progress and the repository's ignore list (issue 16, items 4, 5, 6 and 10).

- Help: ``auralise --help`` shows the main command's usage and options; every option of every command says what
  it does; a usage error names the help of the command it is about.
- Progress: an export counts work (set-up, projections, files), names its stage, reaches its total, and prints
  plain lines (no escapes, no carriage returns, a bounded number) when stderr is not a terminal, a bar when it is;
  the library itself prints nothing.
- ``figure attributes``: an estimate before the bulk of the work, progress, ``--quick``, ``n_skipped`` explained.
- ``.gitignore`` covers what the README's commands write into a clone.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import soundfile as sf
from conftest import SR
from test_cli import assert_error, run_cli, run_ok

from auralise.cli import cli
from auralise.cli.progress import STAGE_LINES, STEPS, ProgressDisplay

REPO = Path(__file__).resolve().parents[1]
PLAIN_LINES_PER_TASK = 1 + STEPS + STAGE_LINES + 2  # first, one per step, stage changes, the last (two at most)


def _commands(command: click.Command, path: tuple[str, ...] = ("auralise",)):
    yield path, command
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            yield from _commands(sub, (*path, name))


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    from auralise.demo import synth

    path = tmp_path_factory.mktemp("songs") / "dance.wav"
    sf.write(path, synth.generate("dance", seconds=4.0, sr=SR, seed=1).mix, SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def long_song(tmp_path_factory) -> Path:
    from auralise.demo import synth

    path = tmp_path_factory.mktemp("songs") / "long.wav"
    sf.write(path, synth.generate("ballad", seconds=20.0, sr=SR, seed=3).mix, SR, subtype="PCM_16")
    return path


# ------------------------------------------------------------------------------------------------ 4. help


def test_main_help_shows_the_main_commands_usage_and_every_option(capsys):
    out, _ = run_ok(capsys, "--help")
    assert "auralise [OPTIONS] MODEL AUDIO..." in out  # the main command's usage, next to the group's
    assert "Options of the main command" in out and "Commands:" in out
    run = cli.commands["run"]
    for param in run.params:
        if isinstance(param, click.Option) and param.name != "help":
            assert param.opts[-1] in out, param.opts
            assert param.help and param.help.split()[0] in out, param.opts  # with its help text
    for name in cli.commands:
        assert f"  {name}  " in out or f"  {name} " in out, name
    assert "`auralise COMMAND --help`" in out.replace("\n  ", " ")
    # a command's own help stays its own
    out, _ = run_ok(capsys, "export", "--help")
    assert out.startswith("Usage: auralise export [OPTIONS] MODEL AUDIO...") and "--layer L" not in out
    out, _ = run_ok(capsys, "run", "--help")
    assert out.startswith("Usage: auralise run [OPTIONS] MODEL AUDIO...") and "Commands:" not in out
    # bare `auralise` (or a bare group) shows its help, without an error line around it
    for args, usage in ((), "Usage: auralise [OPTIONS] COMMAND"), (("figure",), "Usage: auralise figure [OPTIONS]"):
        code, out, err = run_cli(capsys, *args)
        assert code == 2 and out == "" and err.startswith(usage) and "error:" not in err and "(see `" not in err


def test_every_option_of_every_command_has_help():
    missing = []
    for path, command in _commands(cli):
        assert (command.help or "").strip(), f"{' '.join(path)} has no description"
        for param in command.params:
            if isinstance(param, click.Option) and not (param.help or "").strip():
                missing.append(f"{' '.join(path)} {param.opts[0]}")
    assert not missing, missing


@pytest.mark.parametrize(
    "args, help_command",
    [
        (["export", "model.pt", "song.wav"], "auralise export --help"),  # --out missing
        (["model.pt"], "auralise run --help"),  # the main command, called without its name
        (["model.pt", "song.wav", "--layer", "1", "--feature", "0", "--bogus"], "auralise run --help"),
        (["figure", "grid", "model.pt", "song.wav", "--out", "x.png"], "auralise figure grid --help"),
        (
            ["figure", "attributes", "model.pt", "--out", "x.png", "--width", "1", "--quick", "--bogus"],
            "auralise figure attributes --help",
        ),  # fmt: skip
        (["figure", "nothing"], "auralise figure --help"),
        (["rank", "model.pt", "song.wav", "--top", "0"], "auralise rank --help"),
        (["bogus", "--help-me"], "auralise run --help"),  # not a command: the main command's arguments
    ],
)
def test_usage_errors_name_the_help_of_their_command(capsys, args, help_command):
    code, out, err = run_cli(capsys, *args)
    line = assert_error(code, err, 2)
    assert line.endswith(f"(see `{help_command}`)"), line
    assert out == ""


# ------------------------------------------------------------------------------------------------ 5. progress


def _export_calls(model, songs, out, **kwargs) -> list[tuple]:
    from auralise.listening.export import ExportOptions, export

    calls: list[tuple] = []
    options = ExportOptions(layers="1,4", features=kwargs.pop("features", "0-2"))
    export(model, songs, out, options=options, progress=lambda *a: calls.append(a), **kwargs)
    return calls


def _check_work(calls: list[tuple], song_ids: list[str]) -> dict[str, list[tuple]]:
    """Per song: the work done never goes back, the total never changes once known, the last call is (total,
    total, 'done'); the stages come in pipeline order."""
    per_song = {s: [c[1:] for c in calls if c[0] == s] for s in song_ids}
    assert [c[0] for c in calls] == sorted((c[0] for c in calls), key=song_ids.index)  # one song after the other
    for s, reports in per_song.items():
        assert reports[0] == (0, 0, "loading"), s
        done = [d for d, _, _ in reports]
        assert done == sorted(done), s
        totals = {t for _, t, _ in reports if t}
        assert len(totals) == 1, totals
        total = totals.pop()
        assert reports[-1] == (total, total, "done"), reports[-1]
        stages = [stage for _, _, stage in reports]
        order = ["loading", "forward pass", "projecting", "writing", "done"]
        first = [next((i for i, st in enumerate(stages) if st.startswith(o)), None) for o in order]
        assert first[2] is not None or done[2] == total, stages  # nothing projected only when all was done before
        present = [i for i in first if i is not None]
        assert present == sorted(present) and None not in (first[0], first[1], first[3], first[4]), stages
    return per_song


def test_export_reports_work_and_stages_and_reaches_the_total(capsys, tmp_path, choi_model, song, long_song):
    calls = _export_calls(choi_model, [song, long_song], tmp_path / "a")
    per_song = _check_work(calls, ["dance", "long"])
    stages = {stage for _, _, stage in per_song["dance"]}
    assert {"projecting layer 1", "projecting layer 4", "resynthesising layer 1", "writing"} <= stages
    # the work is the features' (3 per layer): projection 4 units, files 1 unit each, and the set-up
    from auralise.listening.song_export import Work

    assert per_song["dance"][-1][1] == Work(6).total() == 6 * 5 + max(32, 6 * 5 // 8)
    # the projection is counted as it happens, before any file of its layer is written
    layer4 = [d for d, _, stage in per_song["dance"] if stage == "projecting layer 4"]
    assert layer4[-1] > layer4[0]
    assert capsys.readouterr() == ("", "")  # the library says nothing itself

    # a resumed export counts the finished items as work done at once
    calls = _export_calls(choi_model, [song], tmp_path / "a", resume=True)
    reports = _check_work(calls, ["dance"])["dance"]
    assert [r for r in reports if r[2] != "loading"][1][0] == reports[-1][1]

    # a song projected in chunks reports every chunk; one streamed segment by segment reports every group
    calls = _export_calls(choi_model, [long_song], tmp_path / "chunked", memory_budget=60_000_000)
    stages = [stage for _, _, stage in _check_work(calls, ["long"])["long"]]
    parts = [st for st in stages if re.fullmatch(r"projecting layer [14], part \d of \d", st)]
    assert len(set(parts)) >= 4, stages
    calls = _export_calls(choi_model, [song], tmp_path / "streamed", memory_budget=500_000)
    stages = [stage for _, _, stage in _check_work(calls, ["dance"])["dance"]]
    assert "projecting and resynthesising layer 4 (streamed)" in stages


def test_piped_export_prints_plain_lines_naming_the_stages(tmp_path, choi_model, song, long_song):
    cmd = [sys.executable, "-m", "auralise.cli", "export", choi_model, song, long_song, "--out", tmp_path / "x",
           "--layers", "1,4", "--features", "0-7"]  # fmt: skip
    proc = subprocess.run(list(map(str, cmd)), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr
    assert b"\x1b" not in err and b"\r" not in err and b"\x08" not in err
    lines = err.decode().splitlines()
    assert lines[-1].startswith("long [2/2 songs]: 100% done ("), lines
    for song_id, number in (("dance", 1), ("long", 2)):
        mine = [line for line in lines if line.startswith(f"{song_id} [{number}/2 songs]: ")]
        assert 5 <= len(mine) <= PLAIN_LINES_PER_TASK, mine
        text = "\n".join(mine)
        for stage in ("loading", "forward pass", "projecting layer 1", "projecting layer 4", "done"):
            assert f"% {stage} (" in text or f": {stage} (" in text, (stage, text)
        percents = [int(m) for m in re.findall(r": +(\d+)% ", text)]
        assert percents == sorted(percents) and percents[-1] == 100
    assert json.loads((tmp_path / "x" / "manifest.json").read_text())["songs"][1]["id"] == "long"


def test_quiet_export_prints_no_progress(capsys, tmp_path, choi_model, song):
    out, err = run_ok(capsys, "export", choi_model, song, "--out", tmp_path / "q", "--layers", "1", "--features",
                      "0", "--quiet")  # fmt: skip
    assert err == "" and "wrote 1 features" in out


def _on_a_terminal(args: list, cwd: Path, columns: int = 100) -> tuple[int, bytes]:
    """Run ``python -m auralise.cli ARGS`` with stderr on a pseudo-terminal of ``columns`` columns (0: one that
    reports no size); return the exit code and what the terminal received."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    if columns:
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "auralise.cli", *map(str, args)], cwd=cwd, stderr=slave,
                            stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)  # fmt: skip
    os.close(slave)
    received = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the other end is closed
            break
        if not data:
            break
        received.append(data)
    os.close(master)
    return proc.wait(timeout=300), b"".join(received)


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
@pytest.mark.parametrize("columns", [100, 0])
def test_export_on_a_terminal_draws_a_bar(tmp_path, choi_model, song, columns):
    code, screen = _on_a_terminal(["export", choi_model, song, "--out", tmp_path / "t", "--layers", "1,4",
                                   "--features", "0-3"], tmp_path, columns)  # fmt: skip
    assert code == 0, screen
    text = screen.decode("utf-8", "replace")
    assert "\r" in text and "%|" in text and "█" in text  # a bar redrawn in place
    assert "dance [1/1 songs]: 100%|" in text and "projecting layer 4" in text and text.rstrip().endswith("done")
    assert "\x1b[A" not in text  # one bar at a time: no cursor moves between nested bars


def test_progress_display_draws_bars_on_a_terminal_and_bounded_plain_lines_elsewhere():
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    display = ProgressDisplay(stream=screen, eta=True)
    assert display.tty
    for i in range(11):
        display.show("task", i, 10, "stage")
    display.note("a remark")
    display.show("next", 1, 2, "other stage")
    display.close()
    text = screen.getvalue()
    assert "\r" in text and "task: 100%|" in text and "a remark\n" in text and "next:  50%|" in text
    assert "other stage" in text and "<" in text  # time left shown with eta

    plain = io.StringIO()
    display = ProgressDisplay(stream=plain)
    assert not display.tty
    for title in ("one", "two"):
        display.show(title, 0, 0, "loading")
        for i in range(5001):
            display.show(title, i, 5000, f"stage {i // 7}\r\x1b[A")  # hostile stage text, changing all the time
    display.close()
    lines = plain.getvalue().splitlines()
    for title in ("one", "two"):
        mine = [line for line in lines if line.startswith(f"{title}: ")]
        assert len(mine) <= PLAIN_LINES_PER_TASK, len(mine)
        assert mine[0].startswith(f"{title}: loading (") and mine[-1].startswith(f"{title}: 100% stage 714")
    assert "\r" not in plain.getvalue() and "\x1b" not in plain.getvalue()


# ------------------------------------------------------------------------------------------------ 6. figure attributes


def test_attributes_quick_with_estimate_progress_and_n_skipped_explained(capsys, tmp_path, choi_model):
    from auralise.choices import QUICK_ATTRIBUTES
    from auralise.studies.attributes import AttributeTable

    png, csv_path = tmp_path / "fig10.png", tmp_path / "fig10.csv"
    out, err = run_ok(capsys, "figure", "attributes", choi_model, "--quick", "--out", png, "--csv", csv_path)
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    estimate = [line for line in lines if "about" in line]
    assert len(estimate) == 1, lines
    assert re.fullmatch(r"attribute study: 8 signals x 40 features; about \d+ s in all, \d+ s left \(measured on the "
                        r"first signal, which took \d+ s\)", estimate[0]), estimate  # fmt: skip
    assert lines.index(estimate[0]) == 0  # before any progress
    progress = [line for line in lines if line not in estimate]
    assert progress[-1].startswith("attribute study: 100% deconvolving model signals (")
    assert len(progress) <= PLAIN_LINES_PER_TASK
    assert "n_skipped: (signal pair, feature) values left out because the feature is silent" in out
    table = AttributeTable.from_csv(csv_path)
    # the quick design: 2 values of each attribute, so 4 pairs differ in each attribute; 8 features per layer
    assert all(len(v) == 2 for v in QUICK_ATTRIBUTES.values())
    assert all(r.n_pairs + r.n_skipped == 4 * 8 for r in table.rows) and len(table.rows) == 15
    assert png.stat().st_size > 10_000
    help_text, _ = run_ok(capsys, "figure", "attributes", "--help")
    help_text = " ".join(help_text.split())
    assert "--quick" in help_text and "instruments sine, piano; chords major, minor; keys Bb2, G4" in help_text
    from auralise.studies.attributes import DEFAULT_CHORDS, DEFAULT_INSTRUMENTS, DEFAULT_KEYS

    for default in (DEFAULT_INSTRUMENTS, DEFAULT_CHORDS, DEFAULT_KEYS):  # the defaults the help names are the real ones
        assert f"[default: {', '.join(default)}]" in help_text, default

    # --quick chooses its own design; nothing is computed or written when it is given one too
    code, _, err = run_cli(capsys, "figure", "attributes", choi_model, "--quick", "--keys", "A3,G4", "--out",
                           tmp_path / "no.png")  # fmt: skip
    assert_error(code, err, 2, "--quick", "--keys")
    assert not (tmp_path / "no.png").exists()
    out, err = run_ok(capsys, "figure", "attributes", choi_model, "--quick", "--out", tmp_path / "q.png", "--quiet")
    assert err == ""


def test_study_estimate_is_measured_on_the_first_signal_before_the_others(choi_model):
    import auralise
    from auralise.studies.attributes import attribute_study

    events: list = []
    design = {"instruments": ("sine", "piano"), "chords": ("major", "minor"), "keys": ("A3", "G4")}
    per_feature = 8 * 257 * 173 * 4
    table = attribute_study(auralise.load_model(choi_model), memory_budget=14 * per_feature, **design,
                            progress=lambda d, t: events.append((d, t)), estimate=events.append)  # fmt: skip
    e = events[0]  # before any progress
    assert events[1:] == [(d, 24) for d in range(1, 25)]
    assert (e.signals, e.features, e.passes, len(e.units)) == (8, 40, 3, 24) and table.meta["passes"] == 3
    assert 0 < e.first_s < e.seconds and all(u > 0 for u in e.units)
    for p in range(3):  # one estimate per pass (14, 14 and 12 features: layers 1-2, 2-4, 4-5)
        assert len(set(e.units[8 * p : 8 * p + 8])) == 1
    assert e.left == pytest.approx(sum(e.units) - sum(e.units[::8]))  # the first signal of every pass is done


# ------------------------------------------------------------------------------------------------ 10. .gitignore


def test_gitignore_covers_what_the_readme_commands_write():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("git, or the repository's .git, is not available")
    written = [
        "auralised/choi2016-synth/dance/layer3_feature38.wav",
        "listening/index.html",
        "listening-musicnn/manifest.json",
        "atlas/atlas.json",
        "shard-1/.atlas/state.json",
        "models/MTT_musicnn.pt",
        "models/MSD_vgg.pt",
        "musicnn-dance.png",
        "fig10.pdf",
        "fig.svg",
        "fig10.csv",
        "build/lib/auralise/__init__.py",
        "auralise.egg-info/PKG-INFO",
    ]
    shipped = ["models/choi2016-synth.pt", "models/pons-synth.pt", "docs/atlas-page.png", "demo_audio/dance.ogg"]

    def ignored(path: str) -> bool:
        proc = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, timeout=30)
        assert proc.returncode in (0, 1), proc
        return proc.returncode == 0

    assert [p for p in written if not ignored(p)] == []
    assert [p for p in shipped if ignored(p)] == []
    tracked = subprocess.run(["git", "ls-files", "models", "docs"], cwd=REPO, capture_output=True, text=True).stdout
    assert "models/choi2016-synth.pt" in tracked.split()
