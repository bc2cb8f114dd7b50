"""The ``stft`` front-end: the model reads the (compressed) STFT magnitude itself, ``S = compress(|X|)``.

The model input's bins are the STFT's, so going back to the grid only undoes the layout.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from auralise.frontends.arrays import readonly
from auralise.frontends.base import Frontend

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["StftFrontend"]


@dataclass(frozen=True, kw_only=True)
class StftFrontend(Frontend):
    """The (compressed) STFT magnitude as model input: ``S = compress(|X|)``, ``F_in = F = n_fft // 2 + 1``.

    Only the fields shared by every kind (:class:`~auralise.frontends.Frontend`).

    Examples
    --------
    >>> fe = Frontend(sr=11025, n_fft=512, hop_length=256, compression="db")
    >>> type(fe).__name__, fe.n_input_freq, fe.field_hz(3)
    ('StftFrontend', 257, 64.599609375)
    """

    kind: str = "stft"

    streamable: ClassVar[bool] = True

    @property
    def n_input_freq(self) -> int:
        """``n_freq``: the model reads every STFT bin."""
        return self.n_freq

    def input_spectrogram(self, X: np.ndarray | None, *, y: np.ndarray | None = None) -> np.ndarray:
        """``|X|``, shape (F, T), float32 (``y`` is ignored)."""
        return np.abs(self._checked_stft(X)).astype(np.float32)

    def input_freqs(self) -> np.ndarray:
        """:meth:`bin_freqs`: the model input's bins are the STFT's."""
        return np.asarray(self.bin_freqs(), dtype=np.float64)

    def grid_matrix(self) -> np.ndarray:
        """The identity, shape (F, F)."""
        return _identity(self.n_freq)

    def to_grid(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """The inverse of the layout: (K, *input_shape(T)) -> (K, F, T) float32, C-contiguous."""
        return np.ascontiguousarray(self._unlayout(D))

    def to_stft_magnitude(self, D: np.ndarray | torch.Tensor) -> np.ndarray:
        """``max(decompress(D), 0)`` on the grid, shape (K, F, T), float32."""
        G = np.maximum(np.asarray(self.decompress(self._unlayout(D)), dtype=np.float32), 0.0)
        return np.ascontiguousarray(G)

    def grid_magnitude(self, G: np.ndarray) -> np.ndarray:
        """``decompress(G)``, float32, same shape (not clipped: resynthesis clips)."""
        return np.asarray(self.decompress(np.asarray(G, dtype=np.float32)), dtype=np.float32)

    def field_hz(self, bins: int) -> float:
        """``bins * sr / n_fft``: STFT bins are equally wide."""
        return bins * self.sr / self.n_fft


@functools.lru_cache(maxsize=32)
def _identity(F: int) -> np.ndarray:
    return readonly(np.eye(F))
