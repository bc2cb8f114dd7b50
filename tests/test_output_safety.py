"""Output safety: what --force may delete, what --resume may trust, what may be overwritten, one-line failures on
full or read-only disks, a failed start leaving nothing, and one export per folder at a time."""

from __future__ import annotations

import builtins
import errno
import io
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_cli import assert_error, run_cli, run_ok

from auralise.errors import OutputError
from auralise.figures.display import new_figure, save_figure
from auralise.io.audio import write_audio
from auralise.io.files import LOCK_NAME, atomic_path, check_output_file, folder_lock
from auralise.listening.export import JOURNAL, Journal, remove_export
from auralise.listening.song_export import SongExport

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "choi2016-synth.pt"
SR = 11025


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    """Four seconds of the dance demo at the model's rate (no resampling note, quick exports)."""
    from auralise.io.audio import load_audio

    y, _ = load_audio(ROOT / "demo_audio" / "dance.ogg", sr=SR)
    path = tmp_path_factory.mktemp("song") / "dance.wav"
    sf.write(path, y[: 4 * SR], SR, subtype="PCM_16")
    return path


def export_args(song: Path, out: Path, *extra: object) -> list[object]:
    return ["export", MODEL, song, "--out", out, "--layers", "1", "--features", "0,1", "--quiet", *extra]


def snapshot(folder: Path) -> dict[str, object]:
    """Every entry under ``folder`` (hidden ones too), without following links: kind and content."""
    out: dict[str, object] = {}
    for p in sorted(folder.rglob("*")):
        st = os.lstat(p)
        rel = str(p.relative_to(folder))
        if stat.S_ISLNK(st.st_mode):
            out[rel] = ("link", os.readlink(p))
        elif stat.S_ISREG(st.st_mode):
            out[rel] = ("file", p.read_bytes())
        else:
            out[rel] = ("dir" if stat.S_ISDIR(st.st_mode) else "special", None)
    return out


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


def one_line_error(callable_, *args, **kwargs) -> str:
    with pytest.raises(OutputError) as info:
        callable_(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


def manifest_items(out: Path) -> list[dict]:
    return [item for s in json.loads((out / "manifest.json").read_text())["songs"] for item in s["items"]]


# --------------------------------------------------------------------------- 1. --force deletes only its own files


def test_force_never_deletes_what_a_planted_manifest_names(capsys, tmp_path, song):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious.txt").write_text("mine")
    (victim / "original.wav").write_bytes(b"not the export's")
    absolute = tmp_path / "abs"
    absolute.mkdir()
    (absolute / "layer1_feature0.wav").write_bytes(b"also mine")
    out = tmp_path / "out"
    run_ok(capsys, *export_args(song, out))
    (out / "dance" / "keep.txt").write_text("my notes")
    (out / "dance" / "mine").mkdir()
    (out / "dance" / "mine" / "layer1_feature0.wav").write_bytes(b"a folder of mine")
    (out / "linked").symlink_to(victim, target_is_directory=True)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["songs"] += [{"id": i} for i in ("../victim", str(absolute), "linked", ".", "..", "", "dance/mine")]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with open(out / JOURNAL, "a") as f:
        f.write(json.dumps({"song": "../victim", "layer": 1, "feature": 0}) + "\n")
    before_victim, before_abs = snapshot(victim), snapshot(absolute)

    run_ok(capsys, *export_args(song, out, "--force"))
    assert snapshot(victim) == before_victim and snapshot(absolute) == before_abs
    assert (out / "dance" / "keep.txt").read_text() == "my notes"
    assert (out / "dance" / "mine" / "layer1_feature0.wav").read_bytes() == b"a folder of mine"
    assert (out / "linked").is_symlink()
    assert (out / "dance" / "layer1_feature0.wav").is_file() and not (out / LOCK_NAME).exists()


def test_remove_export_removes_the_layout_and_empty_song_folders_only(tmp_path):
    out = tmp_path / "out"
    (out / "a").mkdir(parents=True)
    for name in ("original.wav", "original.png", "layer2_feature3.wav", "layer2_feature3.png",
                 "layer2_feature3_figure.png", ".layer2_feature3.0123abcd.part.wav"):  # fmt: skip
        (out / "a" / name).write_bytes(b"x")
    (out / "b").mkdir()
    (out / "b" / "original.wav").write_bytes(b"x")
    (out / "b" / "cover.jpg").write_bytes(b"mine")
    (out / "empty").mkdir()  # an empty folder it did not write in
    for name in (JOURNAL, "manifest.json", "index.html", ".manifest.0123abcd.part.json", "README.txt"):
        (out / name).write_text("{}")
    (out / "manifest.json").write_text(json.dumps({"songs": [{"id": "a"}, {"id": "b"}, {"id": "empty"}]}))
    remove_export(out)
    assert snapshot(out) == {"README.txt": ("file", b"{}"), "b": ("dir", None), "b/cover.jpg": ("file", b"mine"),
                             "empty": ("dir", None)}  # fmt: skip


def test_force_refuses_a_song_folder_that_is_a_link(capsys, tmp_path, song):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "original.wav").write_bytes(b"mine")
    out = tmp_path / "out"
    out.mkdir()
    (out / "dance").symlink_to(elsewhere, target_is_directory=True)
    before = snapshot(tmp_path)
    code, _, err = run_cli(capsys, *export_args(song, out, "--force"))
    assert_error(code, err, 2, str(out / "dance"), "symbolic link")
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------- 2. --resume checks the journal


