"""The ``contrast`` listening mode: what is particular to a feature, relative to its layer.

Choi's ``mask`` multiplies the song's STFT by the feature's rectified projection normalised to peak 1,
``M_f = max(G_f, 0) / max(max(G_f, 0))`` (``G_f`` the projection on the STFT grid), so every feature inherits what
the song and the layer's features share — the song's spectral tilt and the cells the whole layer responds to — and
most features sound like the same copy of the song. ``contrast`` keeps only the cells where the feature stands out
from its layer:

    C_f = max(M_f - KAPPA * Mbar, 0) / max(max(M_f - KAPPA * Mbar, 0)),     Mbar = mean_g M_g,

with the mean over the layer's *active* features ``g`` (those with a non-silent projection on the song: the layer's
reference, :class:`MeanMask`), and ``Y_f = C_f * X`` with the song's own phase. ``KAPPA = 1``: a cell is heard
where the feature's mask exceeds the layer's average there. Measured by :mod:`auralise.studies.faithfulness` on the
Choi demo model (README, "Listening modes"; ``benchmarks/faithfulness.py``), ``KAPPA = 2`` set features further
apart but lowered their specificity on layers 1, 3 and 5; ``KAPPA = 1`` keeps more of each feature's response. A
feature whose mask nowhere exceeds ``KAPPA * Mbar`` is silent in this mode.

The reference needs every feature of the layer projected on the whole song (:func:`auralise.session.layer_mean_mask`):
the first feature of a layer costs the layer's projection; the others reuse it.
"""

from __future__ import annotations

import numpy as np

from auralise.errors import BadParameterError

__all__ = ["KAPPA", "MeanMask", "contrast_masks", "peak_normalised"]

KAPPA = 1.0


def peak_normalised(G: np.ndarray, zero_peak: float) -> tuple[np.ndarray, np.ndarray]:
    """``max(G, 0)`` scaled to peak 1 per feature, and which features were loud.

    Parameters
    ----------
    G : np.ndarray, shape (K, F, T)
        Projections on the STFT grid.
    zero_peak : float
        Peaks at or below this are numerically zero: those features' masks are all zero.

    Returns
    -------
    M : np.ndarray, shape (K, F, T), float32
    loud : np.ndarray, shape (K,), bool
    """
    R = np.maximum(np.asarray(G, dtype=np.float32), 0.0)
    peak = R.reshape(len(R), -1).max(axis=1).astype(np.float64) if R.size else np.zeros(len(R))
    loud = peak > zero_peak
    scale = np.zeros(len(R), dtype=np.float32)
    scale[loud] = (1.0 / peak[loud]).astype(np.float32)
    return R * scale[:, None, None], loud


class MeanMask:
    """The layer's reference ``Mbar``: the mean of its active features' peak-normalised masks, fed in batches.

    Examples
    --------
    >>> acc = MeanMask(zero_peak=1e-30)
    >>> acc.add(np.stack([np.ones((2, 3)), 2 * np.ones((2, 3)), np.zeros((2, 3))]), np.array([1.0, 1.0, 1.0]))
    >>> acc.count, float(acc.mean()[0, 0])
    (2, 1.0)
    """

    def __init__(self, *, zero_peak: float):
        self.zero_peak = float(zero_peak)
        self.total: np.ndarray | None = None
        self.count = 0

    def add(self, G: np.ndarray, activation_max: np.ndarray) -> None:
        """Add a batch of projections ``G`` (k, F, T) on the grid; features with ``activation_max`` <= 0 (never
        active) or a numerically zero projection are left out."""
        M, loud = peak_normalised(G, self.zero_peak)
        use = loud & (np.asarray(activation_max, dtype=np.float64).reshape(-1) > 0)
        part = M[use].sum(axis=0, dtype=np.float64)
        self.total = part if self.total is None else self.total + part
        self.count += int(use.sum())

    def mean(self) -> np.ndarray:
        """``Mbar``, shape (F, T), float32; all zero when no feature of the layer is active."""
        if self.total is None:
            raise BadParameterError("the layer reference has no projections yet")
        return (self.total / max(self.count, 1)).astype(np.float32)


def contrast_masks(G: np.ndarray, reference: np.ndarray, zero_peak: float) -> np.ndarray:
    """The contrast masks ``C_f`` (K, F, T) of projections ``G`` (K, F, T) against the layer's ``Mbar`` (F, T)."""
    reference = np.asarray(reference, dtype=np.float32)
    if reference.shape != np.shape(G)[1:]:
        raise BadParameterError(f"the layer reference must have shape {np.shape(G)[1:]}, got {reference.shape}")
    M, _ = peak_normalised(G, zero_peak)
    C, _ = peak_normalised(M - np.float32(KAPPA) * reference[None], zero_peak)
    return C
