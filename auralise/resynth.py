"""Resynthesis: deconvolved spectrograms on the STFT grid -> waveforms.

Following Choi et al. (2016), the original complex STFT ``X`` supplies the phase. Two ways to use ``D``:

``mask`` (default)
    ``M = max(D, 0) / max(max(D, 0))`` per feature, ``Y = M * X``. An all-ones ``D`` gives back the input.
``magnitude``
    ``|Y| = max(frontend.grid_magnitude(D), 0)`` (the front-end's compression undone), with ``X``'s phase.

``phase="griffinlim"`` replaces the original phase by a Griffin-Lim estimate from ``|Y|`` (deterministic:
random initial phase from seed 0); it is an option, never the default. librosa is imported lazily.
"""

from __future__ import annotations

import numpy as np

from auralise.errors import BadParameterError, check_choice
from auralise.frontends import Frontend

__all__ = ["resynthesise", "render_waves", "MODES", "PHASES", "NORMALIZE", "PEAK"]

MODES = ("mask", "magnitude")
PHASES = ("original", "griffinlim")
NORMALIZE = ("peak", "none")
PEAK = 0.99
# Features are inverted in groups of at most this many complex STFT cells (about 128 MiB of complex64).
_CHUNK_CELLS = 1 << 24


def resynthesise(
    X: np.ndarray,
    D: np.ndarray,
    *,
    frontend: Frontend,
    mode: str = "mask",
    phase: str = "original",
    length: int,
    normalize: str = "peak",
    n_iter: int = 32,
) -> tuple[np.ndarray, np.ndarray]:
    """Turn K deconvolved spectrograms into K waveforms.

    Parameters
    ----------
    X : np.ndarray, shape (F, T), complex
        The original STFT (``frontend.stft(y)``); supplies phase (and magnitude in mask mode).
    D : np.ndarray, shape (K, F, T) or (F, T), real
        Deconvolved spectrograms on ``X``'s grid (``frontend.to_grid(...)``), in the model's value scale.
    frontend : Frontend
        The front-end that produced ``X``.
    mode : {"mask", "magnitude"}
        ``mask``: rectified ``D`` normalised to max 1 per feature multiplies ``X``; ``magnitude``:
        ``max(frontend.grid_magnitude(D), 0)`` is the magnitude.
    phase : {"original", "griffinlim"}
        Phase from ``X`` (default) or estimated by Griffin-Lim from the magnitude.
    length : int
        Output length in samples (usually ``len(y)``); the output is exactly this long.
    normalize : {"peak", "none"}
        ``peak``: scale each output to peak 0.99 (silent outputs stay zero, gain 1); ``none``: unchanged.
    n_iter : int
        Griffin-Lim iterations (ignored for ``phase="original"``).

    Returns
    -------
    y : np.ndarray, shape (K, length), float32
        One waveform per feature (K = 1 for 2-D ``D``).
    gains : np.ndarray, shape (K,), float64
        The factor each waveform was multiplied by (1 where not normalised).

    Raises
    ------
    BadParameterError
        Unknown mode/phase/normalize, mismatched shapes, non-finite ``D``, bad ``length``/``n_iter``.

    Examples
    --------
    >>> fe = Frontend(sr=11025, n_fft=512, hop_length=256)
    >>> y = np.random.default_rng(0).standard_normal(11025).astype(np.float32)
    >>> X = fe.stft(y)
    >>> out, gains = resynthesise(X, np.ones((1, *X.shape)), frontend=fe, length=len(y), normalize="none")
    >>> bool(np.allclose(out[0], y, atol=1e-4))
    True
    """
    mode = check_choice(mode, MODES, "resynthesis mode")
    phase = check_choice(phase, PHASES, "phase")
    normalize = check_choice(normalize, NORMALIZE, "normalisation")
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length <= 0:
        raise BadParameterError(f"length must be a positive number of samples, got {length!r}")
    if isinstance(n_iter, bool) or not isinstance(n_iter, int | np.integer) or n_iter < 1:
        raise BadParameterError(f"n_iter must be a positive integer, got {n_iter!r}")
    length = int(length)

    X = np.asarray(X)
    if X.ndim != 2 or X.shape[0] != frontend.n_freq:
        raise BadParameterError(f"X must have shape ({frontend.n_freq}, T) for this front-end, got {X.shape}")
    X = X.astype(np.complex64, copy=False)
    D = np.asarray(D, dtype=np.float32)
    if D.ndim == 2:
        D = D[None]
    if D.ndim != 3 or D.shape[1:] != X.shape:
        raise BadParameterError(f"D must have shape (K, {X.shape[0]}, {X.shape[1]}) to match X, got {D.shape}")
    if not np.all(np.isfinite(D)):
        raise BadParameterError("D contains NaN or infinite values; check the model and the deconvolution rule")

    K, F, T = D.shape
    out = np.zeros((K, length), dtype=np.float32)
    step = max(1, _CHUNK_CELLS // max(1, F * T))
    for start in range(0, K, step):
        stop = min(K, start + step)
        Y = _spectra(X, D[start:stop], frontend=frontend, mode=mode)
        if phase == "original":
            out[start:stop] = frontend.istft(Y, length)
        else:
            mag = np.abs(Y)
            for i in range(stop - start):
                out[start + i] = _griffinlim(mag[i], frontend=frontend, length=length, n_iter=int(n_iter))

    return out, _normalise(out, normalize)


def _normalise(out: np.ndarray, normalize: str) -> np.ndarray:
    """Scale each row of ``out`` (K, n) in place to peak :data:`PEAK` (``"peak"``); the gains (K,)."""
    gains = np.ones(len(out), dtype=np.float64)
    if normalize == "peak":
        peaks = np.max(np.abs(out), axis=1).astype(np.float64)
        loud = peaks > 0
        gains[loud] = PEAK / peaks[loud]
        out *= gains[:, None].astype(np.float32)
    return gains


def render_waves(
    X: np.ndarray,
    D,
    *,
    frontend: Frontend,
    mode: str = "mask",
    phase: str = "original",
    length: int,
    normalize: str = "peak",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Model-shaped projections D (K, *input_shape) -> (waves (K, length), gains (K,), grid (K, F, T)).

    For spectrogram front-ends the grid is ``frontend.to_grid(D)`` and the waves are :func:`resynthesise` of it.
    For a waveform front-end the projection *is* the audio (cut or zero-padded to ``length``, then normalised)
    and the grid is its STFT magnitude, for pictures.
    """
    grid = frontend.to_grid(D)
    if frontend.kind != "waveform":
        waves, gains = resynthesise(
            X, grid, frontend=frontend, mode=mode, phase=phase, length=length, normalize=normalize
        )
        return waves, gains, grid
    check_choice(normalize, NORMALIZE, "normalisation")
    audio = frontend.projected_audio(D)
    waves = np.zeros((len(audio), int(length)), dtype=np.float32)
    n = min(int(length), audio.shape[1])
    waves[:, :n] = audio[:, :n]
    return waves, _normalise(waves, normalize), grid


def _spectra(X: np.ndarray, D: np.ndarray, *, frontend: Frontend, mode: str) -> np.ndarray:
    """Complex spectra Y, shape (k, F, T), for a group of features (original phase of X)."""
    if mode == "mask":
        R = np.maximum(D, 0.0)
        peak = R.max(axis=(1, 2))
        scale = np.divide(1.0, peak, out=np.zeros_like(peak), where=peak > 0)
        return (R * scale[:, None, None]) * X[None]
    mag = np.maximum(np.asarray(frontend.grid_magnitude(D), dtype=np.float32), 0.0)
    absX = np.abs(X)
    unit = np.divide(X, absX, out=np.ones_like(X), where=absX > 0)
    return mag * unit[None]


def _griffinlim(mag: np.ndarray, *, frontend: Frontend, length: int, n_iter: int) -> np.ndarray:
    """Griffin-Lim estimate of one waveform from a magnitude (F, T); deterministic (seed 0)."""
    import librosa

    if not np.any(mag):
        return np.zeros(length, dtype=np.float32)
    y = librosa.griffinlim(
        mag,
        n_iter=n_iter,
        hop_length=frontend.hop_length,
        win_length=frontend.win_length,
        n_fft=frontend.n_fft,
        window=frontend.window,
        center=frontend.center,
        pad_mode=frontend.pad_mode,
        length=length,
        init="random",
        random_state=0,
        dtype=np.float32,
    )
    return np.asarray(y, dtype=np.float32)
