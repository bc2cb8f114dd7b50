"""How robust are a model's features to key, chord and instrument? (Choi, Fazekas & Sandler 2016, Sec. 4.2, Fig. 10)

Choi et al. feed *model signals* -- one harmonic instrument playing one chord type in one key -- to the CNN,
deconvolve every feature of every convolution layer, and correlate the deconvolved spectrograms of every pair of
signals that differ in exactly one attribute (only the key, only the chord type or only the instrument). A high
average correlation in a layer means that layer's features do not care about that attribute.

- :mod:`auralise.studies.attribute_signals` holds the design: :func:`model_signals` synthesises it
  (``auralise.demo.synth.tone``: instruments x chord types x keys, each chord in six positions, Fig. 9), and
  :func:`attribute_pairs` lists the pairs that differ in one attribute. Its names are re-exported here.
- :func:`attribute_study` deconvolves all features of all layers for every signal and returns an
  :class:`AttributeTable`: per layer and attribute, the mean and standard deviation of the Pearson correlations
  over all (pair, feature) values, with counts.
- :func:`auralise.figures.attributes.attributes_figure` draws Fig. 10 from the table: average correlation against
  layer, one line per attribute, with standard deviations as error bars.

Example
-------
>>> import auralise
>>> from auralise.studies.attributes import attribute_study
>>> from auralise.figures.attributes import attributes_figure
>>> model = auralise.load_model("models/choi2016-synth.pt")                 # doctest: +SKIP
>>> table = attribute_study(model)                                         # doctest: +SKIP
>>> table.to_csv("attributes.csv")                                         # doctest: +SKIP
>>> auralise.figures.display.save_figure(attributes_figure(table), "fig10.png")    # doctest: +SKIP
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.engine.memory import reuse_freed_memory
from auralise.errors import BadParameterError, check_choice
from auralise.studies.attribute_signals import (
    ATTRIBUTES,
    DEFAULT_CHORDS,
    DEFAULT_INSTRUMENTS,
    DEFAULT_KEYS,
    POSITIONS,
    Signal,
    _design,
    attribute_pairs,
    chord_positions,
    model_signals,
    note_to_midi,
)
from auralise.text import printable

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from auralise.engine.chunking import ChunkedProjector
    from auralise.frontends import Frontend
    from auralise.io.modelfile import LoadedModel

__all__ = [
    "ATTRIBUTES",
    "DEFAULT_CHORDS",
    "DEFAULT_INSTRUMENTS",
    "DEFAULT_KEYS",
    "AttributeRow",
    "AttributeTable",
    "StudyEstimate",
    "Signal",
    "attribute_pairs",
    "attribute_study",
    "chord_positions",
    "model_signals",
    "note_to_midi",
]

_CSV_FIELDS = ("layer", "attribute", "mean", "std", "n_pairs", "n_skipped")
N_SKIPPED_HELP = (
    "n_skipped: (signal pair, feature) values left out because the feature is silent on one signal of the pair "
    "(never active there: its deconvolution is all zero, and a correlation with a constant is undefined); "
    "n_pairs + n_skipped = pairs x features"
)
_CONSTANT = 1e-6  # a D whose centred norm is below this fraction of its norm is constant: correlation undefined


# ------------------------------------------------------------------------------------------------- table


@dataclass(frozen=True)
class AttributeRow:
    """Correlation statistics of one (layer, attribute): over all (signal pair, feature) values.

    ``mean`` and ``std`` (population, ``ddof=0``) of the Pearson correlations; ``n_pairs`` how many values they
    summarise; ``n_skipped`` how many (pair, feature) values were left out (:data:`N_SKIPPED_HELP`): the feature's
    deconvolved spectrogram is constant on one signal of the pair -- all zero, because the feature is never active
    on that signal -- and a correlation with a constant is undefined. ``n_pairs + n_skipped`` is the number of
    pairs times the layer's features. NaN when ``n_pairs`` is 0.
    """

    layer: int
    attribute: str
    mean: float
    std: float
    n_pairs: int
    n_skipped: int


@dataclass
class AttributeTable:
    """Result of :func:`attribute_study`: one :class:`AttributeRow` per (layer, attribute).

    Attributes
    ----------
    rows : list of AttributeRow
        Ordered by layer, then attribute in :data:`ATTRIBUTES` order.
    correlations : dict of (int, str) to numpy.ndarray
        For each (layer, attribute), shape ``(P, K)`` float32: the correlation of every signal pair of
        ``pairs[attribute]`` for each of the layer's ``K`` features; NaN where skipped. Empty after :meth:`from_csv`.
    pairs : dict of str to numpy.ndarray
        Signal index pairs per attribute, shape ``(P, 2)`` (:func:`attribute_pairs`).
    meta : dict
        Design and run facts: instruments, chords, keys, seconds, method, tap, model, elapsed seconds...
    """

    rows: list[AttributeRow]
    correlations: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False)
    pairs: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    meta: dict = field(default_factory=dict)

    @property
    def layers(self) -> list[int]:
        """The layers with rows, ascending."""
        return sorted({r.layer for r in self.rows})

    @property
    def attributes(self) -> list[str]:
        """The attributes with rows, in :data:`ATTRIBUTES` order (others after, as they come)."""
        seen = list(dict.fromkeys(r.attribute for r in self.rows))
        return [a for a in ATTRIBUTES if a in seen] + [a for a in seen if a not in ATTRIBUTES]

    def row(self, layer: int, attribute: str) -> AttributeRow:
        """The row of ``(layer, attribute)``; KeyError if there is none."""
        for r in self.rows:
            if r.layer == layer and r.attribute == attribute:
                return r
        raise KeyError((layer, attribute))

    def as_rows(self) -> list[dict[str, Any]]:
        """The rows as dicts with keys ``layer, attribute, mean, std, n_pairs, n_skipped``."""
        return [{k: getattr(r, k) for k in _CSV_FIELDS} for r in self.rows]

    def to_csv(self, path_or_buffer: str | os.PathLike | io.TextIOBase) -> None:
        """Write the rows as CSV (header ``layer,attribute,mean,std,n_pairs,n_skipped``; floats exact).

        Parameters
        ----------
        path_or_buffer : str, PathLike or text file object
            A path is written atomically.
        """
        if isinstance(path_or_buffer, str | os.PathLike):
            from auralise.io.files import atomic_path

            with atomic_path(Path(path_or_buffer)) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
                self._write(fh)
        else:
            self._write(path_or_buffer)

    def _write(self, fh) -> None:
        writer = csv.DictWriter(fh, fieldnames=_CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.as_rows():
            writer.writerow({k: repr(float(v)) if k in ("mean", "std") else v for k, v in row.items()})

    @classmethod
    def from_csv(cls, path_or_buffer: str | os.PathLike | io.TextIOBase) -> AttributeTable:
        """Read a table written by :meth:`to_csv` (rows only: no correlations, pairs or meta)."""
        if isinstance(path_or_buffer, str | os.PathLike):
            with open(path_or_buffer, newline="", encoding="utf-8") as fh:
                return cls._read(fh)
        return cls._read(path_or_buffer)

    @classmethod
    def _read(cls, fh) -> AttributeTable:
        try:
            reader = csv.DictReader(fh)
            if reader.fieldnames is None or tuple(reader.fieldnames) != _CSV_FIELDS:
                raise BadParameterError(f"not an attribute table: expected the CSV header {','.join(_CSV_FIELDS)}")
            return cls([_row_from_strings(d) for d in reader])
        except (UnicodeDecodeError, csv.Error) as exc:
            raise BadParameterError(
                f"not an attribute table ({printable(exc)}); pass a CSV written by to_csv"
            ) from None

    def __str__(self) -> str:
        lines = [f"{'layer':>5}  {'attribute':<10} {'mean':>7} {'std':>7} {'n_pairs':>8} {'n_skipped':>9}"]
        for r in self.rows:
            lines.append(
                f"{r.layer:>5}  {r.attribute:<10} {r.mean:>7.3f} {r.std:>7.3f} {r.n_pairs:>8d} {r.n_skipped:>9d}"
            )
        return "\n".join(lines)


def _row_from_strings(d: dict[str, str]) -> AttributeRow:
    try:
        row = AttributeRow(
            layer=int(d["layer"]),
            attribute=d["attribute"],
            mean=float(d["mean"]),
            std=float(d["std"]),
            n_pairs=int(d["n_pairs"]),
            n_skipped=int(d["n_skipped"]),
        )
    except (TypeError, ValueError) as exc:
        raise BadParameterError(f"malformed attribute table row {d!r}: {exc}") from exc
    if row.layer < 1 or row.n_pairs < 0 or row.n_skipped < 0:
        raise BadParameterError(f"malformed attribute table row {d!r}: a layer below 1 or a negative count")
    return row


# ------------------------------------------------------------------------------------------------- study


@dataclass(frozen=True)
class StudyEstimate:
    """How long :func:`attribute_study` will take, measured on its first signal before the rest of the work.

    The first signal is deconvolved first, every feature of every layer, one layer at a time and timed (that work
    is kept, not repeated). A *unit* of the rest is one signal of one pass over the signals: its forward pass and
    the deconvolution of the pass's features; its time is estimated as the measured forward pass plus the measured
    time per feature of each of its features' layers. ``seconds`` is the estimated time of the whole study from its
    start, ``left`` of what remains after the first signal, ``first_s`` what the first signal took; ``units`` the
    estimated seconds of every unit, pass by pass and signal by signal (the order of the ``progress`` calls;
    ``units[p * signals]`` is already done); ``signals``, ``features`` (all layers) and ``passes`` the study's size.
    """

    seconds: float
    left: float
    first_s: float
    units: tuple[float, ...]
    signals: int
    features: int
    passes: int


def _normalise(D: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows of ``D`` (K, N) centred and scaled to unit norm (float32), and which rows are not constant (K,)."""
    import torch

    D = D.reshape(D.shape[0], -1).to(torch.float64)
    centred = D - D.mean(dim=1, keepdim=True)
    norm = torch.linalg.vector_norm(centred, dim=1)
    valid = norm > _CONSTANT * torch.linalg.vector_norm(D, dim=1)
    z = centred / torch.where(valid, norm, torch.ones_like(norm)).unsqueeze(1)
    z[~valid] = 0.0
    return z.to(torch.float32), valid


