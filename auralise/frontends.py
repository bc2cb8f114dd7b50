"""Front-ends: how audio becomes the model's input, and how the model's input space maps back to the STFT.

A :class:`Frontend` travels with a model. It computes the complex STFT ``X`` that resynthesis keeps for
its phase, turns ``X`` into the model input ``S`` (compression, scaling, tensor layout), and carries a
deconvolved ``D`` (same shape as ``S``) back onto ``X``'s time-frequency grid (:meth:`Frontend.to_grid`).

Only ``kind="stft"`` is implemented; ``"mel"`` and ``"cqt"`` are reserved names. librosa and torch are
imported lazily.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.errors import BadAudioError, BadModelError, BadParameterError

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["Frontend", "KINDS", "COMPRESSIONS", "LAYOUTS", "PAD_MODES"]

KINDS = ("stft",)
PLANNED_KINDS = ("mel", "cqt")
COMPRESSIONS = ("linear", "power", "db", "log1p")
LAYOUTS = ("BCFT", "BCTF", "BFT", "BTF")
PAD_MODES = ("constant", "reflect", "edge", "symmetric", "wrap")
REQUIRED = ("sr", "n_fft", "hop_length")

_COMPRESSION_NAMES = {
    "linear": "linear magnitude",
    "power": "power",
    "db": "dB magnitude",
    "log1p": "log(1+|X|)",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def _bad(key: str, want: str, got: Any) -> BadModelError:
    return BadModelError(f"front-end key {key!r} must be {want}, got {got!r}; fix the model's front-end")


@dataclass(frozen=True, kw_only=True)
class Frontend:
    """The model's view of audio: STFT parameters, compression and input layout.

    Parameters
    ----------
    kind : {"stft"}
        Front-end type ("mel" and "cqt" are planned, not supported yet).
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
    compression : {"linear", "power", "db", "log1p"}
        Applied to ``scale * |X|``: ``m``, ``m**2``, ``20 log10(max(m, amin))``, ``log(1 + m)``.
    amin : float
        Floor for "db" compression.
    scale : float
        Multiplier applied to the magnitude before compression.
    layout : {"BCFT", "BCTF", "BFT", "BTF"}
        Model input layout: batch x 1 x freq x time, batch x 1 x time x freq, batch x freq x time
        (1-D convolutions, frequency as channels), batch x time x freq.
    patch_seconds : float or None
        Fixed input length the model was trained on, if any (informational; conv layers accept any length).

    Examples
    --------
    >>> fe = Frontend(sr=11025, n_fft=512, hop_length=256)
    >>> fe.describe()
    'STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT'
    >>> Frontend.from_dict(fe.to_dict()) == fe
    True
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

    # ------------------------------------------------------------------ construction / validation
    def __post_init__(self) -> None:
        kind = self.kind
        if not isinstance(kind, str) or kind not in KINDS:
            if isinstance(kind, str) and kind in PLANNED_KINDS:
                raise BadModelError(
                    f"front-end kind {kind!r} not supported yet; only 'stft' is (save the model with an STFT front-end)"
                )
            raise _bad("kind", f"one of {', '.join(KINDS + PLANNED_KINDS)} (only 'stft' supported yet)", kind)
        for key in ("sr", "n_fft", "hop_length"):
            v = getattr(self, key)
            if not _is_int(v) or v <= 0:
                raise _bad(key, "a positive integer", v)
            object.__setattr__(self, key, int(v))
        if self.n_fft < 2:
            raise _bad("n_fft", "an integer >= 2", self.n_fft)
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
        if self.layout not in LAYOUTS:
            raise _bad("layout", f"one of {', '.join(LAYOUTS)}", self.layout)
        if self.patch_seconds is not None:
            v = self.patch_seconds
            if not _is_number(v) or not math.isfinite(v) or v <= 0:
                raise _bad("patch_seconds", "null or a positive number of seconds", v)
            object.__setattr__(self, "patch_seconds", float(v))

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
        return cls(**d)

    def to_dict(self) -> dict:
        """All fields as a JSON-serialisable dict; ``Frontend.from_dict(fe.to_dict()) == fe``."""
        return asdict(self)

    # ------------------------------------------------------------------ basic properties
    @property
    def n_freq(self) -> int:
        """Number of frequency bins ``F = n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def min_samples(self) -> int:
        """Shortest audio (in samples at ``sr``) worth analysing: one full window, ``n_fft``."""
        return self.n_fft

    def describe(self) -> str:
        """One line, e.g. ``"STFT 11025 Hz, n_fft 512, hop 256, linear magnitude, BCFT"``."""
        parts = [f"STFT {self.sr} Hz", f"n_fft {self.n_fft}", f"hop {self.hop_length}"]
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
        return np.log1p(m)

    def decompress(self, values: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
        """Inverse of :meth:`compress`: back to magnitude (exact above ``amin`` for "db").

        "power" takes ``sqrt(max(v, 0))``; "db" ``10**(v/20)``; "log1p" ``expm1(v)``; then divides by
        ``scale``. "linear" and "log1p" can return negative values for negative input: clip if needed.

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
        else:
            m = np.expm1(v)
        return m * t(inv)

    # ------------------------------------------------------------------ model input and back
    def model_input(self, X: np.ndarray) -> torch.Tensor:
        """The model's input tensor for an STFT ``X``: ``compress(|X|)`` in :attr:`layout`, batch 1.

        Parameters
        ----------
        X : np.ndarray, shape (F, T), complex (or a real magnitude)

        Returns
        -------
        torch.Tensor, float32
            BCFT ``(1, 1, F, T)``, BCTF ``(1, 1, T, F)``, BFT ``(1, F, T)`` or BTF ``(1, T, F)``.
        """
        import torch

        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] != self.n_freq:
            raise BadParameterError(f"expected an STFT of shape ({self.n_freq}, T) for this front-end, got {X.shape}")
        S = np.asarray(self.compress(np.abs(X).astype(np.float32)), dtype=np.float32)
        if self.layout == "BCFT":
            S = S[None, None]
        elif self.layout == "BCTF":
            S = S.T[None, None]
        elif self.layout == "BFT":
            S = S[None]
        else:  # BTF
            S = S.T[None]
        return torch.from_numpy(np.ascontiguousarray(S))

    def input_shape(self, T: int) -> tuple[int, ...]:
        """Shape of :meth:`model_input` for ``T`` frames, without the batch dimension."""
        F = self.n_freq
        return {"BCFT": (1, F, T), "BCTF": (1, T, F), "BFT": (F, T), "BTF": (T, F)}[self.layout]

    def to_grid(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """Carry K model-input-shaped arrays back to the STFT grid (the inverse of the layout).

        Parameters
        ----------
        D : np.ndarray or torch.Tensor, shape (K, *model_input(X).shape[1:])
            E.g. deconvolved spectrograms, one per feature.

        Returns
        -------
        np.ndarray, shape (K, F, T), float32
            Values stay in the model's (compressed) scale; :mod:`auralise.resynth` decides how to use them.
        """
        if _is_torch(D):
            D = D.detach().to("cpu").float().numpy()
        D = np.asarray(D, dtype=np.float32)
        F = self.n_freq
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
        return np.ascontiguousarray(G)

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

    def frames_for(self, seconds: float) -> int:
        """Number of STFT frames :meth:`stft` gives for ``seconds`` of audio (``round(seconds * sr)``)."""
        n = int(round(float(seconds) * self.sr))
        if n <= 0:
            return 0
        padded = n + 2 * (self.n_fft // 2) if self.center else n
        if padded < self.n_fft:
            return 0
        return 1 + (padded - self.n_fft) // self.hop_length


def _is_torch(x: Any) -> bool:
    """True for a torch.Tensor, without importing torch."""
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")
