"""`auralise export`: listening sets on disk, the manifest, resuming, determinism, and every bad input."""

from __future__ import annotations

import collections
import hashlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import SR
from PIL import Image
from test_cli import assert_error, assert_nothing_written, run_cli, run_ok
from test_page import _WAIT_FOR_MEDIA

from auralise.engine.selection import parse_feature_spec, parse_layer_spec
from auralise.listening.export import JOURNAL, song_ids
from auralise.listening.song_export import SongExport

N_FEATURES = 8


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wav_digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): digest(p) for p in sorted(folder.rglob("*.wav"))}


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if ".part" in p.name]


@pytest.fixture(scope="module")
def songs(tmp_path_factory) -> list[Path]:
    """Two 4-s songs at the model rate; one name with a space and an accent."""
    from auralise.demo import synth

    d = tmp_path_factory.mktemp("songs")
    paths = []
    for name, style, seed in (("dance", "dance", 1), ("café ballad", "ballad", 2)):
        p = d / f"{name}.wav"
        sf.write(p, synth.generate(style, seconds=4.0, sr=SR, seed=seed).mix, SR, subtype="PCM_16")
        paths.append(p)
    return paths


@pytest.fixture(scope="module")
def exported(tmp_path_factory, choi_model, songs) -> Path:
    out = tmp_path_factory.mktemp("export") / "set"
    code, _, err = _run(choi_model, *songs, "--out", out, "--layers", "1,3", "--features", "0-2", "--figures")
    assert code == 0, err
    return out


def _run(*args) -> tuple[int, str, str]:
    from auralise.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in ("export", *args, "--quiet")])
    return int(info.value.code or 0), "", ""


def test_spec_parsing():
    assert parse_feature_spec("all") == ("all", None)
    assert parse_feature_spec("top:5") == ("top", 5)
    assert parse_feature_spec("0,5, 10-12") == ("list", [0, 5, 10, 11, 12])
    assert parse_layer_spec("all") is None
    assert parse_layer_spec("1,3-4,features.8") == ["1", "3", "4", "features.8"]
    assert song_ids(["a/x.wav", "b/x.ogg", "c/X.flac", "d/wé ird?.mp3"]) == ["x", "x-2", "X-3", "wé ird_"]


def test_files_manifest_and_page(exported, songs, choi_model):
    manifest = json.loads((exported / "manifest.json").read_text())
    assert manifest["format"] == "auralise-export" and manifest["version"] == 1
    assert manifest["model"]["sha256"] == digest(choi_model)
    assert manifest["options"]["layers"] == [1, 3] and manifest["options"]["features"] == "0-2"
    assert {"auralise", "torch", "numpy", "librosa", "python"} <= set(manifest["software"])
    assert [layer["number"] for layer in manifest["layers"]] == [1, 3]
    assert [s["id"] for s in manifest["songs"]] == ["dance", "café ballad"]
    for song, path in zip(manifest["songs"], songs):
        assert song["sha256"] == digest(path)
        n = len(sf.read(path)[0])
        original, sr = sf.read(exported / song["original"]["wav"])
        assert sr == SR and len(original) == n
        assert Image.open(exported / song["original"]["png"]).size[0] > 100
        assert [(i["layer"], i["feature"]) for i in song["items"]] == [(1, 0), (1, 1), (1, 2), (3, 0), (3, 1), (3, 2)]
        for item in song["items"]:
            wave, sr = sf.read(exported / item["wav"])
            assert sr == SR and len(wave) == n and np.isfinite(wave).all()
            if item["silent"]:
                assert not wave.any() and item["gain"] == 1.0
            else:
                assert 0.98 < np.abs(wave).max() <= 1.0 and item["activation_energy"] > 0
            thumb = np.asarray(Image.open(exported / item["png"]).convert("RGB"))  # a palette image
            assert thumb.ndim == 3 and thumb.shape[2] == 3 and thumb.std() > 0  # a picture, not a blank
            assert Image.open(exported / item["figure"]).size[0] > 400  # the full matplotlib figure
            assert 1 <= item["rank"] <= N_FEATURES
    page = (exported / "index.html").read_text()
    assert "caf%C3%A9%20ballad/layer3_feature2.wav" in page
    assert not part_files(exported)