def test_resume_redoes_forged_and_linked_records(capsys, tmp_path, song):
    out = tmp_path / "out"
    run_ok(capsys, *export_args(song, out))
    outside = tmp_path / "outside.wav"
    shutil.copy(out / "dance" / "layer1_feature1.wav", outside)
    outside_bytes = outside.read_bytes()
    lines = (out / JOURNAL).read_text().splitlines()
    records = [json.loads(line) for line in lines[1:]]
    assert [(r["layer"], r["feature"]) for r in records] == [(1, 0), (1, 1)]
    records[0]["wav"] = "../../../../etc/hostname"
    (out / JOURNAL).write_text("\n".join([lines[0], *map(json.dumps, records)]) + "\n")
    (out / "dance" / "layer1_feature1.wav").unlink()
    (out / "dance" / "layer1_feature1.wav").symlink_to(outside)
    (out / "manifest.json").unlink()

    run_ok(capsys, *export_args(song, out, "--resume"))
    items = manifest_items(out)
    assert [i["wav"] for i in items] == ["dance/layer1_feature0.wav", "dance/layer1_feature1.wav"]
    assert "hostname" not in (out / "manifest.json").read_text() + (out / "index.html").read_text()
    wav = out / "dance" / "layer1_feature1.wav"
    assert not wav.is_symlink() and wav.is_file() and sf.info(wav).samplerate == SR  # redone, in place
    assert outside.read_bytes() == outside_bytes
    journal = [json.loads(line) for line in (out / JOURNAL).read_text().splitlines()[1:]]
    assert len(journal) == 4  # both items were written again


def test_journal_trusts_only_records_of_its_own_layout(tmp_path):
    out = tmp_path / "out"
    (out / "dance").mkdir(parents=True)
    (out / "elsewhere").mkdir()
    for name in ("layer1_feature0.wav", "layer1_feature0.png", "layer1_feature1.png"):
        (out / "dance" / name).write_bytes(b"x")
    (out / "elsewhere" / "layer1_feature1.wav").write_bytes(b"x")
    (out / "dance" / "layer1_feature1.wav").symlink_to(out / "elsewhere" / "layer1_feature1.wav")
    (out / "linked").symlink_to(out / "dance", target_is_directory=True)
    header = {"format": "auralise-journal", "model": "m", "figures": False}
    good = {"song": "dance", "layer": 1, "feature": 0, "wav": "dance/layer1_feature0.wav",
            "png": "dance/layer1_feature0.png", "figure": None, "activation_max": 1.0, "activation_energy": 2.0,
            "rank": 1, "silent": False, "gain": 0.5}  # fmt: skip
    bad = [
        {**good, "wav": "../../../../etc/hostname"},
        {**good, "wav": "dance/layer1_feature0.png"},
        {**good, "png": "/etc/hostname"},
        {**good, "layer": "1"},
        {**good, "feature": True},
        {**good, "feature": 0.0},
        {**good, "song": "../dance", "wav": "../dance/layer1_feature0.wav", "png": "../dance/layer1_feature0.png"},
        {**good, "song": "linked", "wav": "linked/layer1_feature0.wav", "png": "linked/layer1_feature0.png"},
        {**good, "figure": "dance/layer1_feature0_figure.png"},
        {**good, "gain": float("nan")},
        {**good, "rank": "1"},
        {**good, "activation_max": 10**400},  # JSON allows it; no float holds it
        {**good, "seeds": [{"time": 10**400}]},
        {**good, "seeds": "x"},
        {**good, "seeds": [{"unit": [0, "1"], "activation": 1.0, "time": None, "time_in_file": None, "hz": None}]},
        {**good, "seeds": [{"unit": [0, 1], "activation": 1.0, "time": float("nan"), "time_in_file": 0, "hz": None}]},
        {**good, "feature": 1, "wav": "dance/layer1_feature1.wav", "png": "dance/layer1_feature1.png"},  # a link
        {**good, "feature": 2, "wav": "dance/layer1_feature2.wav", "png": "dance/layer1_feature2.png"},  # missing
        ["not", "a", "record"],
    ]
    journal = Journal(out / JOURNAL, header)
    (out / JOURNAL).write_text("\n".join(json.dumps(r) for r in [header, *bad]) + "\n")
    assert journal.finished() == {}
    (out / JOURNAL).write_text("\n".join(json.dumps(r) for r in [header, *bad, good]) + "\n")
    assert journal.finished() == {("dance", 1, 0): good}
    seeds = [{"unit": [0, 3, 7], "activation": 2.5, "time": 1.25, "time_in_file": 4.25, "hz": None}]
    extra = {**good, "seeds": seeds, "retention": 10**400, "page": "<script>"}  # only an export's own fields stay
    (out / JOURNAL).write_text("\n".join([json.dumps(header), "[" * 100_000, json.dumps(extra)]) + "\n")
    assert journal.finished() == {("dance", 1, 0): {**good, "seeds": seeds}}


