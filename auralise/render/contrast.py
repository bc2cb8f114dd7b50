"""The layer-relative listening modes, ``distinct`` (the default), ``contrast`` and ``partition``: a feature heard
relative to its layer.

Both need a reference computed from every feature of the layer on the whole song (:func:`layer_accumulator`, fed
batch by batch by :func:`auralise.session.layer_reference`), an (F, T) float32 array on the STFT grid;
:func:`layer_masks` makes a mode's masks from projections and that reference.

``contrast``
------------
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

``partition``
-------------
The song's STFT split among the layer's features: each cell goes to the feature that claims it most strongly
relative to its own typical level,

    N_g = max(G_g, 0) / mean(max(G_g, 0)),     W = max_g N_g,     P_f = [N_f > 0 and N_f >= W * (1 - TOL)],

with the mean over all F * T cells and the maximum over the layer's active features with a non-silent projection
(the layer's reference, :class:`WinnerMap`; 0 where none claims the cell), ``TOL`` = :data:`PARTITION_TOLERANCE`,
and ``Y_f = P_f * X`` with the song's own phase. The tolerance covers the last-bit differences between projections
computed in batches of different sizes. Barring exact ties, the masks of a layer's features cover each claimed cell
once, so the layer's partition auralisations (``--normalize none``) add up to the song restricted to the claimed
cells. On layers 1 and 2, whose features under ``mask`` all sound like the song, this is what sets them apart. With
``--output-sr`` the masks are made on the model's grid (the mean normalisation is the model grid's) and carried to
the output grid as a plain mask (:func:`auralise.render.resynth.render_waves`).

The reference needs every feature of the layer projected on the whole song (:func:`auralise.session.layer_reference`):
the first feature of a layer costs the layer's projection; the others reuse it.
"""

from __future__ import annotations

import numpy as np

from auralise.errors import BadParameterError

__all__ = [
    "DISTINCT_MARGIN",
    "KAPPA",
    "PARTITION_TOLERANCE",
    "MeanMask",
    "WinnerMap",
    "contrast_masks",
    "partition_masks",
    "distinct_masks",
    "distinct_spectra",
    "layer_masks",
    "add_to_all",
    "layer_accumulator",
    "layer_accumulators",
    "layer_references",
    "references_of",
    "peak_normalised",
    "mean_normalised",
    "part_masks",
    "over_mean",
]

KAPPA = 1.0
DISTINCT_MARGIN = 0.05  # of the feature's peak: a distinct cell's mask exceeds the layer's mean by more than this
PARTITION_TOLERANCE = 1e-5  # relative: a cell within this of the layer's best claim is the feature's