def test_top_k_takes_the_most_energetic_features(tmp_path, choi_model, songs):
    out = tmp_path / "top"
    assert _run(choi_model, songs[0], "--out", out, "--layers", "2", "--features", "top:3")[0] == 0
    items = json.loads((out / "manifest.json").read_text())["songs"][0]["items"]
    assert sorted(i["rank"] for i in items) == [1, 2, 3]
    assert [i["feature"] for i in items] == sorted(i["feature"] for i in items)


def test_rerun_is_byte_identical(tmp_path, exported, choi_model, songs):
    out = tmp_path / "again"
    assert _run(choi_model, *songs, "--out", out, "--layers", "1,3", "--features", "0-2", "--figures")[0] == 0
    assert wav_digests(out) == wav_digests(exported)
    assert _run(choi_model, *songs, "--out", out, "--layers", "1,3", "--features", "0-2", "--force")[0] == 0
    assert wav_digests(out) == wav_digests(exported)


def test_interrupted_export_resumes_without_redoing_work(
    tmp_path, monkeypatch, exported, choi_model, songs, projected_features
):
    out = tmp_path / "cut"
    args = (choi_model, *songs, "--out", out, "--layers", "1,3", "--features", "0-2", "--figures")
    original = SongExport._write_files
    calls = []

    def interrupted(self, batch, *rest):
        calls.append(len(batch))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(self, batch, *rest)

    monkeypatch.setattr(SongExport, "_write_files", interrupted)
    code, _, _ = _run(*args)
    assert code == 130
    assert not part_files(out) and not (out / "manifest.json").exists()
    lines = (out / JOURNAL).read_text().splitlines()
    finished = len(lines) - 1
    assert 0 < finished == sum(calls) - calls[2]  # every batch but the interrupted third one is recorded
    per_pair = collections.Counter((r["song"], r["layer"]) for r in map(json.loads, lines[1:]))
    # the default (distinct) projects the whole layer (8 features) once per song and layer with work left
    unfinished = 2 * 2 - sum(count == 3 for count in per_pair.values())
    monkeypatch.setattr(SongExport, "_write_files", original)

    code, _, _ = _run(*args)
    assert code == 2  # an unfinished export is not overwritten without being asked
    projected_features.clear()
    assert _run(*args, "--resume")[0] == 0
    assert len(projected_features) == 8 * unfinished < 8 * 4
    assert wav_digests(out) == wav_digests(exported)
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(len(s["items"]) for s in manifest["songs"]) == 12


def test_sigterm_leaves_only_complete_files(tmp_path, choi_model, songs):
    """A real process killed with SIGTERM mid-export: exit 130, no temporary files; --resume then completes."""
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "auralise.cli", "export", str(choi_model), *map(str, songs), "--out", str(out),
           "--features", "all", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    journal = out / JOURNAL
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if journal.exists() and len(journal.read_text().splitlines()) > 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "Traceback" not in err
    assert not part_files(out) and not (out / "manifest.json").exists()
    for wav in out.rglob("layer*.wav"):
        assert len(sf.read(wav)[0]) > 0  # every file under its real name is complete
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(len(s["items"]) for s in manifest["songs"]) == 2 * 5 * N_FEATURES


@pytest.mark.parametrize(
    "extra,phrases",
    [
        (["--features", "0-99"], ["feature 8 is out of range", "0-7"]),
        (["--features", "five"], ["bad feature spec", "top:K"]),
        (["--features", "top:0"], ["top:K needs a positive integer"]),
        (["--layers", "9"], ["layer 9"]),
        (["--layers", "1,,2"], ["bad layer spec"]),
        (["--workers", "0"], ["--workers must be a positive integer"]),
        (["--memory", "0"], ["--memory"]),
        (["--method", "magic"], ["--method"]),
        (["--select", "topk:x"], ["unknown selection"]),
        (["--force", "--resume"], ["exclude each other"]),
    ],
)
def test_bad_options_are_usage_errors(capsys, tmp_path, choi_model, songs, extra, phrases):
    out = tmp_path / "bad"
    code, _, err = run_cli(capsys, "export", choi_model, songs[0], "--out", out, "--quiet", *extra)
    assert_error(code, err, 2, *phrases)
    assert_nothing_written(out)


