"""`auralise import musicnn` and `auralise tag`: the published taggers as auralise checkpoints, and what they say.

Needs the musicnn 0.1.0 wheel (from $AURALISE_MUSICNN_WHEEL, the cache, or `pip download`); skipped without it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
from test_cli import assert_error, run_cli, run_ok

from auralise import load_model
from auralise.demo import synth

SR = 16000


@pytest.fixture(scope="module")
def probes(tmp_path_factory) -> dict:
    """A drum loop, sustained piano chords and silence, 12 s each at 16 kHz."""
    d = tmp_path_factory.mktemp("probes")
    stems = synth.generate("dance", seconds=12.0, sr=SR, seed=1).stems
    drums = stems["kick"] + stems["snare"] + stems["hats"]
    chords = [[48 + i for i in synth.CHORDS[c]] + [60 + i for i in synth.CHORDS[c]] for c in ("major", "minor", "maj7")]
    piano = np.concatenate([synth.tone("piano", notes, seconds=4.0, sr=SR) for notes in chords])
    files = {}
    for name, y in (("drums", drums), ("piano", piano), ("silence", np.zeros(12 * SR, dtype=np.float32))):
        files[name] = d / f"{name}.wav"
        sf.write(files[name], y, SR, subtype="FLOAT")
    return files


def test_imported_checkpoints_load_with_musicnn_front_end(imported):
    for name in ("MTT_musicnn", "MTT_vgg"):
        model = load_model(imported["dir"] / f"{name}.pt")
        fe = model.frontend
        assert (fe.kind, fe.sr, fe.n_fft, fe.hop_length, fe.n_mels, fe.compression) == (
            "mel",
            16000,
            512,
            256,
            96,
            "log10p",
        )
        assert fe.frames_for(fe.patch_seconds) == 187 and fe.layout == "BCTF"
        assert len(model.labels) == 50 and model.labels[:3] == ["guitar", "classical", "slow"]
        assert model.meta["provenance"]["output_activation"] == "sigmoid"


@pytest.mark.parametrize("model", ["MTT_musicnn", "MTT_vgg"])
def test_predictions_make_musical_sense(imported, probes, model):
    from auralise.studies.tagging import tag_song

    path = imported["dir"] / f"{model}.pt"
    top = {name: [t for t, _ in tag_song(path, probes[name]).top(5)] for name in probes}
    assert "drums" in top["drums"] and "beat" in top["drums"], top["drums"]
    assert "piano" in top["piano"], top["piano"]
    assert "quiet" in top["silence"], top["silence"]


def test_tag_json_patches_as_musicnn_makes_them(capsys, imported, probes):
    out, _ = run_ok(capsys, "tag", imported["dir"] / "MTT_musicnn.pt", probes["drums"], "--json", "--top", "50")
    result = json.loads(out)
    assert len(result["mean"]) == 50
    means = list(result["mean"].values())
    assert means == sorted(means, reverse=True)
    # 12 s at 16 kHz: 751 frames -> 4 patches of 187 frames, the remainder (3 frames) dropped
    assert [p["start"] for p in result["patches"]] == [round(i * 187 * 256 / 16000, 3) for i in range(4)]
    per_patch = np.array([list(p["probabilities"].values()) for p in result["patches"]])
    names = list(result["patches"][0]["probabilities"])
    np.testing.assert_allclose([result["mean"][n] for n in names], per_patch.mean(axis=0), rtol=1e-6)
    out, _ = run_ok(capsys, "tag", imported["dir"] / "MTT_musicnn.pt", probes["drums"], "--top", "3")
    assert len(out.strip().splitlines()) == 4


def test_auralise_and_export_work_on_musicnn(capsys, tmp_path, imported, probes):
    model = imported["dir"] / "MTT_musicnn.pt"
    run_ok(capsys, model, probes["drums"], "--layer", "3", "--feature", "7", "--out", tmp_path / "run")
    wave, sr = sf.read(tmp_path / "run" / "layer3_feature7.wav")
    assert sr == SR and len(wave) == 12 * SR and np.abs(wave).max() > 0.9
    run_ok(capsys, "export", model, probes["piano"], "--out", tmp_path / "set", "--layers", "1,6",
           "--features", "top:2", "--quiet")  # fmt: skip
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert [(i["layer"], i["rank"]) for i in manifest["songs"][0]["items"]].count((1, 1)) == 1
    run_ok(capsys, "figure", "grid", model, probes["piano"], "--features", "1-3,3-7,8-1", "--out", tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000


def test_import_errors(capsys, tmp_path, imported):
    code, _, err = run_cli(capsys, "import", "musicnn", "--model", "MTT_resnet", "--out", tmp_path)
    assert_error(code, err, 2, "unknown musicnn model", "MTT_musicnn")
    code, _, err = run_cli(capsys, "import", "musicnn", "--wheel", tmp_path / "none.whl", "--out", tmp_path)
    assert_error(code, err, 2, "wheel not found")
    code, _, err = run_cli(capsys, "import", "musicnn", "--model", "MTT_vgg", "--out", imported["dir"])
    assert_error(code, err, 2, "already exists", "--force")


def test_tag_errors(capsys, tmp_path, imported):
    short = tmp_path / "short.wav"
    sf.write(short, np.ones(SR, dtype=np.float32) * 0.1, SR)
    code, _, err = run_cli(capsys, "tag", imported["dir"] / "MTT_musicnn.pt", short)
    assert_error(code, err, 2, "patches of 2.976 s")
