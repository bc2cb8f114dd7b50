"""Resynthesis: deconvolved spectrograms on the STFT grid -> waveforms.

Following Choi et al. (2016), the original complex STFT ``X`` supplies the phase. Two ways to use ``D``:

``mask`` (default)
    ``M = max(D, 0) / max(max(D, 0))`` per feature, ``Y = M * X``. An all-ones ``D`` gives back the input.
``magnitude``
    ``|Y| = max(frontend.grid_magnitude(D), 0)`` (the front-end's compression undone), with ``X``'s phase.
``contrast``
    The feature's mask where it exceeds its layer's mean mask, renormalised, times ``X``
    (:mod:`auralise.render.contrast`; needs the layer's ``reference``).
``partition``
    The 0/1 mask of the cells the feature claims most strongly among its layer's features, relative to each
    feature's own mean, times ``X`` (:mod:`auralise.render.contrast`; needs the layer's ``reference``).
``distinct``
    The partition's cells where the feature's mask also stands above its layer's mean mask, times ``X``
    (:mod:`auralise.render.contrast`; needs both references).

``phase="griffinlim"`` replaces the original phase by a Griffin-Lim estimate from ``|Y|`` (deterministic:
random initial phase from seed 0); it is an option, never the default. librosa is imported lazily.

Silent features. A projection, mask or waveform whose peak is at most :data:`ZERO_PEAK` is *numerically zero*:
its WAV is written as exact silence (gain 1) and nothing is divided by its peak. :data:`ZERO_PEAK` is float32's
smallest normal number times 2**23 (about 1e-31): below it, everything within float32's precision of the peak
(138 dB) is subnormal, so scaling it up would amplify rounding, and 1/peak could overflow float32. A feature that
is never active on the song (activation max <= 0 at the tap) is silent too: :func:`render_waves` flags both and
says why (:class:`Rendered`).
"""

from __future__ import annotations

import numpy as np

from auralise.choices import LAYER_RELATIVE_MODES, NORMALISATIONS, PHASES, RESYNTH_MODES
from auralise.errors import BadParameterError, check_choice
from auralise.frontends.base import Frontend

__all__ = [
    "resynthesise",
    "render_waves",
    "Rendered",
    "numerically_zero",
    "MODES",
    "PHASES",
    "NORMALIZE",
    "PEAK",
    "ZERO_PEAK",
    "NEVER_ACTIVE",
    "NUMERICALLY_ZERO",
]