@pytest.mark.parametrize("name,flag", [(JOURNAL, "--resume"), (JOURNAL, "--force"), ("manifest.json", "--force"),
                                       (LOCK_NAME, "--resume")])  # fmt: skip
def test_json_nested_too_deeply_is_malformed_json(capsys, tmp_path, song, name, flag):
    """A file auralise reads back holding JSON nested deeper than the parser goes (its RecursionError): it is
    malformed like any other, so the export starts over or takes the lock over, without a traceback."""
    out = tmp_path / "out"
    run_ok(capsys, *export_args(song, out))
    (out / name).write_text("[" * 60_000 + "\n")
    if name == LOCK_NAME:
        os.utime(out / name, (time.time() - 60, time.time() - 60))  # not a lock being written right now
    run_ok(capsys, *export_args(song, out, flag))
    assert len(manifest_items(out)) == 2 and not (out / LOCK_NAME).exists()


# --------------------------------------------------------------------------- 3. never onto links, devices, FIFOs


def test_atomic_writes_refuse_links_and_special_files(tmp_path):
    real = tmp_path / "real.wav"
    real.write_bytes(b"keep")
    link = tmp_path / "link.wav"
    link.symlink_to(real)
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.png"
    folder.mkdir()
    (tmp_path / "link.png").symlink_to(real)
    before = snapshot(tmp_path)
    for target in (link, fifo):
        assert "refusing to write" in one_line_error(write_audio, target, np.zeros(100, dtype=np.float32), SR)
    assert "symbolic link" in one_line_error(check_output_file, link, force=True)
    assert "FIFO" in one_line_error(check_output_file, fifo, force=True)
    fig = new_figure()
    assert "folder" in one_line_error(save_figure, fig, folder)
    assert "symbolic link" in one_line_error(save_figure, fig, tmp_path / "link.png")
    with pytest.raises(OutputError, match="symbolic link"):
        with atomic_path(link) as tmp:
            tmp.write_bytes(b"new")
    assert snapshot(tmp_path) == before and stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_atomic_path_refuses_a_link_that_appears_while_writing(tmp_path):
    real = tmp_path / "real.txt"
    real.write_text("keep")
    final = tmp_path / "out.txt"
    with pytest.raises(OutputError, match="symbolic link"):
        with atomic_path(final) as tmp:
            tmp.write_text("new")
            final.symlink_to(real)
    assert real.read_text() == "keep" and final.is_symlink() and not part_files(tmp_path)