def peak_normalised(G: np.ndarray, zero_peak: float, peak: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``max(G, 0)`` scaled to peak 1 per feature, and which features were loud.

    Parameters
    ----------
    G : np.ndarray, shape (K, F, T)
        Projections on the STFT grid.
    zero_peak : float
        Peaks at or below this are numerically zero: those features' masks are all zero.
    peak : np.ndarray, shape (K,), optional
        Each feature's peak of ``max(G, 0)`` over the whole song, when ``G`` is a part of it (default: ``G``'s own).

    Returns
    -------
    M : np.ndarray, shape (K, F, T), float32
    loud : np.ndarray, shape (K,), bool
    """
    R = np.maximum(np.asarray(G, dtype=np.float32), 0.0)
    if peak is None:
        peak = R.reshape(len(R), -1).max(axis=1) if R.size else np.zeros(len(R))
    peak = np.asarray(peak, dtype=np.float64)
    loud = peak > zero_peak
    scale = np.zeros(len(R), dtype=np.float32)
    scale[loud] = (1.0 / peak[loud]).astype(np.float32)
    return R * scale[:, None, None], loud


class _LayerAccumulator:
    """A layer reference fed batch by batch: each batch's projections are peak-normalised per feature, then brought
    to the accumulator's own normalisation (:meth:`_normalised`), the features taking part are kept, and their
    values are folded into the state (:meth:`_fold`)."""

    def __init__(self, *, zero_peak: float):
        self.zero_peak = float(zero_peak)
        self.state: np.ndarray | None = None
        self.count = 0

    def add(self, G: np.ndarray, activation_max: np.ndarray) -> None:
        """Add a batch of projections ``G`` (k, F, T) on the grid; features with ``activation_max`` <= 0 (never
        active) or a numerically zero projection are left out."""
        self.add_peak_normalised(*peak_normalised(G, self.zero_peak), activation_max)

    def add_peak_normalised(self, M: np.ndarray, loud: np.ndarray, activation_max: np.ndarray) -> None:
        """:meth:`add` of a batch already through :func:`peak_normalised` (with this accumulator's ``zero_peak``):
        ``M`` (k, F, T) and ``loud`` (k,)."""
        values = self._normalised(M, loud)
        use = _taking_part(loud, activation_max)
        self.state = self._fold(self.state, values[use], values.shape[1:])
        self.count += int(use.sum())

    def _filled(self) -> np.ndarray:
        if self.state is None:
            raise BadParameterError("the layer reference has no projections yet")
        return self.state


class MeanMask(_LayerAccumulator):
    """The layer's reference ``Mbar``: the mean of its active features' peak-normalised masks, fed in batches.

    Examples
    --------
    >>> acc = MeanMask(zero_peak=1e-30)
    >>> acc.add(np.stack([np.ones((2, 3)), 2 * np.ones((2, 3)), np.zeros((2, 3))]), np.array([1.0, 1.0, 1.0]))
    >>> acc.count, float(acc.mean()[0, 0])
    (2, 1.0)
    """

    @staticmethod
    def _normalised(M, loud):
        return M

    @staticmethod
    def _fold(state, values, shape):
        part = values.sum(axis=0, dtype=np.float64)
        return part if state is None else state + part

    def mean(self) -> np.ndarray:
        """``Mbar``, shape (F, T), float32; all zero when no feature of the layer is active."""
        return (self._filled() / max(self.count, 1)).astype(np.float32)

    def reference(self) -> np.ndarray:
        """The layer's reference for ``contrast``: :meth:`mean`."""
        return self.mean()


class WinnerMap(_LayerAccumulator):
    """The layer's reference ``W`` for ``partition``: the running maximum of its active features' mean-normalised
    projections ``N_g`` (:func:`mean_normalised`), fed in batches.

    Examples
    --------
    >>> acc = WinnerMap(zero_peak=1e-30)
    >>> acc.add(np.array([[[1.0, 0.0]], [[0.0, 3.0]]]), np.array([1.0, 1.0]))
    >>> acc.count, acc.reference().tolist()
    (2, [[2.0, 2.0]])
    """

    @staticmethod
    def _normalised(M, loud):
        return over_mean(M, loud)  # mean_normalised, from the peak-normalised masks

    @staticmethod
    def _fold(state, values, shape):
        part = values.max(axis=0) if len(values) else np.zeros(shape, dtype=np.float32)
        return part if state is None else np.maximum(state, part)

    def reference(self) -> np.ndarray:
        """``W``, shape (F, T), float32; all zero when no feature of the layer is active."""
        return self._filled().astype(np.float32)


def _taking_part(loud: np.ndarray, activation_max) -> np.ndarray:
    """(k,) bool: the features with a non-silent projection that are active somewhere on the song."""
    return loud & (np.asarray(activation_max, dtype=np.float64).reshape(-1) > 0)


def mean_normalised(G: np.ndarray, zero_peak: float) -> tuple[np.ndarray, np.ndarray]:
    """``N = max(G, 0) / mean(max(G, 0))`` per feature (mean over all F * T cells), and which features were loud.

    Computed as the peak-normalised mask over its mean (at least ``1 / (F * T)``), so nothing overflows float32.

    Parameters
    ----------
    G : np.ndarray, shape (K, F, T)
        Projections on the STFT grid.
    zero_peak : float
        Peaks at or below this are numerically zero: those features' ``N`` are all zero.

    Returns
    -------
    N : np.ndarray, shape (K, F, T), float32
    loud : np.ndarray, shape (K,), bool
    """
    M, loud = peak_normalised(G, zero_peak)
    return over_mean(M, loud), loud


def over_mean(M: np.ndarray, loud: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """Peak-normalised masks M (K, F, T) divided by their means (``means`` (K,) over the whole song when M is a
    part of it; zero for features not ``loud``)."""
    return M * _mean_scales(M, loud, means)[:, None, None]


def _mean_scales(M: np.ndarray, loud: np.ndarray, means: np.ndarray | None = None) -> np.ndarray:
    """(K,) float32: 1 / each loud feature's mean of ``M`` (K, F, T) (or of ``means``), 0 for the others."""
    if means is None:
        means = M.reshape(len(M), -1).mean(axis=1, dtype=np.float64) if M.size else np.zeros(len(M))
    scale = np.zeros(len(M), dtype=np.float32)
    scale[loud] = (1.0 / means[loud]).astype(np.float32)
    return scale


def _checked(reference, G: np.ndarray, mode: str) -> np.ndarray:
    """The layer's reference as float32 (F, T), checked against projections ``G`` (K, F, T)."""
    if reference is None:
        raise BadParameterError(f"the {mode} resynthesis needs the layer's reference (reference=...)")
    reference = np.asarray(reference, dtype=np.float32)
    if reference.shape != np.shape(G)[1:]:
        raise BadParameterError(f"the layer reference must have shape {np.shape(G)[1:]}, got {reference.shape}")
    return reference


def contrast_masks(G: np.ndarray, reference: np.ndarray, zero_peak: float) -> np.ndarray:
    """The contrast masks ``C_f`` (K, F, T) of projections ``G`` (K, F, T) against the layer's ``Mbar`` (F, T)."""
    reference = _checked(reference, G, "contrast")
    M, _ = peak_normalised(G, zero_peak)
    C, _ = peak_normalised(M - np.float32(KAPPA) * reference[None], zero_peak)
    return C


def partition_masks(G: np.ndarray, reference: np.ndarray, zero_peak: float) -> np.ndarray:
    """The 0/1 partition masks ``P_f`` (K, F, T), float32, of projections ``G`` (K, F, T) against the layer's ``W``
    (F, T) (:class:`WinnerMap`): 1 where the feature's ``N_f`` is positive and within :data:`PARTITION_TOLERANCE`
    of the layer's best claim.

    Examples
    --------
    >>> G = np.array([[[4.0, 1.0, 0.0]], [[0.0, 1.0, 4.0]], [[1.0, 1.0, 1.0]]])
    >>> acc = WinnerMap(zero_peak=1e-30)
    >>> acc.add(G, np.ones(3))
    >>> partition_masks(G, acc.reference(), 1e-30)[:, 0].tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    reference = _checked(reference, G, "partition")
    N, _ = mean_normalised(G, zero_peak)
    return _claims(N, reference).astype(np.float32)


def _claims(N: np.ndarray, W: np.ndarray) -> np.ndarray:
    """(K, F, T) bool: where each feature's ``N`` is positive and within the tolerance of the best claim ``W``."""
    return (N > 0) & (N >= W[None] * np.float32(1.0 - PARTITION_TOLERANCE))


def distinct_masks(G: np.ndarray, reference: np.ndarray, zero_peak: float) -> np.ndarray:
    """The 0/1 ``distinct`` masks (K, F, T), float32, of projections ``G`` (K, F, T) against the layer's stacked
    reference (2, F, T) = (``Mbar``, ``W``): the cells the feature wins (:func:`partition_masks`) where its
    peak-normalised mask also exceeds the layer's mean mask by more than :data:`DISTINCT_MARGIN`.

    Examples
    --------
    >>> G = np.array([[[4.0, 1.0, 0.0]], [[0.0, 1.0, 4.0]], [[1.0, 1.0, 1.0]]])
    >>> ref = layer_references(G, np.ones(3), 1e-30)["distinct"]
    >>> distinct_masks(G, ref, 1e-30)[:, 0].tolist()
    [[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]
    """
    reference = np.asarray(reference, dtype=np.float32)
    if reference.shape != (2, *np.shape(G)[1:]):
        raise BadParameterError(f"the distinct reference must have shape (2, {np.shape(G)[1]}, {np.shape(G)[2]})")
    M, loud = peak_normalised(G, zero_peak)  # once, for both conditions
    above = M > reference[0][None] + np.float32(DISTINCT_MARGIN)
    return (_claims(over_mean(M, loud), reference[1]) & above).astype(np.float32)


def distinct_spectra(G: np.ndarray, reference: np.ndarray, zero_peak: float, X: np.ndarray) -> np.ndarray:
    """``distinct_masks(G, reference, zero_peak) * X[None]`` (K, F, T) complex64 for the song's STFT ``X`` (F, T),
    bit for bit (each cell's mask times X as numpy multiplies them), with the masks made and applied in one pass
    after the features' peaks and means: no mask, claim or comparison arrays (8 features of 30 s: 20.8 -> 8.3 ms).
    Other shapes or an ``X`` that is not complex64 take the numpy way (and its errors)."""
    reference = np.asarray(reference, dtype=np.float32)
    X = np.asarray(X)
    if reference.shape != (2, *np.shape(G)[1:]) or X.shape != np.shape(G)[1:] or X.dtype != np.complex64:
        return distinct_masks(G, reference, zero_peak) * X[None]
    M, loud = peak_normalised(G, zero_peak)
    above = reference[0] + np.float32(DISTINCT_MARGIN)  # as distinct_masks
    best = reference[1] * np.float32(1.0 - PARTITION_TOLERANCE)  # as _claims
    Y = np.empty(M.shape, dtype=np.complex64)
    _compiled(_masked_spectra)(M, _mean_scales(M, loud), above, best, np.ascontiguousarray(X), Y)
    return Y


_COMPILED: dict = {}


def _compiled(kernel):
    """``kernel`` compiled by numba on first use (and cached on disk)."""
    if kernel.__name__ not in _COMPILED:
        import numba

        _COMPILED[kernel.__name__] = numba.njit(nogil=True, cache=True)(kernel)
    return _COMPILED[kernel.__name__]


def _masked_spectra(M, scale, above, best, X, Y):  # pragma: no cover - compiled by numba
    """Y[k] = claim * X with claim = N > 0 and N >= best and M > above (N = M[k] * scale[k]), multiplied as numpy
    multiplies a float32 by a complex64: (m * re - 0 * im, m * im + 0 * re)."""
    zero = np.float32(0)
    for k in range(M.shape[0]):
        s = scale[k]
        for f in range(M.shape[1]):
            m_row, y_row, x_row, a_row, b_row = M[k, f], Y[k, f], X[f], above[f], best[f]
            for t in range(M.shape[2]):
                m = m_row[t]
                n = m * s
                claim = np.float32(1) if (n > zero) and (n >= b_row[t]) and (m > a_row[t]) else zero
                re, im = x_row[t].real, x_row[t].imag
                y_row[t] = complex(claim * re - zero * im, claim * im + zero * re)


def part_masks(mode: str, M: np.ndarray, N: np.ndarray, Mbar: np.ndarray, W: np.ndarray) -> np.ndarray:
    """A layer-relative ``mode``'s masks (K, F, t) on a part of a song streamed in parts, from the features'
    peak-normalised ``M`` and mean-normalised ``N`` (each scaled by its whole song's peak and mean) and the layer's
    ``Mbar`` and ``W`` (F, t) on that part: as :func:`layer_masks`, except that ``contrast``'s are not renormalised
    (``max(M - KAPPA * Mbar, 0)``: scale the wave by their peak over the song at the end)."""
    if mode == "contrast":
        return np.maximum(M - np.float32(KAPPA) * Mbar[None], 0.0)
    claims = _claims(N, W)
    if mode == "distinct":
        claims &= M > Mbar[None] + np.float32(DISTINCT_MARGIN)
    return claims.astype(np.float32)


_MASKS = {"contrast": contrast_masks, "partition": partition_masks, "distinct": distinct_masks}
_ACCUMULATORS = {"contrast": MeanMask, "partition": WinnerMap}  # distinct's reference is these two, stacked


def relative_to_layer(mode: str, frontend) -> bool:
    """Whether ``mode`` hears a feature relative to its layer with this front-end: a layer-relative mode on a
    front-end whose projection is a spectrogram. A waveform or framed front-end's projection is audio itself, with
    no mask to compare: every mode writes the projection (:func:`auralise.render.resynth.render_waves`)."""
    from auralise.choices import LAYER_RELATIVE_MODES

    return mode in LAYER_RELATIVE_MODES and not frontend.projection_is_audio


def layer_masks(mode: str, G: np.ndarray, reference: np.ndarray, zero_peak: float) -> np.ndarray:
    """The masks (K, F, T) of a layer-relative ``mode`` (``choices.LAYER_RELATIVE_MODES``) of projections ``G``
    (K, F, T) against the layer's ``reference`` ((F, T), or (2, F, T) for ``distinct``)."""
    return _MASKS[mode](G, reference, zero_peak)


def layer_accumulators(*, zero_peak: float) -> dict[str, MeanMask | WinnerMap]:
    """Empty accumulators of the layer-relative references: ``add(G, activation_max)`` batch by batch, then
    :func:`references_of` them."""
    return {mode: cls(zero_peak=zero_peak) for mode, cls in _ACCUMULATORS.items()}


def add_to_all(accumulators: dict[str, MeanMask | WinnerMap], G: np.ndarray, activation_max) -> None:
    """``add(G, activation_max)`` to each of :func:`layer_accumulators`, peak-normalising ``G`` (k, F, T) once."""
    zero_peaks = {acc.zero_peak for acc in accumulators.values()}
    if len(zero_peaks) != 1:
        raise BadParameterError("the accumulators must share one zero_peak")
    M, loud = peak_normalised(G, zero_peaks.pop())
    kinds = [type(acc) for acc in accumulators.values()]
    if sorted(kinds, key=lambda kind: kind.__name__) == [MeanMask, WinnerMap] and M.ndim == 3 and M.dtype == np.float32:
        _fold_both(accumulators, M, loud, activation_max)
        return
    for acc in accumulators.values():
        acc.add_peak_normalised(M, loud, activation_max)


def _fold_both(accumulators: dict[str, MeanMask | WinnerMap], M: np.ndarray, loud: np.ndarray, activation_max):
    """:meth:`MeanMask.add_peak_normalised` and :meth:`WinnerMap.add_peak_normalised` of one batch's masks ``M``
    (k, F, T), both folded in one pass over the features taking part (no copies of them, no ``N`` array): the same
    sums (float64, from 0, feature by feature) and maxima (numpy's ``maximum``), so the same references."""
    mean = next(acc for acc in accumulators.values() if type(acc) is MeanMask)
    winner = next(acc for acc in accumulators.values() if type(acc) is WinnerMap)
    use = _taking_part(loud, activation_max)
    total = np.zeros(M.shape[1:], dtype=np.float64)
    best = np.zeros(M.shape[1:], dtype=np.float32)
    _compiled(_sum_and_max)(M, np.flatnonzero(use), _mean_scales(M, loud), total, best)
    mean.state = total if mean.state is None else mean.state + total
    winner.state = best if winner.state is None else np.maximum(winner.state, best)
    mean.count += int(use.sum())
    winner.count += int(use.sum())


def _sum_and_max(M, features, scale, total, best):  # pragma: no cover - compiled by numba
    """``total`` += M[k] in float64 and ``best`` = the running maximum of M[k] * scale[k] (numpy's ``maximum``: the
    first kept on ties and NaN), over k in ``features`` in order; ``best`` takes the first feature as it is."""
    for j in range(len(features)):
        k = features[j]
        s = scale[k]
        for f in range(M.shape[1]):
            m_row, t_row, b_row = M[k, f], total[f], best[f]
            for t in range(M.shape[2]):
                v = m_row[t]
                t_row[t] += np.float64(v)
                n = v * s
                if j == 0:
                    b_row[t] = n
                else:
                    b = b_row[t]
                    b_row[t] = b if (b >= n or b != b) else n


def references_of(accumulators: dict[str, MeanMask | WinnerMap]) -> dict[str, np.ndarray]:
    """Every layer-relative mode's reference from :func:`layer_accumulators` fed with the whole layer."""
    refs = {mode: acc.reference() for mode, acc in accumulators.items()}
    refs["distinct"] = np.stack([refs["contrast"], refs["partition"]])
    return refs


def layer_references(G: np.ndarray, activation_max: np.ndarray, zero_peak: float) -> dict[str, np.ndarray]:
    """Every layer-relative mode's reference from one batch holding the whole layer, ``G`` (K, F, T)."""
    accs = layer_accumulators(zero_peak=zero_peak)
    add_to_all(accs, G, activation_max)
    return references_of(accs)


def layer_accumulator(mode: str, *, zero_peak: float) -> MeanMask | WinnerMap:
    """An empty accumulator of ``contrast``'s or ``partition``'s reference: ``add(G, activation_max)`` batch by
    batch, then ``reference()``, (F, T) float32."""
    return _ACCUMULATORS[mode](zero_peak=zero_peak)