MODES = RESYNTH_MODES  # the names auralise.listening imports; the values live in auralise.choices
NORMALIZE = NORMALISATIONS
PEAK = 0.99
# Peaks at or below this are numerically zero (see the module docstring): float32 tiny * 2**23 = 2**-103.
ZERO_PEAK = float(np.finfo(np.float32).tiny) * 2.0**23
# Why a feature is silent (Rendered.reasons).
NEVER_ACTIVE = "never active"
NUMERICALLY_ZERO = "projection is numerically zero"
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
    reference: np.ndarray | None = None,
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
    mode : {"mask", "magnitude", "contrast", "partition", "distinct"}
        ``mask``: rectified ``D`` normalised to max 1 per feature multiplies ``X``; ``magnitude``:
        ``max(frontend.grid_magnitude(D), 0)`` is the magnitude; ``contrast``, ``partition``, ``distinct``: the
        layer-relative masks (:mod:`auralise.render.contrast`) multiply ``X``.
    phase : {"original", "griffinlim"}
        Phase from ``X`` (default) or estimated by Griffin-Lim from the magnitude.
    length : int
        Output length in samples (usually ``len(y)``); the output is exactly this long.
    normalize : {"peak", "none"}
        ``peak``: scale each output to peak 0.99; ``none``: unchanged. Either way a numerically zero output (peak
        at most :data:`ZERO_PEAK`, from a numerically zero projection or not) is exact silence with gain 1.
    n_iter : int
        Griffin-Lim iterations (ignored for ``phase="original"``).
    reference : np.ndarray, shape (F, T), optional
        The layer's reference (:func:`auralise.render.contrast.layer_accumulator`: the mean mask for
        ``contrast``, the best claims for ``partition``); needed by those modes only.

    Returns
    -------
    y : np.ndarray, shape (K, length), float32
        One waveform per feature (K = 1 for 2-D ``D``); always finite; all zero for a silent feature.
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
    if mode in LAYER_RELATIVE_MODES and reference is None:
        raise BadParameterError(f"the {mode} resynthesis needs the layer's reference (reference=...)")

    K, F, T = D.shape
    out = np.zeros((K, length), dtype=np.float32)
    step = max(1, _CHUNK_CELLS // max(1, F * T))
    for start in range(0, K, step):
        stop = min(K, start + step)
        Y = _spectra(X, D[start:stop], frontend=frontend, mode=mode, reference=reference)
        if phase == "original":
            out[start:stop] = frontend.istft(Y, length)
        else:
            mag = np.abs(Y)
            for i in range(stop - start):
                out[start + i] = _griffinlim(mag[i], frontend=frontend, length=length, n_iter=int(n_iter))

    return out, _normalise(out, normalize)


def numerically_zero(peaks) -> np.ndarray:
    """True where a peak (absolute value, any shape) is at most :data:`ZERO_PEAK` (or NaN)."""
    return ~(np.abs(np.asarray(peaks, dtype=np.float64)) > ZERO_PEAK)


def _normalise(out: np.ndarray, normalize: str) -> np.ndarray:
    """Zero the numerically zero rows of ``out`` (K, n) in place and scale the others to peak :data:`PEAK`
    (``"peak"``); the gains (K,), 1 for silent rows and with ``"none"``."""
    gains = np.ones(len(out), dtype=np.float64)
    if not len(out):
        return gains
    if out.shape[1]:  # max |x| without an |x| array: max(max x, -min x)
        peaks = np.maximum(out.max(axis=1), -out.min(axis=1)).astype(np.float64)
    else:
        peaks = np.zeros(len(out))
    zero = numerically_zero(peaks)
    out[zero] = 0.0
    if normalize == "peak":
        loud = ~zero
        gains[loud] = PEAK / peaks[loud]  # at most 0.99 / ZERO_PEAK ~ 1e31: finite in float32
        for k in np.flatnonzero(loud):  # in place, row by row (a boolean index would copy them out and back)
            out[k] *= np.float32(gains[k])
    return gains


class Rendered(tuple):
    """What :func:`render_waves` returns: the 3-tuple ``(waves, gains, grid)`` (unpack it as such), plus

    ``silent`` (K,) bool
        The feature's WAV is silence: it is never active on the song (activation max <= 0, when the activation
        maxima were given) or its projection is numerically zero (its waveform came out all zero).
    ``reasons`` tuple of str or None
        Per feature, :data:`NEVER_ACTIVE`, :data:`NUMERICALLY_ZERO` or None (not silent).
    """

    silent: np.ndarray
    reasons: tuple[str | None, ...]
    sr: int | None = None  # the waves' sample rate (the front-end's unless rendered at another --output-sr)

    def __new__(cls, waves, gains, grid, silent, reasons):
        self = super().__new__(cls, (waves, gains, grid))
        self.silent = silent
        self.reasons = tuple(reasons)
        return self

    @property
    def waves(self) -> np.ndarray:
        return self[0]

    @property
    def gains(self) -> np.ndarray:
        return self[1]

    @property
    def grid(self) -> np.ndarray:
        return self[2]

    def warnings(self, layer: int, features) -> list[str]:
        """One line per silent feature, e.g. ``"feature 3 of layer 1 is silent: never active on this song
        (activation max <= 0); its WAV is silence"``."""
        why = {
            NEVER_ACTIVE: "never active on this song (activation max <= 0)",
            NUMERICALLY_ZERO: "its projection is numerically zero",
        }
        return [
            f"feature {f} of layer {layer} is silent: {why[r]}; its WAV is silence"
            for f, r in zip(features, self.reasons)
            if r is not None
        ]


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def render_waves(
    X: np.ndarray,
    D,
    *,
    frontend: Frontend,
    mode: str = "mask",
    phase: str = "original",
    length: int,
    normalize: str = "peak",
    activation_max=None,
    y: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    output: tuple | None = None,
) -> Rendered:
    """Model-shaped projections D (K, *input_shape) -> (waves (K, length), gains (K,), grid (K, F, T)).

    For spectrogram front-ends the grid is ``frontend.to_grid(D)`` and the waves are :func:`resynthesise` of it.
    For a waveform or framed front-end the projection *is* the audio (``frontend.projected_audio(D, y=y)``: a
    framed front-end undoes its per-frame normalisation with the song ``y``), cut or zero-padded to ``length``, and
    the grid is its STFT magnitude (before normalisation), for pictures; there is no mask, so ``mode`` has no effect.

    The result unpacks as ``waves, gains, grid`` and also carries ``silent`` and ``reasons`` (:class:`Rendered`).
    ``activation_max`` (K,), the maximum of each feature's activation at the tap (e.g.
    ``Projection.activation_max``), marks features with a maximum <= 0 as never active: their waves (and grids)
    are all zero whatever the projection. A feature whose waveform comes out numerically zero is silent too; its
    grid is zeroed as well, so pictures and sound agree.
    """
    check_choice(normalize, NORMALIZE, "normalisation")
    if output is not None:  # --output-sr: the grid carried onto the song's STFT at another rate
        grid = frontend.to_grid(D)
        waves, gains = _at_rate(grid, output, frontend=frontend, mode=mode, phase=phase, normalize=normalize,
                                reference=reference)  # fmt: skip
    elif not frontend.projection_is_audio:
        grid = frontend.to_grid(D)
        waves, gains = resynthesise(
            X, grid, frontend=frontend, mode=mode, phase=phase, length=length, normalize=normalize, reference=reference
        )
    else:
        audio = frontend.projected_audio(D, y=y)
        waves = np.zeros((len(audio), int(length)), dtype=np.float32)
        n = min(int(length), audio.shape[1])
        waves[:, :n] = audio[:, :n]
        if not np.all(np.isfinite(waves)):
            raise BadParameterError(
                "the projection contains NaN or infinite values; check the model and the deconvolution rule"
            )
        grid = np.abs(frontend.stft(waves)).astype(np.float32) if len(waves) else np.zeros((0, *X.shape), np.float32)
        gains = _normalise(waves, normalize)
    K = len(waves)
    never = np.zeros(K, dtype=bool)
    if activation_max is not None:
        amax = _as_numpy(activation_max).reshape(-1)
        if amax.shape != (K,):
            raise BadParameterError(f"activation_max must have one value per feature ({K}), got {amax.shape[0]}")
        never = ~(amax > 0)  # NaN counts as never active too
    zero = ~np.any(waves, axis=1) if waves.shape[1] else np.ones(K, dtype=bool)
    silent = never | zero
    if np.any(silent):
        waves[silent] = 0.0
        gains[silent] = 1.0
        grid = np.array(grid, copy=True)
        grid[silent] = 0.0
    reasons = [NEVER_ACTIVE if n else NUMERICALLY_ZERO if z else None for n, z in zip(never, zero)]
    rendered = Rendered(waves, gains, grid, silent, reasons)
    rendered.sr = frontend.sr if output is None else output[0].rate
    return rendered


def _at_rate(grid, output, *, frontend: Frontend, mode: str, phase: str, normalize: str, reference):
    """Waves and gains at ``output = (RateGrid, X_out, length_out)``'s rate (:mod:`auralise.render.rate`).

    ``partition``'s and ``distinct``'s masks are made on the model's grid (each feature's mean normalisation is that
    grid's), then carried and used as a plain mask (peak-normalising a 0/1 mask leaves it as it is where a claimed
    cell lands on the output grid, as at whole multiples of the model's rate)."""
    rate_grid, X_out, length = output
    T = X_out.shape[1]
    if mode in ("partition", "distinct"):
        from auralise.render.contrast import layer_masks

        carried = rate_grid.carry(layer_masks(mode, grid, reference, ZERO_PEAK), T)
        return resynthesise(X_out, carried, frontend=rate_grid.out, mode="mask", phase=phase, length=length,
                            normalize=normalize)  # fmt: skip
    if mode == "magnitude":  # the magnitude is carried; a longer window sums more samples
        carried = rate_grid.carry(frontend.grid_magnitude(grid), T) * np.float32(rate_grid.out.n_fft / frontend.n_fft)
    else:
        carried = rate_grid.carry(grid, T)
    return resynthesise(X_out, carried, frontend=rate_grid.out, mode=mode, phase=phase, length=length,
                        normalize=normalize, reference=rate_grid.reference(reference, T))  # fmt: skip


def _spectra(X: np.ndarray, D: np.ndarray, *, frontend: Frontend, mode: str, reference=None) -> np.ndarray:
    """Complex spectra Y, shape (k, F, T), for a group of features (original phase of X)."""
    if mode in LAYER_RELATIVE_MODES:
        from auralise.render.contrast import distinct_spectra, layer_masks

        if mode == "distinct":  # the default: masks made and applied in one pass
            return distinct_spectra(D, reference, ZERO_PEAK, X)
        return layer_masks(mode, D, reference, ZERO_PEAK) * X[None]
    if mode == "mask":
        R = np.maximum(D, 0.0)
        peak = R.max(axis=(1, 2)) if R.size else np.zeros(len(R), dtype=np.float32)
        loud = ~numerically_zero(peak)
        scale = np.zeros(len(R), dtype=np.float32)
        scale[loud] = (1.0 / peak[loud].astype(np.float64)).astype(np.float32)  # <= 1 / ZERO_PEAK: finite
        return (R * scale[:, None, None]) * X[None]
    mag = np.maximum(np.asarray(frontend.grid_magnitude(D), dtype=np.float32), 0.0)
    if not np.all(np.isfinite(mag)):
        raise BadParameterError(
            "the projection overflows float32 once the front-end's compression is undone; use the mask resynthesis"
        )
    if mag.size:
        mag[numerically_zero(mag.max(axis=(1, 2)))] = 0.0
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