def test_bad_audio_and_model_are_caught_before_writing(capsys, tmp_path, choi_model, songs):
    out = tmp_path / "bad"
    code, _, err = run_cli(capsys, "export", choi_model, songs[0], tmp_path / "missing.wav", "--out", out)
    assert_error(code, err, 2, "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all" * 100)
    code, _, err = run_cli(capsys, "export", choi_model, songs[0], junk, "--out", out)
    assert_error(code, err, 2, "junk.wav")
    code, _, err = run_cli(capsys, "export", junk, songs[0], "--out", out)
    assert_error(code, err, 2)
    assert_nothing_written(out)


def test_existing_export_needs_force_or_resume(capsys, tmp_path, choi_model, songs):
    out = tmp_path / "twice"
    run_ok(capsys, "export", choi_model, songs[0], "--out", out, "--layers", "1", "--features", "0", "--quiet")
    before = wav_digests(out)
    code, _, err = run_cli(capsys, "export", choi_model, songs[0], "--out", out, "--layers", "1", "--quiet")
    assert_error(code, err, 2, "already holds an export", "--resume", "--force")
    code, _, err = run_cli(capsys, "export", choi_model, songs[0], "--out", out, "--layers", "2", "--resume")
    assert_error(code, err, 2, "other options")
    assert wav_digests(out) == before
    out_text, _ = run_ok(capsys, "export", choi_model, songs[0], "--out", out, "--layers", "1", "--features", "0",
                         "--resume", "--quiet")  # fmt: skip
    assert "wrote 1 features" in out_text and wav_digests(out) == before


def test_progress_bars_go_to_stderr_unless_quiet(capsys, tmp_path, choi_model, songs):
    out, err = run_ok(capsys, "export", choi_model, songs[0], "--out", tmp_path / "p", "--layers", "1",
                      "--features", "0-1")  # fmt: skip
    assert "songs" in err and "dance" in err and "wrote 2 features" in out
    _, err = run_ok(capsys, "export", choi_model, songs[0], "--out", tmp_path / "q", "--layers", "1", "--quiet")
    assert "songs" not in err


def test_long_song_in_small_memory_matches_the_one_pass_export(tmp_path, choi_model):
    """A 40-s song under a tiny memory budget is cut into chunks; its WAVs equal the one-pass export's to within
    one 16-bit step."""
    from auralise.demo import synth

    song = tmp_path / "long.wav"
    sf.write(song, synth.generate_sequence(["dance", "ballad"], seconds_each=20.0, sr=SR, seed=4).mix, SR)
    common = (choi_model, song, "--layers", "4", "--features", "0-3", "--resynth", "mask")  # what streams exactly
    assert _run(*common, "--out", tmp_path / "big")[0] == 0
    assert _run(*common, "--out", tmp_path / "small", "--memory", "0.02")[0] == 0
    for name in wav_digests(tmp_path / "big"):
        a = sf.read(tmp_path / "big" / name, dtype="int16")[0].astype(int)
        b = sf.read(tmp_path / "small" / name, dtype="int16")[0].astype(int)
        assert np.abs(a - b).max() <= 1, name


def test_real_export_page_in_chromium(browser, exported, tmp_path):
    """The page of a real export: no console errors, every image and every audio element loads."""
    manifest = json.loads((exported / "manifest.json").read_text())
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((exported / "index.html").as_uri())
    result = page.evaluate(_WAIT_FOR_MEDIA)
    assert result["ok"], result
    n_items = sum(len(song["items"]) for song in manifest["songs"])
    assert result["audio"] == result["images"] == n_items + len(manifest["songs"])
    shot = tmp_path / "export_page.png"
    page.screenshot(path=str(shot))
    assert shot.stat().st_size > 10_000 and errors == []
    context.close()