def test_receptive_field_refuses_links_fifos_and_devices(capsys, tmp_path):
    real = tmp_path / "real.md"
    real.write_text("keep")
    (tmp_path / "link.md").symlink_to(real)
    os.mkfifo(tmp_path / "fifo.md")
    before = snapshot(tmp_path)
    for name, phrase in (("link.md", "symbolic link"), ("fifo.md", "FIFO")):
        for force in ([], ["--force"]):
            code, out, err = run_cli(capsys, "figure", "receptive-field", MODEL, "--out", tmp_path / name, *force)
            assert_error(code, err, 2, "refusing to write", name, phrase)
    assert snapshot(tmp_path) == before


def test_receptive_field_never_replaces_a_device(capsys, tmp_path):
    """``--out`` naming a character device, with --force: refused, the device stays. The device is a node like
    /dev/null made in tmp_path, so that a regression replaces that node rather than the system's /dev/null."""
    null = tmp_path / "null"
    try:
        os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (OSError, AttributeError) as exc:
        pytest.skip(f"cannot make a device node here: {exc}")
    before = os.lstat(null)
    code, _, err = run_cli(capsys, "figure", "receptive-field", MODEL, "--out", null, "--force")
    assert_error(code, err, 2, str(null), "character device")
    after = os.lstat(null)
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["null"]


def test_figure_grid_refuses_a_link_before_any_work(capsys, tmp_path, song):
    real = tmp_path / "real.png"
    real.write_bytes(b"keep")
    (tmp_path / "fig.png").symlink_to(real)
    code, _, err = run_cli(capsys, "figure", "grid", MODEL, song, "--features", "1-0", "--out", tmp_path / "fig.png",
                           "--force")  # fmt: skip
    assert_error(code, err, 2, "symbolic link", "fig.png")
    assert (tmp_path / "fig.png").is_symlink() and real.read_bytes() == b"keep"


# --------------------------------------------------------------------------- 4. one-line failures


@pytest.mark.parametrize("memory", ["inf", "nan", "-1", "0", "1e300", "1e-12"])
def test_memory_must_be_a_positive_finite_size(capsys, tmp_path, song, memory):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, *export_args(song, out, "--memory", memory))
    assert_error(code, err, 2, "--memory", "GiB")
    assert not out.exists()


def test_export_into_a_device_is_refused(capsys, tmp_path, song):
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full")
    code, _, err = run_cli(capsys, *export_args(song, Path("/dev/full")))
    assert_error(code, err, 2, "/dev/full", "not a folder")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def _is_write(mode: str | int) -> bool:
    if isinstance(mode, int):
        return bool(mode & (os.O_WRONLY | os.O_RDWR | os.O_CREAT))
    return any(c in mode for c in "wax+")


def simulate_read_only(monkeypatch, folder: Path) -> None:
    """Opening anything under ``folder`` for writing fails with EROFS, as on a read-only mount (root included)."""
    real_open, real_os_open = builtins.open, os.open

    def inside(path) -> bool:
        return isinstance(path, str | os.PathLike) and Path(os.path.abspath(path)).is_relative_to(folder)

    def fake_open(file, mode="r", *args, **kwargs):
        if inside(file) and _is_write(mode):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(file))
        return real_open(file, mode, *args, **kwargs)

    def fake_os_open(path, flags, *args, **kwargs):
        if inside(path) and _is_write(flags):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_os_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(os, "open", fake_os_open)


