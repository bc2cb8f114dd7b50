"""The ``mel`` front-end: ``S = compress(W @ |X|**power)`` with ``W = librosa.filters.mel(...)`` (n_mels x F;
:mod:`auralise.frontends.melscale` makes it, bit for bit).

Back to the STFT grid with the filterbank's transpose normalised per STFT bin (``W.T @ D / W.T @ 1``), so a constant
``D`` maps to a constant; no NNLS. musicnn's front-end is one (:data:`auralise.importers.musicnn.MUSICNN_FRONTEND`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from auralise.choices import MEL_NORMS
from auralise.frontends import checks
from auralise.frontends.arrays import readonly
from auralise.frontends.base import Frontend
from auralise.frontends.checks import bad, check_range
from auralise.frontends.melscale import mel_filterbank, mel_frequencies

__all__ = ["MelFrontend"]


@dataclass(frozen=True, kw_only=True)
class MelFrontend(Frontend):
    """A mel spectrogram of the STFT as model input, ``F_in = n_mels``.

    Parameters
    ----------
    n_mels : int
        Number of mel bands (default 96), 1..1024.
    fmin : float or None
        Lowest filterbank frequency in Hz (None -> 0), below ``sr / 2``. Resolved to a number on construction.
    fmax : float or None
        Highest filterbank frequency in Hz, above ``fmin`` and at most ``sr / 2`` (None -> ``sr / 2``).
    htk : bool
        HTK mel scale (True) or Slaney's (False, librosa's default).
    mel_norm : {"slaney", None}
        "slaney" scales each triangle to unit area per Hz (librosa's default); None keeps peak 1.
    power : float
        1 (mel of the magnitude ``|X|``) or 2 (mel of the power ``|X|**2``, default).

    The shared fields are :class:`~auralise.frontends.Frontend`'s.

    Examples
    --------
    >>> fe = Frontend(kind="mel", sr=16000, n_fft=512, hop_length=256, compression="log10p")
    >>> fe.input_shape(10), fe.mel_fmax
    ((1, 96, 10), 8000.0)
    """

    kind: str = "mel"
    n_mels: int = 96
    fmin: float | None = None
    fmax: float | None = None
    htk: bool = False
    mel_norm: str | None = "slaney"
    power: float = 2.0

    streamable: ClassVar[bool] = True

    def _check(self) -> None:
        nyq = self.sr / 2.0
        checks.positive_int(self, "n_mels")
        check_range("n_mels", self.n_mels)
        fmin = 0.0 if self.fmin is None else self.fmin
        if not checks.is_number(fmin) or not math.isfinite(fmin) or not 0 <= fmin < nyq:
            raise bad("fmin", f"null or a frequency in Hz in 0..sr/2 ({nyq:g}), exclusive", self.fmin)
        checks.set_field(self, "fmin", float(fmin))
        if self.fmax is not None:
            v = self.fmax
            if not checks.is_number(v) or not math.isfinite(v) or not fmin < v <= nyq:
                raise bad("fmax", f"null or a frequency in Hz above fmin ({fmin:g}) and at most sr/2 ({nyq:g})", v)
            checks.set_field(self, "fmax", float(v))
        checks.boolean(self, "htk")
        checks.one_of(self, "mel_norm", MEL_NORMS, "'slaney' or null")
        if not checks.is_number(self.power) or float(self.power) not in (1.0, 2.0):
            raise bad("power", "1 (magnitude) or 2 (power)", self.power)
        checks.set_field(self, "power", float(self.power))

    @property
    def mel_fmax(self) -> float:
        """Effective upper mel frequency in Hz: ``fmax``, or ``sr / 2`` when it is None."""
        return self.sr / 2.0 if self.fmax is None else float(self.fmax)

    @property
    def n_input_freq(self) -> int:
        """``n_mels``."""
        return self.n_mels

    def _describe_input(self) -> list[str]:
        mel = f"{self.n_mels} {'HTK' if self.htk else 'Slaney'} mels {self.fmin:g}-{self.mel_fmax:g} Hz"
        mel += f" ({self.mel_norm} norm)" if self.mel_norm else " (peak 1)"
        return [mel, "of |X|" if self.power == 1.0 else "of |X|^2"]

    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """The mel energies ``W @ |X|**power``, shape (n_mels, T), float32 (``y`` is ignored)."""
        M = np.abs(self._checked_stft(X)).astype(np.float32)
        if self.power == 2.0:
            M = M * M
        return _mel_basis(self) @ M

    def input_freqs(self) -> np.ndarray:
        """Band centre frequencies in Hz, shape (n_mels,): ``librosa.mel_frequencies`` without the two edges."""
        return np.asarray(_centres(self), dtype=np.float64)

    def grid_matrix(self) -> np.ndarray:
        """``A = W.T / (W.T @ 1)``, shape (F, n_mels): each STFT bin gets the filter-weighted mean of the bands
        covering it, so a constant maps to the same constant; the bins at exactly ``fmin``/``fmax`` (zero weight in
        every triangle) take the nearest band, bins outside ``fmin..fmax`` get 0."""
        return _grid_matrix(self)

    def _input_weights(self) -> np.ndarray:
        """``1 / sum_k W[b, k]``: a band energy as a per-bin ``|X|**power`` (0 for empty bands)."""
        return _input_weights(self)

    def _root(self, m: np.ndarray) -> np.ndarray:
        """The ``power``-th root: ``sqrt`` for power 2."""
        return np.sqrt(m) if self.power == 2.0 else m


@functools.lru_cache(maxsize=32)
def _mel_basis(fe: MelFrontend) -> np.ndarray:
    """``librosa.filters.mel`` for this front-end, shape (n_mels, F), float32, read-only."""
    W = mel_filterbank(sr=fe.sr, n_fft=fe.n_fft, n_mels=fe.n_mels, fmin=fe.fmin, fmax=fe.mel_fmax, htk=fe.htk,
                       norm=fe.mel_norm, dtype=np.float32)  # fmt: skip
    return readonly(W)


def _centres(fe: MelFrontend) -> np.ndarray:
    return mel_frequencies(fe.n_mels + 2, fmin=fe.fmin, fmax=fe.mel_fmax, htk=fe.htk)[1:-1]


@functools.lru_cache(maxsize=32)
def _grid_matrix(fe: MelFrontend) -> np.ndarray:
    f = fe.bin_freqs()
    Wt = _mel_basis(fe).T.astype(np.float64)  # (F, n_mels)
    rows = Wt.sum(axis=1)
    A = np.divide(Wt, rows[:, None], out=np.zeros_like(Wt), where=rows[:, None] > 0)
    # Bins inside fmin..fmax that no triangle reaches (those at exactly fmin or fmax): nearest band.
    centres = _centres(fe)
    empty = np.flatnonzero((rows <= 0) & (f >= fe.fmin) & (f <= fe.mel_fmax))
    for k in empty:
        A[k, int(np.argmin(np.abs(centres - f[k])))] = 1.0
    return readonly(A)


@functools.lru_cache(maxsize=32)
def _input_weights(fe: MelFrontend) -> np.ndarray:
    wsum = _mel_basis(fe).astype(np.float64).sum(axis=1)
    return readonly(np.divide(1.0, wsum, out=np.zeros_like(wsum), where=wsum > 0))
