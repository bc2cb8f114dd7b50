"""Tests for the mel and constant-Q front-ends: librosa equivalence, mapping to the STFT grid, round trips."""

from __future__ import annotations

import json
import time

import librosa
import numpy as np
import pytest
import torch

from auralise.errors import BadModelError, BadParameterError
from auralise.frontends.base import Frontend
from auralise.render.resynth import resynthesise

MUSICNN = dict(kind="mel", sr=16000, n_fft=512, hop_length=256, n_mels=96, power=2, compression="log10p")


def noise(sr: int, seconds: float, seed: int = 0) -> np.ndarray:
    return (0.1 * np.random.default_rng(seed).standard_normal(int(sr * seconds))).astype(np.float32)


def tones(sr: int, seconds: float, freqs=(440.0, 1000.0, 1500.0, 2500.0)) -> np.ndarray:
    """Sum of sinusoids with smooth 0.5-s fades: band-limited to ``freqs`` (no clicks at the ends)."""
    t = np.arange(int(sr * seconds)) / sr
    y = sum(np.sin(2 * np.pi * f * t + f) for f in freqs)
    fade = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.5)
    return (0.1 * y * np.sin(np.pi / 2 * fade) ** 2).astype(np.float32)


def snr_db(ref: np.ndarray, est: np.ndarray) -> float:
    return float(10 * np.log10(np.sum(ref.astype(np.float64) ** 2) / np.sum((est - ref).astype(np.float64) ** 2)))


# --------------------------------------------------------------------------- mel: librosa equivalence