def _pair_correlations(z: torch.Tensor, valid: torch.Tensor, axis: int) -> torch.Tensor:
    """Correlations of the pairs along ``axis`` of one feature's normalised D's.

    ``z`` (n_i, n_c, n_k, N) unit rows, ``valid`` (n_i, n_c, n_k); returns (P,) in :func:`attribute_pairs` order,
    NaN where one of the pair is constant.
    """
    import torch

    n = z.shape[axis]
    u, v = torch.triu_indices(n, n, 1)
    moved = z.movedim(axis, -2)
    # float64 products: a float32 matmul sums its N terms one after another (errors of 1e-5 at N = 44 461)
    rows = torch.empty(moved.shape, dtype=torch.float64).copy_(moved).reshape(-1, n, z.shape[-1])
    gram = torch.bmm(rows, rows.transpose(1, 2))
    ok = valid.movedim(axis, -1).reshape(-1, n)
    r = gram[:, u, v].clamp(-1.0, 1.0)
    return torch.where(ok[:, u] & ok[:, v], r, torch.full_like(r, float("nan"))).reshape(-1)


def attribute_study(
    model: LoadedModel,
    *,
    instruments: Sequence[str] = DEFAULT_INSTRUMENTS,
    chords: Sequence[str] = DEFAULT_CHORDS,
    keys: Sequence[str | int] = DEFAULT_KEYS,
    seconds: float | None = None,
    positions: int = POSITIONS,
    layers: Sequence[int | str] | None = None,
    method: str = "deconvnet",
    tap: str = "block",
    memory_budget: int = 2 << 30,
    progress: Callable[[int, int], None] | None = None,
    estimate: Callable[[StudyEstimate], None] | None = None,
) -> AttributeTable:
    """Correlate deconvolved spectrograms of model signals that differ in only key, only chord or only instrument.

    For every signal of :func:`model_signals`: STFT, model input ``S`` (1, *S_shape), one forward pass, and the
    deconvolution (whole-map selection) of every feature of every conv layer, ``D`` of shape (K, *S_shape). Then,
    per layer, feature and attribute, the Pearson correlation of the flattened ``D``'s of every pair of signals
    differing in exactly that attribute (:func:`attribute_pairs`). A pair where one ``D`` is constant (all zero: the
    feature is silent on that signal) has no correlation; it is skipped and counted. The correlations are exact:
    each ``D`` is centred and scaled to unit norm (in float64, kept in float32) and kept until the last signal of
    its pass is deconvolved, then the pairs are float64 dot products. When all the ``D``'s do not fit
    ``memory_budget``, the features are split into passes over the signals (a forward pass costs little next to
    the deconvolutions).

    Parameters
    ----------
    model : LoadedModel
        From :func:`auralise.load_model`: the module and its front-end.
    instruments, chords, keys : sequences
        The design (see :func:`model_signals`); defaults: 6 instruments x 8 chord types x 4 keys = 192 signals.
    seconds : float, optional
        Signal duration; default the model's patch length (``frontend.patch_seconds``, else 4 s). It may not be
        shorter than the patch, nor than the deepest studied layer's receptive field.
    positions : int
        Chord positions per signal (6, Fig. 9).
    layers : sequence of int or str, optional
        Conv layers to study (numbers or module paths); default all of them.
    method : {"deconvnet", "guided", "gradient"}
        Backward rule (the paper's is the deconvnet).
    tap : {"block", "activation", "conv"}
        Tap point of each layer.
    memory_budget : int
        Bytes for the normalised ``D``'s kept between signals (4 bytes x frames x bins per signal and feature:
        2.2 GB for 192 signals x 64 features of 257 x 173). The projector has its own 1 GiB budget.
    progress : callable, optional
        Called as ``progress(done, total)`` after each signal of each pass (the first signal of each pass was
        deconvolved and timed before the first pass: see :class:`StudyEstimate`).
    estimate : callable, optional
        Called once as ``estimate(StudyEstimate)`` when the first signal is done, before the other signals: how
        long the study will take.

    Returns
    -------
    AttributeTable
        Rows per (layer, attribute); ``correlations`` (P, K) per (layer, attribute), ``pairs``, and ``meta``
        (design, method, tap, seconds, ``elapsed_s``...).

    Raises
    ------
    BadParameterError
        Unknown instrument, chord, key, layer, method or tap; signals shorter than the patch or a receptive field;
        a budget too small for one feature.

    Notes
    -----
    Cost: one deconvolution of every feature per signal, in batches, dominated by the transposed convolutions of
    the lower layers. The shipped ``choi2016-synth`` (5 x 64 features, 4-s signals of 257 x 173) with the default
    192 signals took 415-431 s on an idle 2-core x86-64 CPU (torch 2.13) and 17 min on the same cores shared with
    other work, about 2.2 GB for the kept ``D``'s (6 passes at the default budget); the 8 signals of
    :data:`auralise.choices.QUICK_ATTRIBUTES` take about a minute. The first signal is deconvolved before the
    passes, layer by layer and timed (its normalised ``D``'s of every feature are kept for the passes: 1/192 of the
    others), which gives :class:`StudyEstimate`. The layers' time geometry is measured once (``make_projector`` on
    the first signal) and reused for every signal, which all have the same shape. On Linux/glibc the study keeps
    freed memory for reuse while it runs (see :func:`auralise.engine.memory.reuse_freed_memory`); without that it
    is about twice slower.
    """
    import torch

    from auralise.engine.layers import TAPS
    from auralise.engine.rules import RULES

    check_choice(method, RULES, "method")
    check_choice(tap, TAPS, "tap point")
    design = _design(instruments, chords, keys)[:3]
    seconds = _study_seconds(model.frontend, seconds)
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget <= 0:
        raise BadParameterError(f"memory_budget must be a positive number of bytes, got {memory_budget!r}")
    start = time.perf_counter()
    plan = _plan(model, design, seconds, positions, layers, method=method, tap=tap, memory_budget=memory_budget)
    pairs = attribute_pairs(plan.shape)
    with reuse_freed_memory(), torch.no_grad():
        first = _first_signal(plan)
        if estimate is not None:
            estimate(_estimate(plan, first, time.perf_counter() - start))
        corr = _correlate(plan, pairs, progress, first)
    instruments, chords, keys = design
    meta = {
        "instruments": list(instruments),
        "chords": list(chords),
        "keys": list(keys),
        "n_signals": len(plan.inputs),
        "seconds": float(seconds),
        "positions": int(positions),
        "sr": model.frontend.sr,
        "frames": int(plan.n_frames),
        "method": method,
        "tap": tap,
        "layers": plan.numbers,
        "features": plan.channels,
        "passes": len(plan.passes),
        "elapsed_s": round(time.perf_counter() - start, 3),
    }
    return AttributeTable(_summary_rows(corr, plan.numbers), corr, pairs, meta)


