"""Tests for auralise.frontends.base: validation, STFT vs librosa, compression, layouts, axes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import librosa
import numpy as np
import pytest
import torch

from auralise.errors import BadAudioError, BadModelError, BadParameterError
from auralise.frontends.base import COMPRESSIONS, LAYOUTS, Frontend

SR = 11025


def fe(**kw) -> Frontend:
    base = dict(sr=SR, n_fft=512, hop_length=256)
    base.update(kw)
    return Frontend(**base)


def noise(n: int = SR, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


# --------------------------------------------------------------------------- dict round trip / validation


def test_defaults_and_describe() -> None:
    f = fe()
    assert f.kind == "stft" and f.window == "hann" and f.center and f.layout == "BCFT"
    assert f.compression == "linear" and f.scale == 1.0 and f.win_length is None
    assert f.n_freq == 257 and f.min_samples == 512
    assert f.describe() == "STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT"
    d = fe(compression="db", layout="BFT", win_length=400, center=False, patch_seconds=3).describe()
    assert "\n" not in d and "dB" in d and "BFT" in d and "win 400" in d and "3 s patches" in d


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(compression="db", amin=1e-4, layout="BCTF", patch_seconds=3.0),
        dict(compression="log1p", scale=10.0, layout="BTF", center=False, win_length=256, window="hamming"),
        dict(compression="power", layout="BFT", pad_mode="reflect"),
    ],
)
def test_dict_round_trip_json(kw: dict) -> None:
    f = fe(**kw)
    d = json.loads(json.dumps(f.to_dict()))
    assert Frontend.from_dict(d) == f
    assert set(d) == {
        "kind",
        "sr",
        "n_fft",
        "hop_length",
        "win_length",
        "window",
        "center",
        "pad_mode",
        "compression",
        "amin",
        "scale",
        "layout",
        "patch_seconds",
    }


def test_from_dict_minimal_and_numpy_ints() -> None:
    f = Frontend.from_dict({"sr": np.int64(16000), "n_fft": 1024, "hop_length": 512, "scale": 2})
    assert f.sr == 16000 and type(f.sr) is int and f.scale == 2.0 and type(f.scale) is float
    json.dumps(f.to_dict())


def one_line_model_error(d) -> str:
    with pytest.raises(BadModelError) as ei:
        Frontend.from_dict(d)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_from_dict_errors() -> None:
    ok = {"sr": SR, "n_fft": 512, "hop_length": 256}
    assert "dict" in one_line_model_error([1, 2])
    msg = one_line_model_error({**ok, "hop": 3})
    assert "'hop'" in msg and "hop_length" in msg
    msg = one_line_model_error({"sr": SR, "n_fft": 512})
    assert "'hop_length'" in msg
    assert "positive integer" in one_line_model_error({**ok, "sr": 22050.5})
    assert "positive integer" in one_line_model_error({**ok, "n_fft": -4})
    assert "positive integer" in one_line_model_error({**ok, "hop_length": "256"})
    assert "positive integer" in one_line_model_error({**ok, "sr": True})
    assert "win_length" in one_line_model_error({**ok, "win_length": 1024})
    msg = one_line_model_error({**ok, "compression": "log"})
    assert "linear, power, db, log1p" in msg
    msg = one_line_model_error({**ok, "layout": "BFCT"})
    assert "BCFT, BCTF, BFT, BTF" in msg
    assert "window" in one_line_model_error({**ok, "window": "nosuchwindow"})
    assert "center" in one_line_model_error({**ok, "center": "yes"})
    assert "pad_mode" in one_line_model_error({**ok, "pad_mode": "zeros"})
    assert "amin" in one_line_model_error({**ok, "amin": 0})
    assert "scale" in one_line_model_error({**ok, "scale": float("nan")})
    assert "patch_seconds" in one_line_model_error({**ok, "patch_seconds": -1})
    assert "'n_mels'" in one_line_model_error({**ok, "kind": "mel", "n_mels": 0})
    assert "'bins_per_octave'" in one_line_model_error({**ok, "kind": "cqt", "bins_per_octave": 0})
    assert "kind" in one_line_model_error({**ok, "kind": "wavelet"})


def test_frozen() -> None:
    f = fe()
    with pytest.raises(AttributeError):
        f.sr = 8000  # type: ignore[misc]


# --------------------------------------------------------------------------- STFT


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(center=False),
        dict(win_length=300, window="hamming"),
        dict(pad_mode="reflect", n_fft=1024, hop_length=100),
        dict(n_fft=511, hop_length=128),
        dict(window="blackman", pad_mode="edge"),
        dict(window="bartlett"),  # a window scipy computes
    ],
)
@pytest.mark.parametrize("samples", [SR + 37, 300, 4100 * 256])
def test_stft_is_librosas_bit_for_bit(monkeypatch, kw: dict, samples: int) -> None:
    """The front-ends' STFT (computed without librosa) equals ``librosa.stft`` exactly: a second of noise, audio
    shorter than a window (centred), more frames than one block; one signal and two at once."""
    import auralise.frontends.grid as grid

    monkeypatch.setattr(grid, "FRAMES_PER_BLOCK", 1000)
    f = fe(**kw)
    if not f.center and samples < f.n_fft:
        return
    y = noise(samples)
    X = f.stft(y)
    ref = librosa.stft(y, n_fft=f.n_fft, hop_length=f.hop_length, win_length=f.win_length, window=f.window,
                       center=f.center, pad_mode=f.pad_mode, dtype=np.complex64)  # fmt: skip
    assert X.dtype == np.complex64
    assert X.shape == ref.shape == (f.n_freq, f.frames_for(len(y) / SR))
    assert np.array_equal(X, ref)
    two = np.stack([y, y[::-1].copy()])
    assert np.array_equal(f.stft(two)[1], librosa.stft(two[1], n_fft=f.n_fft, hop_length=f.hop_length,
                                                       win_length=f.win_length, window=f.window, center=f.center,
                                                       pad_mode=f.pad_mode, dtype=np.complex64))  # fmt: skip


@pytest.mark.parametrize("name", ["hann", "hamming", "blackman", "han", "hamm", "ham", "black", "blk"])
def test_cosine_windows_are_scipys_bit_for_bit(name: str) -> None:
    """The windows computed without ``scipy.signal`` equal ``scipy.signal.get_window(name, n, fftbins=True)``."""
    import scipy.signal

    from auralise.frontends.windows import analysis_window, check_window

    for n in (1, 2, 3, 7, 300, 511, 512, 1024, 2048):
        assert np.array_equal(analysis_window(name, n), scipy.signal.get_window(name, n, fftbins=True)), n
    check_window(name, 512)


@pytest.mark.parametrize("name", ["hanning", "nope", ""])
def test_unknown_windows_are_refused_as_scipy_refuses_them(name: str) -> None:
    from auralise.frontends.windows import check_window

    with pytest.raises(ValueError):
        check_window(name, 512)


def test_an_stft_models_export_imports_neither_librosa_nor_scipy_signal(tmp_path) -> None:
    """An export through an STFT front-end computes its STFT, inverse STFT and windows without importing librosa or
    ``scipy.signal`` (together about 1.4 s of its start-up)."""
    script = (
        "import sys; from auralise.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "print(sorted(m for m in ('librosa', 'scipy.signal', 'scipy.fft') if m in sys.modules))"
    )
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run([sys.executable, "-c", script, "export", str(repo / "models" / "choi2016-synth.pt"),
                           str(repo / "demo_audio" / "dance.ogg"), "--out", str(tmp_path / "x"), "--layers", "1",
                           "--features", "0-1", "--duration", "3", "--quiet"],
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.parametrize("n", [512, 513, 767, 768, 1000, 11025, 11026])
@pytest.mark.parametrize("center", [True, False])
def test_frames_for(n: int, center: bool) -> None:
    f = fe(center=center)
    assert f.stft(noise(n)).shape[1] == f.frames_for(n / SR)


def test_stft_too_short() -> None:
    with pytest.raises(BadAudioError, match="too short"):
        fe(center=False).stft(noise(100))
    with pytest.raises(BadAudioError):
        fe().stft(np.zeros(0, dtype=np.float32))


def test_istft_inverts() -> None:
    f = fe()
    y = noise(5001)
    out = f.istft(f.stft(y), len(y))
    assert out.shape == y.shape and out.dtype == np.float32
    np.testing.assert_allclose(out, y, atol=1e-5)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        dict(center=False),
        dict(win_length=300, window="hamming"),
        dict(n_fft=1024, hop_length=100),
        dict(n_fft=511, hop_length=128),
        dict(hop_length=512),  # no overlap
    ],
)
@pytest.mark.parametrize("frames, length", [(40, 5001), (40, 12000), (3000, 700_000), (2, 100)])
def test_istft_is_librosas_bit_for_bit(monkeypatch, kw: dict, frames: int, length: int) -> None:
    """The front-ends' inverse STFT equals ``librosa.istft`` exactly: random spectra (8 at once, and one alone) with
    all-zero frames (which it skips) and a silent one, lengths shorter and longer than the frames cover, blocks of
    frames smaller than the song."""
    import auralise.frontends.synthesis as synthesis

    monkeypatch.setattr(synthesis, "FRAMES_PER_BLOCK", 700)
    f = fe(**kw)
    rng = np.random.default_rng(frames + length + f.hop_length)
    X = rng.standard_normal((8, f.n_freq, frames)) + 1j * rng.standard_normal((8, f.n_freq, frames))
    X = X.astype(np.complex64)
    X[:, :, rng.random(frames) < 0.5] = 0  # frames that are all zero (skipped), in every signal
    X[1, :, : frames // 2] = 0  # and in one signal only
    X[2] = 0  # a silent signal
    ref = librosa.istft(X, hop_length=f.hop_length, win_length=f.win_length, n_fft=f.n_fft, window=f.window,
                        center=f.center, length=length, dtype=np.float32)  # fmt: skip
    out = f.istft(X, length)
    assert out.dtype == np.float32 and out.shape == (8, length)
    assert np.array_equal(out, ref)
    assert np.array_equal(f.istft(X[3], length), ref[3])


# --------------------------------------------------------------------------- compression


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize("scale", [1.0, 7.5])
def test_compress_round_trip(compression: str, scale: float) -> None:
    f = fe(compression=compression, scale=scale)
    mag = np.abs(np.random.default_rng(1).standard_normal((257, 40))).astype(np.float32) + 1e-3
    v = f.compress(mag)
    assert v.dtype == np.float32 and v.shape == mag.shape
    np.testing.assert_allclose(f.decompress(v), mag, rtol=2e-5, atol=1e-7)
    # float64 stays float64
    assert f.compress(mag.astype(np.float64)).dtype == np.float64
    # torch tensors give the same values
    t = f.compress(torch.from_numpy(mag))
    assert isinstance(t, torch.Tensor)
    np.testing.assert_allclose(t.numpy(), v, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(f.decompress(t).numpy(), mag, rtol=2e-5, atol=1e-6)


def test_compression_formulas() -> None:
    m = np.array([0.0, 1e-7, 0.5, 2.0], dtype=np.float64)
    np.testing.assert_allclose(fe(compression="power").compress(m), m**2)
    np.testing.assert_allclose(fe(compression="db").compress(m), 20 * np.log10(np.maximum(m, 1e-5)))
    np.testing.assert_allclose(fe(compression="log1p", scale=3).compress(m), np.log1p(3 * m))
    assert fe(compression="db").decompress(np.array([-100.0]))[0] == pytest.approx(1e-5)
    np.testing.assert_allclose(fe(compression="power").decompress(np.array([-4.0, 4.0])), [0.0, 2.0])


# --------------------------------------------------------------------------- layouts


@pytest.mark.parametrize(
    "layout, shape",
    [("BCFT", (1, 1, 257, 44)), ("BCTF", (1, 1, 44, 257)), ("BFT", (1, 257, 44)), ("BTF", (1, 44, 257))],
)
def test_model_input_layouts(layout: str, shape: tuple) -> None:
    f = fe(layout=layout, compression="log1p")
    X = f.stft(noise())
    S = f.model_input(X)
    assert isinstance(S, torch.Tensor) and S.dtype == torch.float32 and tuple(S.shape) == shape
    assert tuple(S.shape[1:]) == f.input_shape(X.shape[1])
    np.testing.assert_allclose(f.to_grid(S)[0], np.log1p(np.abs(X)), rtol=1e-6)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_to_grid_inverts_layout_for_batches(layout: str) -> None:
    f = fe(layout=layout)
    X = f.stft(noise())
    K, F, T = 5, *X.shape
    G = np.random.default_rng(2).standard_normal((K, F, T)).astype(np.float32)
    # build the batch in model layout by hand
    if layout == "BCFT":
        B = G[:, None]
    elif layout == "BCTF":
        B = G.transpose(0, 2, 1)[:, None]
    elif layout == "BFT":
        B = G
    else:
        B = G.transpose(0, 2, 1)
    assert B.shape[1:] == f.input_shape(T)
    back = f.to_grid(B)
    assert back.shape == (K, F, T) and back.dtype == np.float32 and back.flags.c_contiguous
    np.testing.assert_array_equal(back, G)
    np.testing.assert_array_equal(f.to_grid(torch.from_numpy(np.ascontiguousarray(B))), G)
    # model_input then to_grid is compress(|X|)
    np.testing.assert_allclose(f.to_grid(f.model_input(X))[0], np.abs(X), rtol=1e-6)


def test_to_grid_shape_errors() -> None:
    with pytest.raises(BadParameterError):
        fe(layout="BCFT").to_grid(np.zeros((2, 257, 10)))
    with pytest.raises(BadParameterError):
        fe(layout="BCFT").to_grid(np.zeros((2, 2, 257, 10)))
    with pytest.raises(BadParameterError):
        fe(layout="BFT").to_grid(np.zeros((2, 100, 10)))
    with pytest.raises(BadParameterError):
        fe().model_input(np.zeros((100, 10), dtype=np.complex64))


# --------------------------------------------------------------------------- axes


def test_axes() -> None:
    f = fe()
    np.testing.assert_allclose(f.frame_times(4), np.array([0, 256, 512, 768]) / SR)
    np.testing.assert_allclose(fe(center=False).frame_times(2), np.array([256, 512]) / SR)
    np.testing.assert_allclose(f.frame_times(10), librosa.frames_to_time(np.arange(10), sr=SR, hop_length=256))
    freqs = f.bin_freqs()
    assert freqs.shape == (257,) and freqs[0] == 0 and freqs[-1] == SR / 2
    np.testing.assert_allclose(freqs, librosa.fft_frequencies(sr=SR, n_fft=512))
    assert f.frames_for(0) == 0 and f.frames_for(1.0) == 1 + SR // 256