@pytest.mark.parametrize(
    "kw",
    [dict(), dict(htk=True, mel_norm=None, n_mels=40, fmin=50.0, fmax=6000.0), dict(htk=True, n_mels=128)],
)
def test_mel_filterbank_matches_librosa(kw: dict) -> None:
    f = Frontend(kind="mel", sr=16000, n_fft=512, hop_length=256, **kw)
    W = librosa.filters.mel(
        sr=16000,
        n_fft=512,
        n_mels=f.n_mels,
        fmin=f.fmin,
        fmax=kw.get("fmax", 8000.0),
        htk=kw.get("htk", False),
        norm=kw.get("mel_norm", "slaney"),
    )
    # the filterbank used by model_input: mel energies of a one-frame "spectrum" of unit bins are W's columns
    np.testing.assert_allclose(f.input_spectrogram(np.eye(f.n_freq, dtype=np.float32)), W, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(
        f.input_freqs(), librosa.mel_frequencies(f.n_mels + 2, fmin=f.fmin, fmax=f.mel_fmax, htk=f.htk)[1:-1]
    )


@pytest.mark.parametrize("power, compression", [(2, "log10p"), (1, "db"), (2, "log1p")])
def test_mel_model_input_matches_melspectrogram(power: int, compression: str) -> None:
    f = Frontend(**{**MUSICNN, "power": power, "compression": compression})
    y = noise(16000, 2.0)
    X, S = f.analyse(y)
    M = librosa.feature.melspectrogram(y=y, sr=16000, n_fft=512, hop_length=256, n_mels=96, power=float(power))
    ref = {"log10p": np.log10(1 + 10000 * M), "db": 20 * np.log10(np.maximum(M, 1e-5)), "log1p": np.log1p(M)}
    want = ref[compression]
    np.testing.assert_allclose(S[0, 0].numpy(), want, rtol=1e-5, atol=1e-5 * np.abs(want).max())


def test_musicnn_shapes_and_describe() -> None:
    f = Frontend(**MUSICNN)
    y = noise(16000, 3.0)
    X, S = f.analyse(y)
    T = X.shape[1]
    assert tuple(S.shape) == (1, 1, 96, T) == (1, *f.input_shape(T)) and S.dtype == torch.float32
    g = Frontend(**{**MUSICNN, "layout": "BCTF"})
    assert tuple(g.model_input(X).shape) == (1, 1, T, 96)
    assert g.to_grid(g.model_input(X)).shape == (1, 257, T)
    d = f.describe()
    assert "\n" not in d and "96 Slaney mels" in d and "log10(1+10000x)" in d
    # log10p: the formula and its inverse
    m = np.array([0.0, 1e-6, 0.5], dtype=np.float64)
    np.testing.assert_allclose(f.compress(m), np.log10(1 + 10000 * m))
    np.testing.assert_allclose(f.decompress(f.compress(m)), m, atol=1e-12)
    t = f.compress(torch.tensor(m))
    np.testing.assert_allclose(t.numpy(), np.log10(1 + 10000 * m))
    np.testing.assert_allclose(f.decompress(t).numpy(), m, atol=1e-12)


# --------------------------------------------------------------------------- cqt


def test_cqt_model_input_and_frame_alignment() -> None:
    f = Frontend(kind="cqt", sr=22050, n_fft=1024, hop_length=512, compression="log1p", layout="BCTF")
    y = noise(22050, 2.0)
    X, S = f.analyse(y)
    C = np.abs(librosa.cqt(y, sr=22050, hop_length=512, n_bins=84, bins_per_octave=12))
    assert C.shape[1] == X.shape[1]  # same frame count: frame t of both is centred on sample t * hop
    np.testing.assert_allclose(S[0, 0].numpy().T, np.log1p(C), rtol=1e-5, atol=1e-6)
    assert tuple(S.shape) == (1, 1, X.shape[1], 84)
    with pytest.raises(BadParameterError, match="y=y"):
        f.model_input(X)
    np.testing.assert_array_equal(f.model_input(X, y=y).numpy(), S.numpy())
    np.testing.assert_allclose(f.input_freqs(), librosa.cqt_frequencies(84, fmin=librosa.note_to_hz("C1")))
    # an impulse at t = 1 s peaks in the same frame in the STFT and in the CQT's top octave
    imp = np.zeros(22050 * 2, dtype=np.float32)
    imp[22050] = 1.0
    Xi, Si = f.analyse(imp)
    assert int(np.argmax(np.abs(Xi).sum(0))) == int(np.argmax(np.expm1(Si[0, 0, :, -12:].numpy()).sum(1))) == 43


# --------------------------------------------------------------------------- all-ones round trips


def test_all_ones_round_trip_mel(capsys) -> None:
    f = Frontend(**MUSICNN)  # fmin 0, fmax sr/2: every STFT bin is mapped
    y = noise(16000, 3.0)
    X, S = f.analyse(y)
    grid = f.to_grid(torch.ones_like(S))
    np.testing.assert_allclose(grid, 1.0, rtol=1e-6)
    out, _ = resynthesise(X, grid, frontend=f, mode="mask", length=len(y), normalize="none")
    snr = snr_db(y, out[0])
    with capsys.disabled():
        print(f"\nall-ones mask round trip, mel (white noise, 16 kHz): SNR {snr:.1f} dB")
    assert snr > 100


@pytest.mark.parametrize("sr, n_fft, hop", [(22050, 1024, 512), (16000, 512, 256)])
def test_all_ones_round_trip_cqt(sr: int, n_fft: int, hop: int, capsys) -> None:
    # The CQT covers 32.7 Hz..4 kHz only, so the input is band-limited to 440..2500 Hz (far from both edges).
    f = Frontend(kind="cqt", sr=sr, n_fft=n_fft, hop_length=hop)
    y = tones(sr, 3.0)
    X, S = f.analyse(y)
    grid = f.to_grid(np.ones(S.shape, np.float32))
    inside = (f.bin_freqs() > 40) & (f.bin_freqs() < 4000)
    np.testing.assert_allclose(grid[0, inside], 1.0, rtol=1e-6)
    assert np.all(grid[0, f.bin_freqs() > 4200] == 0)
    out, _ = resynthesise(X, grid, frontend=f, mode="mask", length=len(y), normalize="none")
    snr = snr_db(y, out[0])
    with capsys.disabled():
        print(f"\nall-ones mask round trip, cqt (tones 440-2500 Hz, {sr} Hz): SNR {snr:.1f} dB")
    assert snr > 95


# --------------------------------------------------------------------------- localisation on the grid


def test_mel_band_lands_in_its_bins() -> None:
    f = Frontend(**MUSICNN)
    T = 20
    freqs = f.bin_freqs()
    edges = librosa.mel_frequencies(98, fmin=0.0, fmax=8000.0)
    for b in (5, 40, 90):
        D = np.zeros((1, *f.input_shape(T)), np.float32)
        D[0, 0, b] = 1.0
        G = f.to_grid(D)[0]
        hit = np.flatnonzero(G[:, 0] > 0)
        assert hit.size > 0 and np.all(G[:, 0] == G[:, 7])
        assert freqs[hit].min() > edges[b] - 1e-6 and freqs[hit].max() < edges[b + 2] + 1e-6
        peak = freqs[int(np.argmax(G[:, 0]))]
        assert abs(peak - edges[b + 1]) <= f.sr / f.n_fft  # band centre within one bin


def test_cqt_bin_lands_near_its_frequency() -> None:
    f = Frontend(kind="cqt", sr=22050, n_fft=1024, hop_length=512)
    freqs, cf = f.bin_freqs(), f.input_freqs()
    df = f.sr / f.n_fft
    for b in (3, 30, 60, 83):
        D = np.zeros((1, *f.input_shape(5)), np.float32)
        D[0, 0, b] = 1.0
        G = f.to_grid(D)[0]
        hit = np.flatnonzero(G[:, 0] > 0)
        assert hit.size > 0
        # neighbours' centres (half a bin beyond the top bin: the edge extension), plus the STFT bin width
        lo, hi = cf[max(b - 1, 0)] - df, (cf[b + 1] if b < 83 else cf[83] * 2 ** (0.5 / 12)) + df
        assert freqs[hit].min() >= lo and freqs[hit].max() <= hi
        assert abs(freqs[int(np.argmax(G[:, 0]))] - cf[b]) <= df


# --------------------------------------------------------------------------- magnitude mode


def test_magnitudes_on_the_grid() -> None:
    # mel: a flat spectrum comes back flat at the right level; cqt: a sinusoid's peak is its STFT peak
    f = Frontend(**MUSICNN)
    y = noise(16000, 2.0)
    X, S = f.analyse(y)
    mag = f.to_stft_magnitude(S)[0]
    rms = np.sqrt(np.mean(np.abs(X[20:240]) ** 2))
    assert mag.shape == X.shape and abs(np.mean(mag[20:240]) / rms - 1) < 0.1
    assert abs(np.mean(f.grid_magnitude(f.to_grid(S))[0, 20:240]) / rms - 1) < 0.1
    c = Frontend(kind="cqt", sr=22050, n_fft=1024, hop_length=512)
    y = tones(22050, 2.0, freqs=(440.0,))
    X, S = c.analyse(y)
    k = int(np.argmax(np.abs(X[:, 40])))
    assert abs(c.to_stft_magnitude(S)[0, k, 40] / np.abs(X[k, 40]) - 1) < 0.15
    # stft: grid_magnitude is decompress (what resynth's magnitude mode uses today)
    s = Frontend(sr=16000, n_fft=512, hop_length=256, compression="db")
    G = np.random.default_rng(0).standard_normal((2, 257, 9)).astype(np.float32)
    np.testing.assert_array_equal(s.grid_magnitude(G), s.decompress(G))


# --------------------------------------------------------------------------- speed


@pytest.mark.parametrize("sr", [16000, 22050])
@pytest.mark.parametrize("kind", ["mel", "cqt"])
def test_resynthesis_speed(kind: str, sr: int, capsys) -> None:
    kw = dict(kind=kind, sr=sr, n_fft=512 if sr == 16000 else 1024, hop_length=256 if sr == 16000 else 512)
    f = Frontend(**kw)
    y = noise(sr, 30.0)
    X, S = f.analyse(y)
    K = 8
    D = torch.rand((K, *S.shape[1:]), generator=torch.Generator().manual_seed(0))
    f.to_grid(D[:1])  # build the cached mapping once (part of loading the model)
    t0 = time.perf_counter()
    grid = f.to_grid(D)
    out, _ = resynthesise(X, grid, frontend=f, mode="mask", length=len(y))
    per = (time.perf_counter() - t0) / K
    with capsys.disabled():
        print(f"\n{kind} {sr} Hz, 30 s, K={K}: to_grid + resynthesise {1000 * per:.1f} ms per feature")
    assert out.shape == (K, len(y)) and per < 1.0


# --------------------------------------------------------------------------- dicts and validation


@pytest.mark.parametrize(
    "kw",
    [
        MUSICNN,
        dict(kind="mel", sr=22050, n_fft=1024, hop_length=512, htk=True, mel_norm=None, fmax=8000, power=1),
        dict(kind="cqt", sr=22050, n_fft=1024, hop_length=512, n_bins=72, bins_per_octave=24, fmin=65.0),
        dict(kind="cqt", sr=22050, n_fft=1024, hop_length=512, compression="log10p", log_scale=100),
        dict(kind="stft", sr=16000, n_fft=512, hop_length=256, compression="log10p"),
    ],
)
def test_dict_round_trip(kw: dict) -> None:
    f = Frontend(**kw)
    d = json.loads(json.dumps(f.to_dict()))
    assert Frontend.from_dict(d) == f
    assert ("n_mels" in d) == (f.kind == "mel") and ("n_bins" in d) == (f.kind == "cqt")
    assert ("log_scale" in d) == (f.compression == "log10p")


def test_stft_dict_unchanged() -> None:
    d = Frontend(sr=16000, n_fft=512, hop_length=256).to_dict()
    assert set(d) == {
        "kind", "sr", "n_fft", "hop_length", "win_length", "window", "center", "pad_mode", "compression", "amin",
        "scale", "layout", "patch_seconds",
    }  # fmt: skip


def model_error(d: dict) -> str:
    with pytest.raises(BadModelError) as ei:
        Frontend.from_dict(d)
    msg = str(ei.value)
    assert "\n" not in msg
    return msg


def test_validation_errors() -> None:
    mel = dict(kind="mel", sr=16000, n_fft=512, hop_length=256)
    cqt = dict(kind="cqt", sr=22050, n_fft=1024, hop_length=512)
    assert "'n_mels'" in model_error({**mel, "n_mels": 0})
    assert "'fmax'" in model_error({**mel, "fmax": 9000})
    assert "'fmin'" in model_error({**mel, "fmin": -1})
    assert "'fmax'" in model_error({**mel, "fmin": 3000, "fmax": 2000})
    assert "'htk'" in model_error({**mel, "htk": "yes"})
    assert "'mel_norm'" in model_error({**mel, "mel_norm": "l2"})
    assert "'power'" in model_error({**mel, "power": 3})
    assert "log10p" in model_error({**mel, "compression": "log10"})
    assert "'log_scale'" in model_error({**mel, "compression": "log10p", "log_scale": 0})
    assert "'log_scale'" in model_error({**mel, "log_scale": 100})
    assert "'bins_per_octave'" in model_error({**cqt, "bins_per_octave": 0})
    assert "'n_bins'" in model_error({**cqt, "n_bins": -3})
    assert "'fmin'" in model_error({**cqt, "fmin": 0})
    assert "Nyquist" in model_error({**cqt, "n_bins": 120})
    assert "center" in model_error({**cqt, "center": False})
    assert "applies only to kind 'mel'" in model_error({**cqt, "n_mels": 96})
    assert "applies only to kind 'cqt'" in model_error({**mel, "n_bins": 84})
    msg = model_error({"sr": 16000, "n_fft": 512, "hop_length": 256, "fmin": 30})
    assert "'fmin'" in msg and "'stft'" in msg
    with pytest.raises(BadModelError, match="n_mels"):
        Frontend(sr=16000, n_fft=512, hop_length=256, n_mels=40)


def test_to_grid_shape_errors() -> None:
    f = Frontend(**MUSICNN)
    with pytest.raises(BadParameterError, match="F=96"):
        f.to_grid(np.zeros((1, 1, 257, 10)))
    with pytest.raises(BadParameterError):
        f.grid_magnitude(np.zeros((1, 96, 10)))


@pytest.mark.parametrize("htk", [False, True])
@pytest.mark.parametrize("norm", ["slaney", None])
@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax",
    [(16000, 512, 96, 0.0, None), (22050, 2048, 128, 30.0, 10000.0), (11025, 513, 40, 0.0, 5512.5),
     (44100, 4096, 256, 20.0, None), (8000, 256, 24, 300.0, 3400.0)],
)  # fmt: skip
def test_mel_scale_and_filterbank_are_librosas_bit_for_bit(sr, n_fft, n_mels, fmin, fmax, htk, norm) -> None:
    from auralise.frontends.melscale import hz_to_mel, mel_filterbank, mel_frequencies, mel_to_hz

    ours = mel_filterbank(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax, htk=htk, norm=norm)
    assert ours.dtype == theirs.dtype == np.float32 and np.array_equal(ours.view(np.uint32), theirs.view(np.uint32))
    top = sr / 2 if fmax is None else fmax
    assert np.array_equal(mel_frequencies(n_mels + 2, fmin=fmin, fmax=top, htk=htk),
                          librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=top, htk=htk))  # fmt: skip
    hz = np.array([0.0, 1.0, 999.999, 1000.0, 1000.001, 4000.0, top])
    assert np.array_equal(hz_to_mel(hz, htk=htk), librosa.hz_to_mel(hz, htk=htk))
    assert hz_to_mel(1234.5, htk=htk) == librosa.hz_to_mel(1234.5, htk=htk)
    mels = hz_to_mel(hz, htk=htk)
    assert np.array_equal(mel_to_hz(mels, htk=htk), librosa.mel_to_hz(mels, htk=htk))
    assert mel_to_hz(mels[3], htk=htk) == librosa.mel_to_hz(mels[3], htk=htk)


def test_a_filterbank_with_empty_filters_is_librosas_and_warns_as_librosa_does() -> None:
    from auralise.frontends.melscale import mel_filterbank

    kw = dict(sr=8000, n_fft=64, n_mels=64, fmin=0.0, fmax=None, htk=False, norm="slaney")
    with pytest.warns(UserWarning, match="Empty filters"):
        ours = mel_filterbank(**kw)
    with pytest.warns(UserWarning, match="Empty filters"):
        theirs = librosa.filters.mel(**{k: v for k, v in kw.items() if k != "norm"}, norm="slaney")
    assert np.array_equal(ours, theirs)


def test_a_mel_model_input_needs_neither_librosa_nor_scipy_signal() -> None:
    # librosa.filters imports scipy.signal (0.8-1 s): a mel model's export paid that on its serial start
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from auralise.frontends.base import Frontend\n"
        "f = Frontend(kind='mel', sr=16000, n_fft=512, hop_length=256, n_mels=96)\n"
        "f.input_spectrogram(np.ones((f.n_freq, 4), np.complex64)); f.grid_matrix(); f.input_freqs()\n"
        "print(sorted(m for m in ('librosa', 'scipy.signal') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stdout + done.stderr