class _FullFile:
    """A file on a full disk: opening works, every write fails with ENOSPC."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def writelines(self, lines):
        self.write(b"")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


def simulate_full_disk(monkeypatch, folder: Path, fails) -> None:
    """Writes of files under ``folder`` for which ``fails(name)`` is true hit a full disk: Python's file writes
    raise ENOSPC, libsndfile's fail with its errno-less "System error", and statvfs reports no free blocks."""
    real_open, real_sf_write, real_statvfs, real_sf_file_write = builtins.open, sf.write, os.statvfs, sf.SoundFile.write

    def inside(path) -> bool:
        return isinstance(path, str | os.PathLike) and Path(os.path.abspath(path)).is_relative_to(folder)

    def fake_open(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        return _FullFile(f) if inside(file) and _is_write(mode) and fails(Path(file).name) else f

    def fake_sf_write(file, *args, **kwargs):
        if inside(file) and fails(Path(file).name):
            with real_open(file, "wb") as f:
                f.write(b"RIFF")  # libsndfile got this far
            raise sf.LibsndfileError(2)  # SFE_SYSTEM: "System error."
        return real_sf_write(file, *args, **kwargs)

    def fake_sf_file_write(self, data):
        if inside(self.name) and fails(Path(self.name).name):
            raise sf.LibsndfileError(2)
        return real_sf_file_write(self, data)

    def fake_statvfs(path):
        r = real_statvfs(path)
        if not inside(path):
            return r
        return os.statvfs_result((r.f_bsize, r.f_frsize, r.f_blocks, 0, 0, r.f_files, r.f_ffree, r.f_favail,
                                  r.f_flag, r.f_namemax))  # fmt: skip

    monkeypatch.setattr(builtins, "open", fake_open)
    monkeypatch.setattr(io, "open", fake_open)
    monkeypatch.setattr(sf, "write", fake_sf_write)
    monkeypatch.setattr(sf.SoundFile, "write", fake_sf_file_write)
    monkeypatch.setattr(os, "statvfs", fake_statvfs)


def assert_disk_full(code: int, err: str, target: Path) -> None:
    line = assert_error(code, err, 2, f"cannot write {target}:", "no space left on device", "free some space")
    assert ".part" not in line, line


def test_receptive_field_and_grid_into_a_read_only_folder(capsys, monkeypatch, tmp_path, song):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "old.txt").write_text("keep")
    simulate_read_only(monkeypatch, ro)
    code, _, err = run_cli(capsys, "figure", "receptive-field", MODEL, "--out", ro / "x.md")
    assert_error(code, err, 2, str(ro / "x.md"), "read-only")
    code, _, err = run_cli(capsys, "figure", "grid", MODEL, song, "--features", "1-0", "--out", ro / "x.pdf")
    line = assert_error(code, err, 2, str(ro))
    assert "read-only" in line.lower(), line
    code, _, err = run_cli(capsys, *export_args(song, ro / "set"))
    assert_error(code, err, 2, str(ro / "set"))
    monkeypatch.undo()
    assert snapshot(ro) == {"old.txt": ("file", b"keep")}


def test_receptive_field_and_grid_on_a_full_disk(capsys, monkeypatch, tmp_path, song):
    simulate_full_disk(monkeypatch, tmp_path, lambda name: ".part." in name)
    code, _, err = run_cli(capsys, "figure", "receptive-field", MODEL, "--out", tmp_path / "x.md")
    assert_disk_full(code, err, tmp_path / "x.md")
    for ext in ("pdf", "png"):
        code, _, err = run_cli(capsys, "figure", "grid", MODEL, song, "--features", "1-0", "--out",
                               tmp_path / f"x.{ext}")  # fmt: skip
        assert_disk_full(code, err, tmp_path / f"x.{ext}")
    monkeypatch.undo()
    assert snapshot(tmp_path) == {}


def test_write_audio_on_a_full_disk_names_the_file(monkeypatch, tmp_path):
    simulate_full_disk(monkeypatch, tmp_path, lambda name: True)
    message = one_line_error(write_audio, tmp_path / "a.wav", np.zeros(1000, dtype=np.float32), SR)
    assert message.startswith(f"cannot write {tmp_path / 'a.wav'}: no space left on device")
    monkeypatch.undo()
    assert snapshot(tmp_path) == {}


def temp_of(stem: str, ext: str):
    """Whether a file name is a temporary file (atomic_path's) of ``stem.ext``."""
    return lambda name: name.startswith(f".{stem}.") and name.endswith(f".part.{ext}")


# (which write fails, the file the message must name, whether an item was finished before it, extra options);
# --memory 0.001 streams the song (auralise.render.streaming: raw temporary files, then soundfile.SoundFile writes)
STREAMED = ("--memory", "0.001")
FULL_DISK_CASES = {
    "journal header": (temp_of(".auralise-journal", "jsonl"), JOURNAL, False, ()),
    "original wav": (temp_of("original", "wav"), "dance/original.wav", False, ()),
    "original png": (temp_of("original", "png"), "dance/original.png", False, ()),
    "feature wav": (temp_of("layer1_feature1", "wav"), "dance/layer1_feature1.wav", None, ()),
    "journal append": (lambda name: name == JOURNAL, JOURNAL, False, ()),
    "manifest": (temp_of("manifest", "json"), "manifest.json", True, ()),
    "page": (temp_of("index", "html"), "index.html", True, ()),
    "streamed wav": (temp_of("layer1_feature1", "wav"), "dance/layer1_feature1.wav", None, STREAMED),
    "streamed raw": (temp_of("layer1_feature1", "raw"), "", None, STREAMED),  # Python names no file: --out
}


