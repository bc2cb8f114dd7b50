"""Basic Pitch: the port and its harmonic-CQT front-end against the original, run by onnxruntime, on music.

The reference is the ``nmp.onnx`` graph that the basic-pitch 0.4.0 wheel ships (the same trained model exported
from TensorFlow, CQT and all), run by onnxruntime on one inference window of audio (``AUDIO_N_SAMPLES`` = 43844
samples at 22050 Hz); the port reads the SavedModel's variables and computes the CQT itself, so the two share no
code. Deconvnet on the port is compared with Captum. The wheel comes from the cache or ``pip download`` (once per
session); tests skip with the reason when it, or onnxruntime, cannot be had.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from captum.attr import NeuronDeconvolution
from test_deconv import captum, rel_err

import auralise
from auralise.errors import AuraliseError

ROOT = Path(__file__).resolve().parents[1]
SR, WINDOW = 22050, 43844  # basic_pitch.constants: AUDIO_SAMPLE_RATE, AUDIO_N_SAMPLES
ONNX = "basic_pitch/saved_models/icassp_2022/nmp.onnx"
REAL = "real"  # the real_recording fixture (Kevin MacLeod, "Vibe Ace", CC BY 3.0, from the librosa 0.7.2 sdist)


@pytest.fixture(scope="session")
def bp_wheel() -> Path:
    """The basic-pitch 0.4.0 wheel: $AURALISE_BASIC_PITCH_WHEEL, else the cache, else ``pip download`` there."""
    from auralise.importers.basic_pitch import basic_pitch_wheel

    try:
        return basic_pitch_wheel()
    except AuraliseError as exc:
        pytest.skip(f"basic-pitch 0.4.0 wheel not obtainable (no access to PyPI): {exc}")


@pytest.fixture(scope="session")
def bp(bp_wheel):
    """(module, front-end) with the released weights."""
    from auralise.frontends import Frontend
    from auralise.importers.basic_pitch import load_pretrained, read_variables

    module, fe = load_pretrained(read_variables(bp_wheel)[0])
    return module, Frontend.from_dict(fe)


@pytest.fixture(scope="session")
def onnx_session(bp_wheel):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install auralise[test])")
    from auralise.importers.wheels import read_member

    return ort.InferenceSession(read_member(bp_wheel, ONNX), providers=["CPUExecutionProvider"])


def run_cli(args: list[str], capsys) -> tuple[int, str]:
    """``auralise ARGS`` through the console entry point: (exit code, stdout + stderr)."""
    from auralise.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out = capsys.readouterr()
    return info.value.code or 0, out.out + out.err


def window(path: str | Path, offset: float) -> np.ndarray:
    """One inference window of mono audio at 22050 Hz from ``offset`` seconds."""
    from auralise.io.audio import load_audio

    y = load_audio(path, sr=SR, offset=offset, duration=WINDOW / SR + 0.1)[0]
    assert y.size >= WINDOW
    return np.ascontiguousarray(y[:WINDOW], dtype=np.float32)


SONGS = [(ROOT / "demo_audio" / f"{name}.ogg", 6.0) for name in ("ballad", "dance", "hiphop")] + [(REAL, 20.0)]


@pytest.mark.parametrize("path,offset", SONGS, ids=["ballad", "dance", "hiphop", "real-recording"])
def test_outputs_match_onnxruntime(bp, onnx_session, path, offset, request):
    if path == REAL:
        path = request.getfixturevalue("real_recording")
    module, fe = bp
    y = window(path, offset)
    names = ["StatefulPartitionedCall:0", "StatefulPartitionedCall:1", "StatefulPartitionedCall:2"]
    ref = dict(
        zip(("contour", "note", "onset"), onnx_session.run(names, {"serving_default_input_2:0": y[None, :, None]}))
    )
    with torch.no_grad():
        out = module.named_outputs(fe.model_input(None, y=y))
    for key, want in ref.items():
        got = out[key].numpy()
        assert got.shape == want[0].shape == (172, 264 if key == "contour" else 88), key
        assert np.abs(got - want[0]).max() <= 1e-3, key
    assert ref["note"].max() > 0.3, "no note is active: the comparison would prove little"


def test_frontend_matches_the_graphs_hcqt(bp, bp_wheel):
    """The front-end's output is the graph's harmonic stacking output, read from nmp.onnx by making it an output
    (float32 rounding in the graph's CQT shows only in the quietest bins, near the normalised log's floor)."""
    onnx = pytest.importorskip("onnx", reason="onnx not installed (needed to expose the graph's intermediate HCQT)")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install auralise[test])")
    from auralise.importers.wheels import read_member

    graph = onnx.load_from_string(read_member(bp_wheel, ONNX))
    name = next(
        n.output[0] for n in graph.graph.node if n.name.startswith("model_1/harmonic-stacking-diff/strided_slice_7")
    )
    graph.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    session = ort.InferenceSession(graph.SerializeToString(), providers=["CPUExecutionProvider"])
    _, fe = bp
    y = window(ROOT / "demo_audio" / "dance.ogg", 6.0)
    want = session.run([name], {"serving_default_input_2:0": y[None, :, None]})[0].transpose(0, 3, 1, 2)
    got = fe.model_input(None, y=y).numpy()
    loud = (want - fe.input_offset) / fe.input_gain >= 0.2  # above the quietest fifth of the normalised range
    assert np.abs(got - want)[loud].max() <= 1e-3 and np.abs(got - want).max() <= 1e-2


def test_forward_is_the_onset_posteriorgram(bp):
    module, fe = bp
    S = fe.model_input(None, y=window(ROOT / "demo_audio" / "dance.ogg", 2.0))
    with torch.no_grad():
        assert torch.equal(module(S)[0], module.named_outputs(S)["onset"])
    from auralise.engine.layers import discover

    graph = discover(module, S)
    assert [lay.path for lay in graph.layers] == [
        "contour.0", "contour_out.0", "note.0", "note_out.0", "onset.0", "onset_out.0"
    ]  # fmt: skip


def test_unstacking_is_the_adjoint_of_stacking(bp):
    """<stack(v), D> = <v, unstack(D)>: the way back is the transpose of the harmonic stacking."""
    from auralise.frontends.hcqt import stack_harmonics

    _, fe = bp
    rng = np.random.default_rng(0)
    v = rng.standard_normal((fe.n_bins, 20)).astype(np.float32)
    D = rng.standard_normal((1, 8, 20, fe.n_output_bins)).astype(np.float32)
    lhs = float(np.sum(stack_harmonics(v, fe).astype(np.float64) * D[0]))
    rhs = float(np.sum(v.astype(np.float64) * fe._unlayout(D)[0]))
    assert abs(lhs - rhs) <= 1e-6 * abs(lhs)


def test_all_ones_round_trip_on_the_grid(bp):
    """All-ones in the fundamental's channel is a mask of 1 on the STFT bins it covers; it gives those partials
    back (sinusoids on bin centres, so nothing leaks outside, compared away from the edges) at >= 100 dB SNR."""
    _, fe = bp
    n = SR * 2
    t = np.arange(n) / SR
    bins = (12, 41, 93, 200)  # 129 Hz .. 2153 Hz, inside 27.5 Hz .. 4.1 kHz
    y = sum(np.sin(2 * np.pi * k * SR / fe.n_fft * t + k) for k in bins).astype(np.float32) / 4
    X = fe.stft(y)
    D = np.zeros((1, 8, X.shape[1], fe.n_output_bins), dtype=np.float32)
    D[:, fe.harmonics.index(1.0)] = 1.0
    G = fe.to_grid(D)[0]
    f = fe.bin_freqs()
    df = SR / fe.n_fft
    inside = (f - df / 2 >= fe.fmin) & (f + df / 2 <= fe.input_freqs()[-1])  # STFT bins wholly in its range
    assert np.allclose(G[inside], 1.0, atol=1e-5) and np.all(G[f > fe.input_freqs()[-1] * 1.05] == 0)
    mag = fe.to_stft_magnitude(D)  # magnitude mode: the normalised log read back on a nominal range
    assert mag.shape == (1, fe.n_freq, X.shape[1]) and np.isfinite(mag).all() and mag.max() > 0
    back = fe.istft(G * X, n)
    mid = slice(fe.n_fft, n - fe.n_fft)
    err = back[mid] - y[mid]
    assert 10 * np.log10(np.sum(y[mid] ** 2) / np.sum(err**2)) >= 100


def test_deconvnet_matches_captum(bp):
    module, fe = bp
    S = fe.model_input(None, y=window(ROOT / "demo_audio" / "ballad.ogg", 4.0))[:, :, 40:104]
    taps = [module.contour, module.contour_out, module.note, module.note_out, module.onset, module.onset_out]
    for layer, tap in enumerate(taps, start=1):
        feats = [0] if layer in (2, 4, 6) else [0, 5]
        D = auralise.deconvolve(module, S, layer=layer, features=feats)
        for k, f in enumerate(feats):
            assert rel_err(D[k], captum(NeuronDeconvolution, module, tap, S, f)) < 1e-5, (layer, f)


def test_import_command_and_auralise(bp, bp_wheel, tmp_path, capsys):
    from auralise.io.modelfile import load_model

    code, out = run_cli(["import", "basic-pitch", "--wheel", bp_wheel, "--out", tmp_path], capsys)
    assert code == 0, out
    ckpt = tmp_path / "basic_pitch.pt"
    loaded = load_model(ckpt)
    prov = loaded.meta["provenance"]
    assert prov["package"] == "basic-pitch" and prov["version"] == "0.4.0" and len(prov["wheel_sha256"]) == 64
    assert loaded.frontend == bp[1]
    S = bp[1].model_input(None, y=window(ROOT / "demo_audio" / "hiphop.ogg", 1.0))
    with torch.no_grad():
        assert torch.equal(loaded.module(S), bp[0](S))
    code, out = run_cli(["import", "basic-pitch", "--wheel", bp_wheel, "--out", tmp_path], capsys)
    assert code == 2 and "--force" in out
    y = window(ROOT / "demo_audio" / "dance.ogg", 3.0)[: SR * 2]
    sf.write(tmp_path / "dance.wav", y, SR)
    code, out = run_cli(
        [ckpt, tmp_path / "dance.wav", "--layer", "5", "--feature", "0", "--out", tmp_path / "o"], capsys
    )
    assert code == 0, out
    wav, sr = sf.read(tmp_path / "o" / "layer5_feature0.wav")
    assert sr == SR and abs(len(wav) - len(y)) <= 1 and np.abs(wav).max() > 0
    code, out = run_cli(["inspect", ckpt, "--json"], capsys)
    assert code == 0 and '"rf_semitones": 20.3' in out


def test_bad_wheel_is_one_line_exit_2(tmp_path, capsys):
    junk = tmp_path / "basic_pitch-0.4.0-py2.py3-none-any.whl"
    junk.write_bytes(b"not a zip")
    code, out = run_cli(["import", "basic-pitch", "--wheel", junk, "--out", tmp_path / "m"], capsys)
    lines = [ln for ln in out.splitlines() if ln.startswith("error")]
    assert code == 2 and len(lines) == 1 and "Traceback" not in out and "download it again" in lines[0]
    assert not (tmp_path / "m" / "basic_pitch.pt").exists()


def test_predict_windows_a_song_as_basic_pitch_does(bp, bp_wheel, onnx_session, tmp_path, capsys):
    """``auralise predict`` on 5 s (3 windows) equals nmp.onnx run window by window and unwrapped as basic-pitch
    0.4.0's inference does (written out here: half an overlap of zeros first, windows every 43844 - 30*256
    samples, 15 frames dropped at each side of each window, cut to floor(n * 86 / 22050) frames)."""
    import soundfile as sf

    from auralise.io.audio import load_audio
    from auralise.studies.prediction import predict_song

    y = load_audio(ROOT / "demo_audio" / "ballad.ogg", sr=SR, offset=3.0, duration=5.0)[0]
    song = tmp_path / "ballad5.wav"
    sf.write(song, y, SR, subtype="FLOAT")
    code, out = run_cli(["import", "basic-pitch", "--wheel", bp_wheel, "--out", tmp_path], capsys)
    assert code == 0, out
    got = predict_song(tmp_path / "basic_pitch.pt", song, device="cpu").arrays
    overlap = 30 * 256
    padded = np.concatenate([np.zeros(overlap // 2, np.float32), y])
    names = ["StatefulPartitionedCall:0", "StatefulPartitionedCall:1", "StatefulPartitionedCall:2"]
    pieces = {k: [] for k in ("contour", "note", "onset")}
    for start in range(0, len(padded), WINDOW - overlap):
        piece = np.zeros(WINDOW, np.float32)
        piece[: len(padded[start : start + WINDOW])] = padded[start : start + WINDOW]
        for key, value in zip(pieces, onnx_session.run(names, {"serving_default_input_2:0": piece[None, :, None]})):
            pieces[key].append(value[0, 15:-15])
    frames = int(np.floor(len(y) * (SR // 256) / SR))
    for key, parts in pieces.items():
        want = np.concatenate(parts)[:frames]
        assert got[key].shape == want.shape, key
        assert np.abs(got[key] - want).max() <= 1e-3, key
    np.testing.assert_allclose(got["time"][:3], np.arange(3) * 256 / SR, atol=1e-9)


def test_export_and_grid_on_basic_pitch(bp_wheel, tmp_path, capsys):
    """A listening set and a grid figure of Basic Pitch on 3 s of the ballad: WAVs at 22050 Hz, the page lists them."""
    import json

    import soundfile as sf

    from auralise.io.audio import load_audio

    y = load_audio(ROOT / "demo_audio" / "ballad.ogg", sr=SR, offset=2.0, duration=3.0)[0]
    song = tmp_path / "ballad3.wav"
    sf.write(song, y, SR, subtype="FLOAT")
    code, out = run_cli(["import", "basic-pitch", "--wheel", bp_wheel, "--out", tmp_path], capsys)
    assert code == 0, out
    model = tmp_path / "basic_pitch.pt"
    code, out = run_cli(["export", model, song, "--out", tmp_path / "x", "--layers", "1,5", "--features", "0-1",
                         "--quiet"], capsys)  # fmt: skip
    assert code == 0, out
    items = json.loads((tmp_path / "x" / "manifest.json").read_text())["songs"][0]["items"]
    assert [(i["layer"], i["feature"]) for i in items] == [(1, 0), (1, 1), (5, 0), (5, 1)]
    for item in items:
        wav, sr = sf.read(tmp_path / "x" / item["wav"])
        assert sr == SR and len(wav) == len(y) and (item["silent"] or np.abs(wav).max() > 0.5)
    code, out = run_cli(["figure", "grid", model, song, "--features", "1-0,5-1", "--out", tmp_path / "g.png"], capsys)
    assert code == 0, out
    assert (tmp_path / "g.png").stat().st_size > 10_000
