"""Front-ends: how audio becomes the model's input, and how the model's input space maps back to the STFT.

A :class:`Frontend` travels with a model. It computes the complex STFT ``X`` that resynthesis keeps for
its phase, turns ``X`` into the model input ``S`` (compression, scaling, tensor layout), and carries a
deconvolved ``D`` (same shape as ``S``) back onto ``X``'s time-frequency grid (:meth:`Frontend.to_grid`).

Three kinds:

``stft``
    ``S = compress(|X|)``; :meth:`Frontend.to_grid` only undoes the layout.
``mel``
    ``S = compress(W @ |X|**power)`` with ``W = librosa.filters.mel(...)`` (``n_mels`` x ``F``). Back to the
    grid with the filterbank's transpose normalised per STFT bin (``W.T @ D / W.T @ 1``), so a constant ``D``
    maps to a constant; no NNLS.
``cqt``
    ``S = compress(|librosa.cqt(y)|)`` (needs the audio: :meth:`Frontend.model_input` takes ``y=``, or use
    :meth:`Frontend.analyse`). Back to the grid by interpolation along log-frequency; CQT and STFT frames
    share ``hop_length`` and are both centred, so time is the identity.

The STFT ``X`` is computed for every kind: it supplies the phase (and, in mask mode, the magnitude) for
resynthesis. librosa and torch are imported lazily.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.errors import BadAudioError, BadModelError, BadParameterError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Frontend", "KINDS", "COMPRESSIONS", "LAYOUTS", "PAD_MODES", "MEL_NORMS", "KIND_KEYS"]

KINDS = ("stft", "mel", "cqt", "waveform")
PLANNED_KINDS: tuple[str, ...] = ()
COMPRESSIONS = ("linear", "power", "db", "log1p", "log10p")
MEL_NORMS = ("slaney", None)
LAYOUTS = ("BCFT", "BCTF", "BFT", "BTF")
PAD_MODES = ("constant", "reflect", "edge", "symmetric", "wrap")
REQUIRED = ("sr", "n_fft", "hop_length")

_COMPRESSION_NAMES = {
    "linear": "linear magnitude",
    "power": "power",
    "db": "dB magnitude",
    "log1p": "log(1+|X|)",
    "log10p": "log10(1+C|X|)",
}
# Keys that only some kinds use (their defaults are required for the other kinds, and to_dict omits them).
KIND_KEYS = {
    "stft": (),
    "mel": ("n_mels", "fmin", "fmax", "htk", "mel_norm", "power"),
    "cqt": ("n_bins", "bins_per_octave", "fmin"),
    "waveform": (),
}
_C1_HZ = 440.0 * 2.0 ** ((24 - 69) / 12)  # librosa.note_to_hz("C1"), the CQT's default fmin (32.70 Hz)
# Supported ranges of the numbers a model file gives (inclusive). A front-end comes from a file that may be hostile:
# unbounded sizes would let it allocate any amount of memory (n_fft 10**9 is a 22 GB window). hop_length is also
# at least n_fft / 64 and at most n_fft, and one patch of model input (patch_seconds) holds at most
# MAX_PATCH_VALUES numbers.
BOUNDS: dict[str, tuple[float, float]] = {
    "sr": (1000, 384000),
    "n_fft": (16, 65536),
    "amin": (1e-20, 1.0),
    "scale": (1e-12, 1e12),
    "log_scale": (1e-6, 1e12),
    "patch_seconds": (0.01, 600.0),
    "n_mels": (1, 1024),
    "n_bins": (1, 1024),
    "bins_per_octave": (1, 120),
    "cqt_fmin": (1.0, 192000.0),
}
MAX_PATCH_VALUES = 1 << 27


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _bad(key: str, want: str, got: Any) -> BadModelError:
    return BadModelError(f"front-end key {key!r} must be {want}, got {got!r}; fix the model's front-end")


def _check_range(key: str, value: float, lo: float | None = None, hi: float | None = None, how: str = "") -> None:
    """Refuse ``value`` outside ``lo..hi`` (default :data:`BOUNDS` of ``key``), naming key, value and range."""
    if lo is None or hi is None:
        lo, hi = BOUNDS[key]
    if not lo <= value <= hi:
        raise BadModelError(
            f"front-end key {key!r} is {value!r}, outside the supported range {lo:g}..{hi:g}{how}; "
            "fix the model's front-end"
        )


@dataclass(frozen=True, kw_only=True)
class Frontend:
    """The model's view of audio: STFT parameters, compression and input layout.

    Parameters
    ----------
    kind : {"stft", "mel", "cqt"}
        Front-end type: the model input is the (compressed) STFT magnitude, a mel spectrogram of it, or a
        constant-Q transform of the audio.
    sr : int
        Sample rate in Hz the model expects.
    n_fft : int
        FFT size; ``F = n_fft // 2 + 1`` frequency bins.
    hop_length : int
        Hop between frames in samples.
    win_length : int or None
        Window length (``<= n_fft``); None means ``n_fft``.
    window : str
        Window name understood by ``scipy.signal.get_window`` (default "hann").
    center : bool
        Centre frames on ``t * hop_length`` by padding ``n_fft // 2`` on both sides.
    pad_mode : str
        Padding used when ``center`` (one of :data:`PAD_MODES`).
    compression : {"linear", "power", "db", "log1p", "log10p"}
        Applied to ``m = scale * v`` (``v`` = ``|X|``, the mel energies or ``|CQT|``): ``m``, ``m**2``,
        ``20 log10(max(m, amin))``, ``log(1 + m)``, ``log10(1 + log_scale * m)``.
    amin : float
        Floor for "db" compression.
    scale : float
        Multiplier applied to the magnitude before compression.
    log_scale : float
        ``C`` of the "log10p" compression ``log10(1 + C m)`` (default 10000, musicnn's). Only with "log10p".
    layout : {"BCFT", "BCTF", "BFT", "BTF"}
        Model input layout: batch x 1 x freq x time, batch x 1 x time x freq, batch x freq x time
        (1-D convolutions, frequency as channels), batch x time x freq.
    patch_seconds : float or None
        Fixed input length the model was trained on, if any (informational; conv layers accept any length).
    n_mels : int
        mel only: number of mel bands (default 96).
    fmin : float or None
        mel: lowest filterbank frequency in Hz (None -> 0). cqt: frequency of the lowest bin (None -> C1,
        32.70 Hz). Resolved to a number on construction; must be None for stft.
    fmax : float or None
        mel only: highest filterbank frequency in Hz, at most ``sr / 2`` (None -> ``sr / 2``).
    htk : bool
        mel only: HTK mel scale (True) or Slaney's (False, librosa's default).
    mel_norm : {"slaney", None}
        mel only: "slaney" scales each triangle to unit area per Hz (librosa's default); None keeps peak 1.
    power : float
        mel only: 1 (mel of the magnitude ``|X|``) or 2 (mel of the power ``|X|**2``, default).
    n_bins : int
        cqt only: number of constant-Q bins (default 84).
    bins_per_octave : int
        cqt only: bins per octave (default 12).

    Every number is bounded (:data:`BOUNDS`): sr 1000..384000 Hz, n_fft 16..65536, hop_length n_fft/64..n_fft
    (rounded up), win_length 1..n_fft, amin 1e-20..1, scale 1e-12..1e12, log_scale 1e-6..1e12, patch_seconds
    0.01..600 and at most 2**27 input values per patch, n_mels 1..1024, mel fmin/fmax within 0..sr/2, n_bins
    1..1024, bins_per_octave 1..120, CQT fmin 1 Hz..sr/2; booleans, NaN and infinities are refused.

    Examples
    --------
    >>> fe = Frontend(sr=11025, n_fft=512, hop_length=256)
    >>> fe.describe()
    'STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT'
    >>> Frontend.from_dict(fe.to_dict()) == fe
    True
    >>> mel = Frontend(kind="mel", sr=16000, n_fft=512, hop_length=256, compression="log10p")
    >>> mel.input_shape(10)
    (1, 96, 10)
    """

    kind: str = "stft"
    sr: int
    n_fft: int
    hop_length: int
    win_length: int | None = None
    window: str = "hann"
    center: bool = True
    pad_mode: str = "constant"
    compression: str = "linear"
    amin: float = 1e-5
    scale: float = 1.0
    layout: str = "BCFT"
    patch_seconds: float | None = None
    log_scale: float = 10000.0
    n_mels: int = 96
    fmin: float | None = None
    fmax: float | None = None
    htk: bool = False
    mel_norm: str | None = "slaney"
    power: float = 2.0
    n_bins: int = 84
    bins_per_octave: int = 12

    # ------------------------------------------------------------------ construction / validation
    def __post_init__(self) -> None:
        kind = self.kind
        if not isinstance(kind, str) or kind not in KINDS:
            if isinstance(kind, str) and kind in PLANNED_KINDS:
                raise BadModelError(
                    f"front-end kind {kind!r} not supported yet; only 'stft' is (save the model with an STFT front-end)"
                )
            raise _bad("kind", f"one of {', '.join(KINDS)}", kind)
        for key in ("sr", "n_fft", "hop_length"):
            v = getattr(self, key)
            if not _is_int(v) or v <= 0:
                raise _bad(key, "a positive integer", v)
            object.__setattr__(self, key, int(v))
        _check_range("sr", self.sr)
        _check_range("n_fft", self.n_fft)
        _check_range("hop_length", self.hop_length, -(-self.n_fft // 64), self.n_fft, " (n_fft/64..n_fft)")
        if self.win_length is not None:
            if not _is_int(self.win_length) or not 0 < self.win_length <= self.n_fft:
                raise _bad("win_length", f"null or an integer in 1..n_fft ({self.n_fft})", self.win_length)
            object.__setattr__(self, "win_length", int(self.win_length))
        if not isinstance(self.window, str) or not self.window:
            raise _bad("window", "a window name such as 'hann', 'hamming' or 'blackman'", self.window)
        try:
            import scipy.signal

            scipy.signal.get_window(self.window, self.win_length or self.n_fft, fftbins=True)
        except (ValueError, TypeError) as exc:
            raise _bad("window", "a window name such as 'hann', 'hamming' or 'blackman'", self.window) from exc
        if not isinstance(self.center, bool | np.bool_):
            raise _bad("center", "true or false", self.center)
        object.__setattr__(self, "center", bool(self.center))
        if self.pad_mode not in PAD_MODES:
            raise _bad("pad_mode", f"one of {', '.join(PAD_MODES)}", self.pad_mode)
        if self.compression not in COMPRESSIONS:
            raise _bad("compression", f"one of {', '.join(COMPRESSIONS)}", self.compression)
        for key in ("amin", "scale"):
            v = getattr(self, key)
            if not _is_number(v) or not math.isfinite(v) or v <= 0:
                raise _bad(key, "a positive number", v)
            object.__setattr__(self, key, float(v))
            _check_range(key, getattr(self, key))
        if self.layout not in LAYOUTS:
            raise _bad("layout", f"one of {', '.join(LAYOUTS)}", self.layout)
        if self.patch_seconds is not None:
            v = self.patch_seconds
            if not _is_number(v) or not math.isfinite(v) or v <= 0:
                raise _bad("patch_seconds", "null or a positive number of seconds", v)
            object.__setattr__(self, "patch_seconds", float(v))
            _check_range("patch_seconds", self.patch_seconds)
        v = self.log_scale
        if not _is_number(v) or not math.isfinite(v) or v <= 0:
            raise _bad("log_scale", "a positive number (the C of log10(1 + C x))", v)
        object.__setattr__(self, "log_scale", float(v))
        _check_range("log_scale", self.log_scale)
        if self.compression != "log10p" and self.log_scale != 10000.0:
            raise BadModelError(
                "front-end key 'log_scale' applies only to compression 'log10p'; remove it or set that compression"
            )
        defaults = {f.name: f.default for f in fields(self)}
        for key in sorted(set().union(*KIND_KEYS.values()) - set(KIND_KEYS[self.kind])):
            if getattr(self, key) != defaults[key] or type(getattr(self, key)) is not type(defaults[key]):
                users = " or ".join(repr(k) for k, keys in KIND_KEYS.items() if key in keys)
                raise BadModelError(
                    f"front-end key {key!r} applies only to kind {users}, not {self.kind!r}; remove it or change kind"
                )
        if self.kind == "mel":
            self._check_mel()
        elif self.kind == "cqt":
            self._check_cqt()
        elif self.kind == "waveform" and (self.layout != "BFT" or self.compression != "linear"):
            raise BadModelError(
                "a 'waveform' front-end feeds the samples themselves, shape (1, 1, n): it needs layout 'BFT' and "
                "compression 'linear'"
            )
        if self.patch_seconds is not None:
            values = self.frames_for(self.patch_seconds) * self.n_input_freq
            if values > MAX_PATCH_VALUES:
                raise BadModelError(
                    f"front-end key 'patch_seconds' is {self.patch_seconds:g}: one patch would be {values} input "
                    f"values, more than the supported {MAX_PATCH_VALUES}; fix the model's front-end"
                )

    def _check_mel(self) -> None:
        nyq = self.sr / 2.0
        if not _is_int(self.n_mels) or self.n_mels <= 0:
            raise _bad("n_mels", "a positive integer", self.n_mels)
        object.__setattr__(self, "n_mels", int(self.n_mels))
        _check_range("n_mels", self.n_mels)
        fmin = 0.0 if self.fmin is None else self.fmin
        if not _is_number(fmin) or not math.isfinite(fmin) or not 0 <= fmin < nyq:
            raise _bad("fmin", f"null or a frequency in Hz in 0..sr/2 ({nyq:g}), exclusive", self.fmin)
        object.__setattr__(self, "fmin", float(fmin))
        if self.fmax is not None:
            v = self.fmax
            if not _is_number(v) or not math.isfinite(v) or not fmin < v <= nyq:
                raise _bad("fmax", f"null or a frequency in Hz above fmin ({fmin:g}) and at most sr/2 ({nyq:g})", v)
            object.__setattr__(self, "fmax", float(v))
        if not isinstance(self.htk, bool | np.bool_):
            raise _bad("htk", "true or false", self.htk)
        object.__setattr__(self, "htk", bool(self.htk))
        if self.mel_norm not in MEL_NORMS:
            raise _bad("mel_norm", "'slaney' or null", self.mel_norm)
        if not _is_number(self.power) or float(self.power) not in (1.0, 2.0):
            raise _bad("power", "1 (magnitude) or 2 (power)", self.power)
        object.__setattr__(self, "power", float(self.power))

    def _check_cqt(self) -> None:
        for key in ("n_bins", "bins_per_octave"):
            v = getattr(self, key)
            if not _is_int(v) or v <= 0:
                raise _bad(key, "a positive integer", v)
            object.__setattr__(self, key, int(v))
            _check_range(key, getattr(self, key))
        fmin = _C1_HZ if self.fmin is None else self.fmin
        if not _is_number(fmin) or not math.isfinite(fmin) or fmin <= 0:
            raise _bad("fmin", "null (C1, 32.70 Hz) or a positive frequency in Hz", self.fmin)
        object.__setattr__(self, "fmin", float(fmin))
        _check_range("fmin", self.fmin, BOUNDS["cqt_fmin"][0], self.sr / 2.0, " Hz (1 Hz..sr/2)")
        if not self.center:
            raise BadModelError(
                "a 'cqt' front-end needs center true (librosa's CQT frames are centred; the STFT's must match)"
            )
        import librosa

        freqs = librosa.cqt_frequencies(self.n_bins, fmin=self.fmin, bins_per_octave=self.bins_per_octave)
        r = 2.0 ** (1.0 / self.bins_per_octave)
        alpha = np.full(self.n_bins, (r * r - 1.0) / (r * r + 1.0))  # librosa's relative bandwidth for a CQT
        _, cutoff = librosa.filters.wavelet_lengths(freqs=freqs, sr=self.sr, alpha=alpha)
        if cutoff > self.sr / 2.0:
            raise BadModelError(
                f"a 'cqt' front-end with n_bins {self.n_bins} from fmin {self.fmin:.2f} Hz at {self.bins_per_octave} "
                f"bins per octave reaches {float(cutoff):.0f} Hz, above the Nyquist frequency {self.sr / 2:g} Hz; "
                "use fewer bins or a higher sr"
            )

    @classmethod
    def from_dict(cls, d: dict) -> Frontend:
        """Build a front-end from a plain dict (e.g. a model file's ``"frontend"`` entry).

        Parameters
        ----------
        d : dict
            Must contain ``sr``, ``n_fft`` and ``hop_length``; other keys are optional (see the class).

        Returns
        -------
        Frontend

        Raises
        ------
        BadModelError
            Not a dict, an unknown or missing key, or a value of the wrong type or range.
        """
        if not isinstance(d, dict):
            raise BadModelError(
                f"the model's front-end must be a dict with keys {', '.join(REQUIRED)}, got {type(d).__name__}"
            )
        allowed = [f.name for f in fields(cls)]
        unknown = sorted(str(k) for k in d if k not in allowed)
        if unknown:
            raise BadModelError(
                f"unknown front-end key(s) {', '.join(map(repr, unknown))}; allowed keys: {', '.join(allowed)}"
            )
        missing = [k for k in REQUIRED if k not in d]
        if missing:
            raise BadModelError(
                f"the model's front-end lacks {', '.join(map(repr, missing))}; give at least {', '.join(REQUIRED)}"
            )
        kind = d.get("kind", "stft")
        if isinstance(kind, str) and kind in KIND_KEYS:
            for key in sorted(set().union(*KIND_KEYS.values()) - set(KIND_KEYS[kind])):
                if key in d:
                    users = " or ".join(repr(k) for k, keys in KIND_KEYS.items() if key in keys)
                    raise BadModelError(
                        f"front-end key {key!r} applies only to kind {users}, not {kind!r}; remove it or change kind"
                    )
        if "log_scale" in d and d.get("compression") != "log10p":
            raise BadModelError(
                "front-end key 'log_scale' applies only to compression 'log10p'; remove it or set that compression"
            )
        return cls(**d)

    def to_dict(self) -> dict:
        """The front-end as a JSON-serialisable dict; ``Frontend.from_dict(fe.to_dict()) == fe``.

        Holds the STFT keys always, the keys of :data:`KIND_KEYS` only for their kind and ``log_scale`` only
        with "log10p" compression, so an STFT front-end's dict is what it always was.
        """
        d = asdict(self)
        for key in set().union(*KIND_KEYS.values()) - set(KIND_KEYS[self.kind]):
            del d[key]
        if self.compression != "log10p":
            del d["log_scale"]
        return d

    # ------------------------------------------------------------------ basic properties
    @property
    def n_freq(self) -> int:
        """Number of frequency bins ``F = n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def n_input_freq(self) -> int:
        """Size of the model input's frequency axis: ``n_freq`` (stft), ``n_mels`` (mel) or ``n_bins`` (cqt)."""
        return {"stft": self.n_freq, "mel": self.n_mels, "cqt": self.n_bins, "waveform": 1}[self.kind]

    @property
    def mel_fmax(self) -> float:
        """Effective upper mel frequency in Hz: ``fmax``, or ``sr / 2`` when it is None."""
        return self.sr / 2.0 if self.fmax is None else float(self.fmax)

    @property
    def min_samples(self) -> int:
        """Shortest audio (in samples at ``sr``) worth analysing: one full window, ``n_fft``."""
        return self.n_fft

    def describe(self) -> str:
        """One line, e.g. ``"STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT"``."""
        parts = [f"{self.kind.upper()} {self.sr} Hz", f"n_fft {self.n_fft}", f"hop {self.hop_length}"]
        if self.kind == "mel":
            mel = f"{self.n_mels} {'HTK' if self.htk else 'Slaney'} mels {self.fmin:g}-{self.mel_fmax:g} Hz"
            mel += f" ({self.mel_norm} norm)" if self.mel_norm else " (peak 1)"
            parts.append(mel)
            parts.append("of |X|" if self.power == 1.0 else "of |X|^2")
        elif self.kind == "cqt":
            parts.append(f"{self.n_bins} CQT bins from {self.fmin:.2f} Hz, {self.bins_per_octave}/octave")
        if self.win_length is not None and self.win_length != self.n_fft:
            parts.append(f"win {self.win_length}")
        if self.window != "hann":
            parts.append(f"{self.window} window")
        if not self.center:
            parts.append("not centred")
        elif self.pad_mode != "constant":
            parts.append(f"{self.pad_mode} padding")
        comp = _COMPRESSION_NAMES[self.compression]
        if self.compression == "db":
            comp += f" (amin {self.amin:g})"
        elif self.compression == "log10p":
            comp = f"log10(1+{self.log_scale:g}x)"
        if self.scale != 1.0:
            comp = f"{comp} of {self.scale:g}x|X|"
        parts.append(comp)
        parts.append(self.layout)
        if self.patch_seconds is not None:
            parts.append(f"{self.patch_seconds:g} s patches")
        return ", ".join(parts)

    # ------------------------------------------------------------------ STFT
    def stft(self, y: np.ndarray) -> np.ndarray:
        """Complex STFT with this front-end's parameters.

        Parameters
        ----------
        y : np.ndarray, shape (n,) or (..., n)
            Audio at ``sr``.

        Returns
        -------
        X : np.ndarray, shape (F, T) or (..., F, T), complex64
            ``F = n_fft // 2 + 1``; ``T = frames_for(n / sr)``.

        Raises
        ------
        BadAudioError
            The audio is shorter than one window (``center=False``) or has no samples.
        """
        import librosa

        y = np.asarray(y, dtype=np.float32)
        n = y.shape[-1] if y.ndim else 0
        if n == 0:
            raise BadAudioError("the audio has no samples; give a non-empty audio file")
        if not self.center and n < self.n_fft:
            raise BadAudioError(
                f"the audio is too short for the front-end: {n} samples, at least one window "
                f"({self.n_fft} samples, {self.n_fft / self.sr:.3f} s) is needed"
            )
        return librosa.stft(
            y,
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            win_length=self.win_length,
            window=self.window,
            center=self.center,
            pad_mode=self.pad_mode,
            dtype=np.complex64,
        )

    def istft(self, X: np.ndarray, length: int) -> np.ndarray:
        """Inverse STFT (overlap-add with window-sum normalisation).

        Parameters
        ----------
        X : np.ndarray, shape (..., F, T), complex
            STFT on this front-end's grid.
        length : int
            Number of output samples (padded with zeros or trimmed to exactly this).

        Returns
        -------
        y : np.ndarray, shape (..., length), float32
            With ``center=False``, samples no frame covers with a non-zero window weight (sample 0 for a
            periodic Hann window, and everything after the last full frame) are zero.
        """
        import librosa

        return librosa.istft(
            X,
            hop_length=self.hop_length,
            win_length=self.win_length,
            n_fft=self.n_fft,
            window=self.window,
            center=self.center,
            length=int(length),
            dtype=np.float32,
        )

    # ------------------------------------------------------------------ compression
    def compress(self, mag: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Map a magnitude ``|X|`` to the model's value scale (``scale`` first, then ``compression``).

        Parameters
        ----------
        mag : np.ndarray or torch.Tensor, any shape
            Non-negative magnitudes.

        Returns
        -------
        Same type and shape as ``mag``.
        """
        if _is_torch(mag):
            import torch as xp

            m = mag * self.scale
            if self.compression == "linear":
                return m
            if self.compression == "power":
                return m * m
            if self.compression == "db":
                return 20.0 * xp.log10(xp.clamp(m, min=self.amin))
            if self.compression == "log10p":
                return xp.log1p(m * self.log_scale) / math.log(10.0)
            return xp.log1p(m)
        m = np.asarray(mag)
        if not np.issubdtype(m.dtype, np.floating):
            m = m.astype(np.float32)
        m = m * m.dtype.type(self.scale)
        if self.compression == "linear":
            return m
        if self.compression == "power":
            return m * m
        if self.compression == "db":
            return (20.0 * np.log10(np.maximum(m, m.dtype.type(self.amin)))).astype(m.dtype, copy=False)
        if self.compression == "log10p":
            return np.log1p(m * m.dtype.type(self.log_scale)) / m.dtype.type(math.log(10.0))
        return np.log1p(m)

    def decompress(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Inverse of :meth:`compress`: back to magnitude (exact above ``amin`` for "db").

        "power" takes ``sqrt(max(v, 0))``; "db" ``10**(v/20)``; "log1p" ``expm1(v)``; "log10p"
        ``(10**v - 1) / log_scale``; then divides by ``scale``. "linear", "log1p" and "log10p" can return
        negative values for negative input: clip if needed. The result is in the model input's own domain:
        ``|X|`` for stft, the mel energy (``W @ |X|**power``) for mel, ``|CQT|`` for cqt; see
        :meth:`to_stft_magnitude` and :meth:`grid_magnitude` for magnitudes on the STFT grid.

        Parameters
        ----------
        values : np.ndarray or torch.Tensor, any shape

        Returns
        -------
        Same type and shape as ``values``.
        """
        inv = 1.0 / self.scale
        if _is_torch(values):
            import torch as xp

            v = values
            if self.compression == "linear":
                m = v
            elif self.compression == "power":
                m = xp.sqrt(xp.clamp(v, min=0.0))
            elif self.compression == "db":
                m = xp.pow(10.0, v / 20.0)
            elif self.compression == "log10p":
                m = xp.expm1(v * math.log(10.0)) / self.log_scale
            else:
                m = xp.expm1(v)
            return m * inv
        v = np.asarray(values)
        if not np.issubdtype(v.dtype, np.floating):
            v = v.astype(np.float32)
        t = v.dtype.type
        if self.compression == "linear":
            m = v
        elif self.compression == "power":
            m = np.sqrt(np.maximum(v, t(0)))
        elif self.compression == "db":
            m = np.power(t(10.0), v / t(20.0))
        elif self.compression == "log10p":
            m = np.expm1(v * t(math.log(10.0))) / t(self.log_scale)
        else:
            m = np.expm1(v)
        return m * t(inv)

    # ------------------------------------------------------------------ model input and back
    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """The model input before compression and layout: ``|X|``, the mel energies or ``|CQT|``.

        Parameters
        ----------
        X : np.ndarray, shape (F, T), complex (or a real magnitude), or None
            The STFT (``stft(y)``). For cqt it only fixes the frame count ``T`` (None: the CQT's own).
        y : np.ndarray, shape (n,), optional
            The audio; required for cqt, ignored otherwise.

        Returns
        -------
        np.ndarray, shape (F_in, T), float32
            ``F_in`` is :attr:`n_input_freq`.
        """
        if self.kind in ("cqt", "waveform"):
            if y is None:
                raise BadParameterError(
                    f"a {self.kind!r} front-end computes its input from the audio: call model_input(X, y=y) or "
                    "analyse(y)"
                )
            if self.kind == "waveform":
                return np.asarray(y, dtype=np.float32)[None, :]
            C = self._cqt_magnitude(y)
            if X is not None:
                C = _fit_frames(C, self._stft_frames(X))
            return C
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != self.n_freq:
            raise BadParameterError(f"expected an STFT of shape ({self.n_freq}, T) for this front-end, got {X.shape}")
        M = np.abs(X).astype(np.float32)
        if self.kind == "stft":
            return M
        if self.power == 2.0:
            M = M * M
        return _mel_basis(self) @ M

    def model_input(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> torch.Tensor:
        """The model's input tensor: ``compress(input_spectrogram(X, y=y))`` in :attr:`layout`, batch 1.

        stft: ``compress(|X|)``; mel: ``compress(W @ |X|**power)``; cqt: ``compress(|librosa.cqt(y)|)``, which
        needs the audio ``y`` (``X`` then only fixes the frame count so that CQT frame ``t`` is STFT frame ``t``).
        :meth:`analyse` does both steps from the audio for any kind.

        Parameters
        ----------
        X : np.ndarray, shape (F, T), complex (or a real magnitude), or None
            The STFT ``stft(y)``; may be None for cqt only.
        y : np.ndarray, shape (n,), optional
            The audio at ``sr``; required for cqt, ignored for stft and mel.

        Returns
        -------
        torch.Tensor, float32
            BCFT ``(1, 1, F_in, T)``, BCTF ``(1, 1, T, F_in)``, BFT ``(1, F_in, T)`` or BTF ``(1, T, F_in)``,
            ``F_in`` = :attr:`n_input_freq`.

        Raises
        ------
        BadParameterError
            ``X`` has the wrong shape, or a cqt front-end got no ``y``.
        """
        import torch

        S = np.asarray(self.compress(self.input_spectrogram(X, y=y)), dtype=np.float32)
        if self.layout == "BCFT":
            S = S[None, None]
        elif self.layout == "BCTF":
            S = S.T[None, None]
        elif self.layout == "BFT":
            S = S[None]
        else:  # BTF
            S = S.T[None]
        return torch.from_numpy(np.ascontiguousarray(S))

    def analyse(self, y: np.ndarray) -> tuple[np.ndarray, torch.Tensor]:
        """STFT and model input of the audio ``y`` in one call (works for every kind).

        Parameters
        ----------
        y : np.ndarray, shape (n,)
            Audio at ``sr``.

        Returns
        -------
        X : np.ndarray, shape (F, T), complex64
            ``stft(y)``, for resynthesis.
        S : torch.Tensor, shape (1, *input_shape(T)), float32
            ``model_input(X, y=y)``.
        """
        X = self.stft(y)
        return X, self.model_input(X, y=y)

    def input_shape(self, T: int) -> tuple[int, ...]:
        """Shape of :meth:`model_input` for ``T`` frames, without the batch dimension."""
        F = self.n_input_freq
        return {"BCFT": (1, F, T), "BCTF": (1, T, F), "BFT": (F, T), "BTF": (T, F)}[self.layout]

    def _unlayout(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Model-layout batch (K, *input_shape(T)) -> (K, F_in, T) float32."""
        if _is_torch(D):
            D = D.detach().to("cpu").float().numpy()
        D = np.asarray(D, dtype=np.float32)
        F = self.n_input_freq
        want = {"BCFT": "(K, 1, F, T)", "BCTF": "(K, 1, T, F)", "BFT": "(K, F, T)", "BTF": "(K, T, F)"}
        ok_ndim = 4 if self.layout in ("BCFT", "BCTF") else 3
        if D.ndim != ok_ndim or (ok_ndim == 4 and D.shape[1] != 1):
            raise BadParameterError(
                f"expected an array of shape {want[self.layout]} with F={F} for layout {self.layout}, got {D.shape}"
            )
        if self.layout == "BCFT":
            G = D[:, 0]
        elif self.layout == "BCTF":
            G = D[:, 0].transpose(0, 2, 1)
        elif self.layout == "BFT":
            G = D
        else:
            G = D.transpose(0, 2, 1)
        if G.shape[1] != F:
            raise BadParameterError(
                f"expected an array of shape {want[self.layout]} with F={F} for layout {self.layout}, got {D.shape}"
            )
        return G

    def to_grid(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Carry K model-input-shaped arrays back to the STFT grid.

        stft: the inverse of the layout. mel: ``A @ D`` with ``A = W.T / (W.T @ 1)`` (:meth:`grid_matrix`): each
        STFT bin gets the filter-weighted mean of the bands covering it, so a constant maps to the same
        constant; the bins at exactly ``fmin``/``fmax`` (zero weight in every triangle) take the nearest band,
        bins outside ``fmin..fmax`` get 0. cqt: linear interpolation along log-frequency, averaged over each
        STFT bin's width where CQT bins are denser than STFT bins; STFT bins within half a CQT bin of the
        CQT's range take the edge bin, bins further out get 0. Frames are shared (identity along time).

        Parameters
        ----------
        D : np.ndarray or torch.Tensor, shape (K, *model_input(X).shape[1:])
            E.g. deconvolved spectrograms, one per feature.

        Returns
        -------
        np.ndarray, shape (K, F, T), float32
            ``F = n_freq`` (STFT bins). Values stay in the model's (compressed) scale; :mod:`auralise.resynth`
            decides how to use them.
        """
        G = self._unlayout(D)
        if self.kind == "stft":
            return np.ascontiguousarray(G)
        if self.kind == "waveform":  # the projection is audio: its STFT magnitude, for pictures
            return np.stack([np.abs(self.stft(g[0])) for g in G]).astype(np.float32)
        return _apply(self.grid_matrix(), G)

    def projected_audio(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """A waveform front-end's projections, model-shaped (K, 1, n), as audio (K, n) float32."""
        if self.kind != "waveform":
            raise BadParameterError(f"only a 'waveform' front-end's projections are audio, not {self.kind!r} ones")
        return np.ascontiguousarray(self._unlayout(D)[:, 0])

    def grid_matrix(self) -> np.ndarray:
        """The linear map from the model input's frequency axis to STFT bins used by :meth:`to_grid`.

        Returns
        -------
        A : np.ndarray, shape (F, F_in), float32, read-only
            Rows sum to 1 inside the mapped frequency range and to 0 outside it (identity for stft).
        """
        return _grid_matrix(self)

    def to_stft_magnitude(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Magnitudes on the STFT grid from K model-input-shaped arrays (compression undone *before* mapping).

        stft: ``decompress(D)``. mel: the band energies ``P = decompress(D)`` divided by each filter's weight
        sum give a per-bin ``|X|**power`` (exact for a flat spectrum), mapped with :meth:`grid_matrix`, then
        the ``power``-th root (``sqrt`` for power 2). cqt: ``|CQT|`` times ``sum(window) / sqrt(L_b)`` (``L_b``
        the bin's filter length; makes a sinusoid's CQT peak equal its STFT peak), mapped with
        :meth:`grid_matrix`. Negative decompressed values are clipped to 0.

        Parameters
        ----------
        D : np.ndarray or torch.Tensor, shape (K, *input_shape(T))

        Returns
        -------
        np.ndarray, shape (K, F, T), float32
        """
        G = np.maximum(np.asarray(self.decompress(self._unlayout(D)), dtype=np.float32), 0.0)
        if self.kind == "stft":
            return np.ascontiguousarray(G)
        w = _input_weights(self)
        G = _apply(self.grid_matrix(), G * w[:, None])
        if self.kind == "mel" and self.power == 2.0:
            G = np.sqrt(G)
        return G

    def grid_magnitude(self, G: np.ndarray) -> np.ndarray:
        """Magnitudes from arrays already on the STFT grid (:meth:`to_grid` output): for resynthesis.

        stft: ``decompress(G)`` (unchanged behaviour). mel: ``decompress(G)`` is read as a mel energy per bin,
        divided by the (mapped) filter weight sum and ``power``-th rooted; cqt: ``decompress(G)`` times the
        mapped ``sum(window) / sqrt(L_b)`` gain (see :meth:`to_stft_magnitude`, which decompresses before
        mapping and is the more exact of the two). Negative values are clipped to 0 for mel and cqt.

        Parameters
        ----------
        G : np.ndarray, shape (..., F, T)

        Returns
        -------
        np.ndarray, shape (..., F, T), float32
        """
        m = np.asarray(self.decompress(np.asarray(G, dtype=np.float32)), dtype=np.float32)
        if self.kind == "stft":
            return m
        if m.ndim < 2 or m.shape[-2] != self.n_freq:
            raise BadParameterError(
                f"expected an array of shape (..., {self.n_freq}, T) on the STFT grid, got {m.shape}"
            )
        w = _grid_weights(self)
        m = np.maximum(m, 0.0) * w[:, None]
        if self.kind == "mel" and self.power == 2.0:
            m = np.sqrt(m)
        return m

    def _stft_frames(self, X: np.ndarray) -> int:
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != self.n_freq:
            raise BadParameterError(f"expected an STFT of shape ({self.n_freq}, T) for this front-end, got {X.shape}")
        return int(X.shape[1])

    def _cqt_magnitude(self, y: np.ndarray) -> np.ndarray:
        """``|librosa.cqt(y)|``, shape (n_bins, 1 + n // hop), float32 (tuning 0, Hann filters, centred)."""
        import librosa

        y = np.asarray(y, dtype=np.float32)
        if y.ndim != 1 or y.size == 0:
            raise BadAudioError(f"a 'cqt' front-end needs mono audio with samples, got shape {y.shape}")
        C = librosa.cqt(
            y,
            sr=self.sr,
            hop_length=self.hop_length,
            fmin=self.fmin,
            n_bins=self.n_bins,
            bins_per_octave=self.bins_per_octave,
            tuning=0.0,
            pad_mode=self.pad_mode,
        )
        return np.abs(C).astype(np.float32)

    # ------------------------------------------------------------------ axes
    def frame_times(self, T: int) -> np.ndarray:
        """Centre time of each of ``T`` frames in seconds, shape (T,).

        ``t * hop / sr`` when centred, else ``(t * hop + n_fft // 2) / sr``.
        """
        offset = 0 if self.center else self.n_fft // 2
        return (np.arange(int(T)) * self.hop_length + offset) / float(self.sr)

    def bin_freqs(self) -> np.ndarray:
        """Centre frequency of each bin in Hz, shape (F,): ``k * sr / n_fft``."""
        return np.fft.rfftfreq(self.n_fft, d=1.0 / self.sr)

    def input_freqs(self) -> np.ndarray:
        """Frequency axis of the model input in Hz, shape (F_in,).

        stft: :meth:`bin_freqs`; mel: band centre frequencies (``librosa.mel_frequencies`` without the two
        edge points); cqt: ``librosa.cqt_frequencies``. (:meth:`bin_freqs` stays the STFT grid's axis, the
        axis of :meth:`to_grid`'s output.)
        """
        return np.asarray(_input_freqs(self), dtype=np.float64)

    def frames_for(self, seconds: float) -> int:
        """Length of the model input's time axis for ``seconds`` of audio (``round(seconds * sr)`` samples): STFT
        frames, or the samples themselves for a waveform front-end."""
        n = int(round(float(seconds) * self.sr))
        if n <= 0 or self.kind == "waveform":
            return max(n, 0)
        padded = n + 2 * (self.n_fft // 2) if self.center else n
        if padded < self.n_fft:
            return 0
        return 1 + (padded - self.n_fft) // self.hop_length


def _is_torch(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def _readonly(a: np.ndarray) -> np.ndarray:
    a = np.ascontiguousarray(a, dtype=np.float32)
    a.setflags(write=False)
    return a


def _apply(A: np.ndarray, G: np.ndarray) -> np.ndarray:
    """``A @ G[k]`` for every k: (F, F_in) x (K, F_in, T) -> (K, F, T) float32, C-contiguous."""
    return np.ascontiguousarray(np.matmul(A, G, dtype=np.float32))


def _fit_frames(C: np.ndarray, T: int) -> np.ndarray:
    """Trim ``C`` (F_in, T_c) to ``T`` frames, or pad by repeating the last frame (frames start together)."""
    if C.shape[1] >= T:
        return np.ascontiguousarray(C[:, :T])
    return np.pad(C, ((0, 0), (0, T - C.shape[1])), mode="edge")


@functools.lru_cache(maxsize=32)
def _mel_basis(fe: Frontend) -> np.ndarray:
    """``librosa.filters.mel`` for this front-end, shape (n_mels, F), float32, read-only."""
    import librosa

    W = librosa.filters.mel(
        sr=fe.sr,
        n_fft=fe.n_fft,
        n_mels=fe.n_mels,
        fmin=fe.fmin,
        fmax=fe.mel_fmax,
        htk=fe.htk,
        norm=fe.mel_norm,
        dtype=np.float32,
    )
    return _readonly(W)


def _input_freqs(fe: Frontend) -> np.ndarray:
    import librosa

    if fe.kind == "mel":
        return librosa.mel_frequencies(n_mels=fe.n_mels + 2, fmin=fe.fmin, fmax=fe.mel_fmax, htk=fe.htk)[1:-1]
    if fe.kind == "cqt":
        return librosa.cqt_frequencies(n_bins=fe.n_bins, fmin=fe.fmin, bins_per_octave=fe.bins_per_octave)
    return fe.bin_freqs()


@functools.lru_cache(maxsize=32)
def _grid_matrix(fe: Frontend) -> np.ndarray:
    """(F, F_in) map from the model input's frequency axis to STFT bins; see :meth:`Frontend.to_grid`."""
    f = fe.bin_freqs()
    F = fe.n_freq
    if fe.kind == "stft":
        return _readonly(np.eye(F))
    if fe.kind == "mel":
        Wt = _mel_basis(fe).T.astype(np.float64)  # (F, n_mels)
        rows = Wt.sum(axis=1)
        A = np.divide(Wt, rows[:, None], out=np.zeros_like(Wt), where=rows[:, None] > 0)
        # Bins inside fmin..fmax that no triangle reaches (those at exactly fmin or fmax): nearest band.
        centres = _input_freqs(fe)
        empty = np.flatnonzero((rows <= 0) & (f >= fe.fmin) & (f <= fe.mel_fmax))
        for k in empty:
            A[k, int(np.argmin(np.abs(centres - f[k])))] = 1.0
        return _readonly(A)
    # cqt: mean, over the STFT bin's width, of the piecewise-linear interpolant along q = bpo*log2(f/fmin)
    n, bpo = fe.n_bins, fe.bins_per_octave
    A = np.zeros((F, n))
    df = fe.sr / fe.n_fft
    for k in range(F):
        lo, hi = f[k] - df / 2, min(f[k] + df / 2, fe.sr / 2)
        lo = lo if lo > 0 else hi * 1e-3  # the DC bin: from just above 0 Hz
        q_lo, q_hi = bpo * math.log2(lo / fe.fmin), bpo * math.log2(hi / fe.fmin)
        if q_hi < -0.5 or q_lo > n - 0.5:
            continue
        S = min(256, max(1, math.ceil(2 * (q_hi - q_lo))))
        fs = lo + (np.arange(S) + 0.5) * (hi - lo) / S if S > 1 else np.array([f[k]])
        q = bpo * np.log2(fs / fe.fmin)
        q = q[(q >= -0.5) & (q <= n - 0.5)]
        q = np.clip(q, 0.0, n - 1.0)
        i0 = np.minimum(np.floor(q).astype(int), n - 1)
        frac = q - i0
        i1 = np.minimum(i0 + 1, n - 1)
        np.add.at(A[k], i0, (1.0 - frac) / S)
        np.add.at(A[k], i1, frac / S)
    return _readonly(A)


@functools.lru_cache(maxsize=32)
def _input_weights(fe: Frontend) -> np.ndarray:
    """Per input bin, the factor that turns a decompressed value into an STFT-magnitude-like one.

    mel: ``1 / sum_k W[b, k]`` (band energy -> per-bin ``|X|**power``; 0 for empty bands); cqt:
    ``sum(window) / sqrt(L_b)`` with ``L_b`` librosa's filter length; stft: 1.
    """
    if fe.kind == "mel":
        wsum = _mel_basis(fe).astype(np.float64).sum(axis=1)
        return _readonly(np.divide(1.0, wsum, out=np.zeros_like(wsum), where=wsum > 0))
    if fe.kind == "cqt":
        import librosa
        import scipy.signal

        win = scipy.signal.get_window(fe.window, fe.win_length or fe.n_fft, fftbins=True)
        r = 2.0 ** (1.0 / fe.bins_per_octave)
        freqs = _input_freqs(fe)
        alpha = np.full(fe.n_bins, (r * r - 1.0) / (r * r + 1.0))
        lengths, _ = librosa.filters.wavelet_lengths(freqs=freqs, sr=fe.sr, alpha=alpha)
        return _readonly(np.sum(win) / np.sqrt(lengths))
    return _readonly(np.ones(fe.n_freq))


@functools.lru_cache(maxsize=32)
def _grid_weights(fe: Frontend) -> np.ndarray:
    """:func:`_input_weights` carried to the STFT bins with the grid matrix, shape (F,)."""
    return _readonly(_grid_matrix(fe).astype(np.float64) @ _input_weights(fe).astype(np.float64))