@pytest.mark.parametrize("case", FULL_DISK_CASES)
def test_export_on_a_full_disk(capsys, monkeypatch, tmp_path, song, case):
    fails, target, finished, extra = FULL_DISK_CASES[case]
    out = tmp_path / "out"
    simulate_full_disk(monkeypatch, tmp_path, fails)
    code, _, err = run_cli(capsys, *export_args(song, out, *extra))
    monkeypatch.undo()
    assert_disk_full(code, err, out / target if target else out)
    assert not (out / LOCK_NAME).exists() and not part_files(tmp_path)
    if finished is False:  # a failed start leaves nothing behind
        assert not out.exists(), snapshot(out)
    run_ok(capsys, *export_args(song, out, *extra, *(["--resume"] if finished else [])))
    assert len(manifest_items(out)) == 2


def test_figures_on_a_full_disk(capsys, monkeypatch, tmp_path, song):
    out = tmp_path / "out"
    simulate_full_disk(monkeypatch, tmp_path, temp_of("layer1_feature0_figure", "png"))
    code, _, err = run_cli(capsys, "export", MODEL, song, "--out", out, "--layers", "1", "--features", "0",
                           "--figures", "--quiet")  # fmt: skip
    monkeypatch.undo()
    assert_disk_full(code, err, out / "dance" / "layer1_feature0_figure.png")
    assert not out.exists()


def test_export_onto_a_real_full_file_system(capsys, tmp_path, song):
    """A 64 KiB tmpfs (needs root and the right to mount): libsndfile's own failure is reported as a full disk."""
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if shutil.which("mount") is None or os.geteuid() != 0:
        pytest.skip("needs root and mount")
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        code, _, err = run_cli(capsys, *export_args(song, mnt / "out"))
        assert_disk_full(code, err, mnt / "out" / "dance" / "original.wav")
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=True)


# --------------------------------------------------------------------------- 5. failed starts leave nothing


@pytest.mark.parametrize("exc", [KeyboardInterrupt(), OutputError("simulated failure; nothing to do")])
def test_a_start_that_fails_before_any_item_leaves_nothing(capsys, monkeypatch, tmp_path, song, exc):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep")

    def failing(self, *args, **kwargs):
        raise exc

    monkeypatch.setattr(SongExport, "_write_files", failing)
    code, _, err = run_cli(capsys, *export_args(song, out))
    assert code == (130 if isinstance(exc, KeyboardInterrupt) else 2) and "Traceback" not in err
    assert snapshot(out) == {"mine.txt": ("file", b"keep")}
    monkeypatch.undo()
    run_ok(capsys, *export_args(song, out))  # no "already holds an export": nothing was made
    assert len(manifest_items(out)) == 2


def _header_only(capsys, song, out: Path) -> str:
    """The folder a run killed (SIGKILL) before its first item leaves: a journal with only its header."""
    run_ok(capsys, *export_args(song, out))
    header = (out / JOURNAL).read_text().splitlines()[0]
    remove_export(out)
    (out / JOURNAL).write_text(header + "\n")
    return header


def test_a_header_only_journal_resumes_or_names_the_difference(capsys, tmp_path, song):
    out = tmp_path / "out"
    _header_only(capsys, song, out)
    before = snapshot(out)
    code, _, err = run_cli(capsys, "export", MODEL, song, "--out", out, "--layers", "2", "--features", "0,1",
                           "--resume", "--quiet")  # fmt: skip
    assert_error(code, err, 2, "other options", '--layers "1" there, "2" now', "--force")
    assert snapshot(out) == before
    run_ok(capsys, *export_args(song, out, "--resume"))
    assert len(manifest_items(out)) == 2


def test_an_empty_journal_is_not_another_model(capsys, tmp_path, song):
    out = tmp_path / "out"
    out.mkdir()
    (out / JOURNAL).write_bytes(b"")  # what a full disk left behind in older versions
    run_ok(capsys, *export_args(song, out, "--resume"))
    assert len(manifest_items(out)) == 2


def test_a_start_that_fails_its_checks_writes_nothing(capsys, tmp_path, song):
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio" * 100)
    out = tmp_path / "new" / "out"
    code, _, err = run_cli(capsys, "export", MODEL, song, junk, "--out", out, "--quiet")
    assert_error(code, err, 2, "junk.wav")
    assert not (tmp_path / "new").exists()
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    for extra in (["--layers", "9"], ["--features", "0-999"], ["--memory", "inf"]):
        code, _, err = run_cli(capsys, *export_args(song, mine), *extra)
        assert_error(code, err, 2)
    code, _, err = run_cli(capsys, "export", MODEL, song, junk, "--out", mine, "--quiet", "--force")
    assert_error(code, err, 2, "junk.wav")
    assert snapshot(mine) == {"notes.txt": ("file", b"keep")}