def _study_seconds(fe: Frontend, seconds: float | None) -> float | int | np.number:
    """The signal duration: ``seconds``, or the model's patch length (else 4 s); checked against the patch."""
    patch = fe.patch_seconds
    if seconds is None:
        seconds = patch or 4.0
    if not isinstance(seconds, int | float | np.number) or not math.isfinite(seconds) or seconds <= 0:
        raise BadParameterError(f"seconds must be a positive number, got {seconds!r}")
    if patch and seconds < patch:
        raise BadParameterError(
            f"signals of {seconds} s are shorter than the model's {patch} s patch; use seconds >= {patch}"
        )
    return seconds


@dataclass
class _Plan:
    """What one study runs: layers and their widths, the signals' model inputs, the projector, the passes."""

    numbers: list[int]  # conv layers studied, ascending
    channels: dict[int, int]  # features per layer
    inputs: list[torch.Tensor]  # model input of each signal, (1, *S_shape), in model_signals order
    shape: tuple[int, int, int]  # (instruments, chords, keys)
    n_frames: int  # frames of each input
    proto: ChunkedProjector  # measured on the first signal; with_input() serves the others
    passes: list[list[tuple[int, int]]]  # (layer, feature) items per pass over the signals
    cap: int  # most items in one pass


def _plan(
    model: LoadedModel,
    design: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]],
    seconds: float,
    positions: int,
    layers: Sequence[int | str] | None,
    *,
    method: str,
    tap: str,
    memory_budget: int,
) -> _Plan:
    """Discover the layers, synthesise the signals, measure the projector and split the features into passes."""
    from auralise.engine.deconv import make_projector
    from auralise.engine.layers import LAYOUT_AXES, discover

    module, fe = model.module, model.frontend
    instruments, chords, keys = design
    example = model.example_input()
    graph = discover(module, example)
    numbers = [graph.layer(spec).number for spec in (layers if layers is not None else range(1, len(graph.layers) + 1))]
    numbers = sorted(set(numbers))
    if not numbers:
        raise BadParameterError("layers is empty; give at least one conv layer (or None for all)")

    signals = model_signals(
        instruments=instruments, chords=chords, keys=keys, sr=fe.sr, seconds=float(seconds), positions=positions
    )
    inputs = [fe.analyse(s.y)[1].to(example.device) for s in signals]
    n_signals, n_values = len(signals), inputs[0][0].numel()
    n_frames = inputs[0].shape[LAYOUT_AXES[fe.layout][0]]
    proto = make_projector(
        module, inputs[0], numbers, method=method, select="map", tap=tap, example=example, layout=fe.layout
    )
    for n in numbers:
        geo = proto.geometry[n]
        if geo is not None and geo.frames > n_frames:
            raise BadParameterError(
                f"signals of {seconds} s ({n_frames} frames) are shorter than layer {n}'s receptive field "
                f"({geo.frames} frames); use longer signals"
            )
    channels = {n: proto.layers[n].channels for n in numbers}
    items = [(n, f) for n in numbers for f in range(channels[n])]
    per_feature = n_signals * n_values * 4
    cap = min(len(items), memory_budget // per_feature)
    if cap < 1:
        raise BadParameterError(
            f"memory_budget of {memory_budget} bytes cannot hold one feature's {n_signals} spectrograms "
            f"({per_feature} bytes); raise it"
        )
    passes = [items[i : i + cap] for i in range(0, len(items), cap)]
    shape = (len(instruments), len(chords), len(keys))
    return _Plan(numbers, channels, inputs, shape, int(n_frames), proto, passes, cap)


@dataclass
class _FirstSignal:
    """The first signal's normalised deconvolutions of every feature (``z`` (K, N) and ``valid`` (K,) per layer), and
    what it took: the forward pass of each pass, and per layer the time per feature; kept so that the passes need
    not redo it."""

    z: dict[int, torch.Tensor]
    valid: dict[int, torch.Tensor]
    forward_s: list[float]  # per pass
    per_feature_s: dict[int, float]
    seconds: float


def _first_signal(plan: _Plan) -> _FirstSignal:
    """Deconvolve every feature of the first signal, layer by layer (deepest first: it goes through the others and
    pays the one-off costs), timing each pass's forward pass and each layer."""
    t0 = time.perf_counter()
    projector = plan.proto.with_input(plan.inputs[0], plan.numbers)
    projector.statistics()  # the forward pass (kept for the projections when the signal is one chunk)
    forward = []  # each pass's own forward pass, which stops at its deepest layer (timed after the first one)
    for chunk in plan.passes:
        t = time.perf_counter()
        plan.proto.with_input(plan.inputs[0], sorted({n for n, _ in chunk})).statistics()
        forward.append(time.perf_counter() - t)
    z, valid, per_feature = {}, {}, {}
    for n in reversed(plan.numbers):
        t = time.perf_counter()
        ((_, _, D),) = projector.project([(n, list(range(plan.channels[n])))])
        zn, ok = _normalise(D)
        z[n], valid[n] = zn.cpu(), ok.cpu()
        per_feature[n] = (time.perf_counter() - t) / plan.channels[n]
        del D, zn
    return _FirstSignal(z, valid, forward, per_feature, time.perf_counter() - t0)


def _estimate(plan: _Plan, first: _FirstSignal, elapsed: float) -> StudyEstimate:
    """The study's time from the first signal's: per unit (signal of a pass) a forward pass and its features."""
    per_signal = [
        fwd + sum(first.per_feature_s[n] for n, _ in chunk) for fwd, chunk in zip(first.forward_s, plan.passes)
    ]
    units = tuple(t for t in per_signal for _ in plan.inputs)
    left = sum(units) - sum(per_signal)  # each pass's first signal is done
    features = sum(len(chunk) for chunk in plan.passes)
    return StudyEstimate(elapsed + left, left, first.seconds, units, len(plan.inputs), features, len(plan.passes))


def _correlate(
    plan: _Plan,
    pairs: dict[str, np.ndarray],
    progress: Callable[[int, int], None] | None,
    first: _FirstSignal,
) -> dict[tuple[int, str], np.ndarray]:
    """Per (layer, attribute), the correlations (P, K) of every pair for every feature: one pass over the signals
    per group of features, keeping each signal's normalised D's until the pass's correlations are taken (the first
    signal's come from ``first``)."""
    import torch

    shape, inputs, cap = plan.shape, plan.inputs, plan.cap
    corr = {
        (n, a): np.full((len(pairs[a]), plan.channels[n]), np.nan, np.float32) for n in plan.numbers for a in ATTRIBUTES
    }
    total, done = len(plan.passes) * len(inputs), 0
    Z = torch.empty((cap, *shape, inputs[0][0].numel()), dtype=torch.float32)
    valid = torch.zeros((cap, *shape), dtype=torch.bool)
    for chunk in plan.passes:
        groups: dict[int, list[int]] = {}
        for n, f in chunk:
            groups.setdefault(n, []).append(f)
        offsets = dict(zip(groups, itertools.accumulate([0, *(len(f) for f in groups.values())])))
        for s, S in enumerate(inputs):
            i, c, k = np.unravel_index(s, shape)
            if s == 0:
                projected = ((n, feats, first.z[n][feats], first.valid[n][feats]) for n, feats in groups.items())
            else:
                projected = _projected(plan.proto.with_input(S, list(groups)), groups)
            for n, feats, z, ok in projected:
                Z[offsets[n] : offsets[n] + len(feats), i, c, k] = z
                valid[offsets[n] : offsets[n] + len(feats), i, c, k] = ok
                del z
            done += 1
            if progress is not None:
                progress(done, total)
        for j, (n, f) in enumerate(chunk):
            for axis, attr in enumerate(ATTRIBUTES):
                corr[n, attr][:, f] = _pair_correlations(Z[j], valid[j], axis).numpy()
    del Z, valid
    return corr


def _projected(projector: ChunkedProjector, groups: dict[int, list[int]]):
    """(layer, features, z, valid) of each group: the normalised deconvolutions of one signal, on the CPU."""
    for n, feats, D in projector.project(list(groups.items())):
        z, ok = _normalise(D)
        del D
        yield n, feats, z.cpu(), ok.cpu()


def _summary_rows(corr: dict[tuple[int, str], np.ndarray], numbers: list[int]) -> list[AttributeRow]:
    """One :class:`AttributeRow` per (layer, attribute): mean, std and count of the defined correlations."""
    rows = []
    for n in numbers:
        for attr in ATTRIBUTES:
            values = corr[n, attr]
            defined = values[~np.isnan(values)].astype(np.float64)
            mean = float(defined.mean()) if defined.size else math.nan
            std = float(defined.std()) if defined.size else math.nan
            rows.append(AttributeRow(n, attr, mean, std, int(defined.size), int(values.size - defined.size)))
    return rows