# --------------------------------------------------------------------------- 6. one export per folder at a time


def write_lock(folder: Path, pid: int, host: str | None = None) -> bytes:
    folder.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"pid": pid, "host": host or socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"})
    (folder / LOCK_NAME).write_text(data)
    return data.encode()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("host", [None, "another-machine.example"])
def test_a_live_lock_refuses_a_second_export(capsys, tmp_path, song, host):
    out = tmp_path / "out"
    data = write_lock(out, os.getpid(), host)
    for extra in ([], ["--force"], ["--resume"]):
        code, _, err = run_cli(capsys, *export_args(song, out, *extra))
        assert_error(code, err, 2, f"{out} is in use by another auralise export", f"pid {os.getpid()} on "
                     f"{host or socket.gethostname()}", "wait for it", str(out / LOCK_NAME))  # fmt: skip
    assert snapshot(out) == {LOCK_NAME: ("file", data)}


def test_a_live_lock_is_kept_by_force(capsys, tmp_path, song):
    out = tmp_path / "out"
    run_ok(capsys, *export_args(song, out))
    data = write_lock(out, os.getpid())
    before = snapshot(out)
    code, _, err = run_cli(capsys, *export_args(song, out, "--force"))
    assert_error(code, err, 2, "in use")
    assert snapshot(out) == before and (out / LOCK_NAME).read_bytes() == data


def test_a_stale_lock_is_taken_over_and_released(capsys, tmp_path, song):
    out = tmp_path / "out"
    write_lock(out, dead_pid())
    run_ok(capsys, *export_args(song, out))
    assert not (out / LOCK_NAME).exists() and len(manifest_items(out)) == 2
    (out / LOCK_NAME).write_text("{torn")  # an unreadable lock of a crashed run
    old = time.time() - 60
    os.utime(out / LOCK_NAME, (old, old))
    run_ok(capsys, *export_args(song, out, "--force"))
    assert not (out / LOCK_NAME).exists()


def test_the_lock_is_released_on_errors_and_interrupts(capsys, monkeypatch, tmp_path, song):
    out = tmp_path / "out"
    seen = []

    def failing(self, *args, **kwargs):
        seen.append(json.loads((out / LOCK_NAME).read_text()))
        raise KeyboardInterrupt

    monkeypatch.setattr(SongExport, "_write_files", failing)
    code, _, _ = run_cli(capsys, *export_args(song, out))
    assert code == 130 and not out.exists()
    assert seen and seen[0]["pid"] == os.getpid() and seen[0]["host"] == socket.gethostname() and seen[0]["started"]


def test_folder_lock_is_exclusive(tmp_path):
    with folder_lock(tmp_path) as lock:
        assert json.loads(lock.read_text())["pid"] == os.getpid()
        with pytest.raises(OutputError, match="in use by another auralise export"):
            with folder_lock(tmp_path):
                pass
        assert lock.exists()
    assert not lock.exists()
    with pytest.raises(KeyboardInterrupt):
        with folder_lock(tmp_path):
            raise KeyboardInterrupt
    assert list(tmp_path.iterdir()) == []


def test_two_exports_into_one_folder_at_once(capsys, tmp_path, song):
    """A real second process: while it exports (slowly, with figures), an export into the same folder is refused."""
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "auralise.cli", *map(str, export_args(song, out)), "--features", "all", "--figures"]
    first = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "OMP_NUM_THREADS": "1"})  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / LOCK_NAME).exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, first.communicate()
        code, _, err = run_cli(capsys, *export_args(song, out, "--force"))
        assert first.poll() is None, "the first export finished before the second was tried"
        assert_error(code, err, 2, "in use by another auralise export", f"pid {first.pid}")
        first.kill()  # no need to wait for 64 figures; a killed export's lock is stale, and taken over
        first.wait(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert (out / LOCK_NAME).exists()
    run_ok(capsys, *export_args(song, out, "--force"))
    assert not (out / LOCK_NAME).exists() and len(manifest_items(out)) == 2
