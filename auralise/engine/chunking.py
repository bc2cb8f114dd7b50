"""Project features of inputs of any length in bounded memory: chunks along time, stitched exactly.

A unit of a tap map sees ``frames`` input frames (its receptive field); its activation, and every switch and
rectification on its way back down, depend on nothing else. So the projection at input frame ``q`` depends only on
the input within one receptive field either side of ``q``. A chunk therefore *owns* a core of frames and is run on
the core plus a margin of at least the receptive field (and the tap's offset) on each side; its projection is kept
on the core only. Chunks start on multiples of the tap's total stride, so every pooling window falls where it falls
in the unchunked pass. The stitched result equals the unchunked computation up to float rounding.

Per-feature statistics (activation max, energy) and ``max``/``topk`` selections are global: they count each tap
unit once, in the chunk whose core holds it. Tied activations go to the earliest unit in time, then the lowest
position on the other axes (frequency), so the units chosen do not depend on the chunk plan. With ``map``
selection a chunk seeds all of its own units (those in its margins reach only the margins' projections, which are
discarded).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from auralise.engine.layers import Layer, TimeGeometry, eval_mode
from auralise.engine.rules import project
from auralise.engine.trace import Trace, record_forward

BYTES = 4  # float32


def trace_bytes(tensors: Sequence[torch.Tensor]) -> int:
    """Bytes held by ``tensors``, each storage counted once (views and aliases of a recorded tensor cost nothing)."""
    seen: dict[int, int] = {}
    for t in tensors:
        storage = t.untyped_storage()
        seen[storage.data_ptr()] = max(seen.get(storage.data_ptr(), 0), storage.nbytes())
    return sum(seen.values())


@dataclass(frozen=True)
class Chunk:
    """Input frames ``[start, stop)`` are run; the projection is kept on ``[core_start, core_stop)``."""

    start: int
    stop: int
    core_start: int
    core_stop: int


def plan_chunks(n_frames: int, stride: int, margin: int, max_frames: int | None) -> list[Chunk]:
    """Cut ``n_frames`` into chunks of at most ``max_frames`` whose starts are multiples of ``stride``.

    ``margin`` (a multiple of ``stride``) is added on each side of every core. One chunk when everything fits.
    """
    if max_frames is None or n_frames <= max_frames:
        return [Chunk(0, n_frames, 0, n_frames)]
    core = max(stride, (max_frames - 2 * margin) // stride * stride)
    chunks = []
    for core_start in range(0, n_frames, core):
        core_stop = min(n_frames, core_start + core)
        chunks.append(Chunk(max(0, core_start - margin), min(n_frames, core_stop + margin), core_start, core_stop))
    return chunks


@dataclass
class FeatureStats:
    """Global statistics of every channel of one tap map: (C,) each; ``top`` holds ``topk`` candidates."""

    maximum: torch.Tensor
    energy: torch.Tensor
    nonzero: torch.Tensor
    top_values: torch.Tensor | None = None  # (C, n)
    top_positions: torch.Tensor | None = None  # (C, n, ndim) with the time coordinate global
    total: torch.Tensor | None = None  # (C,) sum of the activation over all units (float64)
    units: int = 0  # units of one channel's map
    profile: torch.Tensor | None = None  # (C, T') with ``profiles``: the maximum over the other axes at each time
    profile_index: torch.Tensor | None = None  # (C, T') where that maximum is: flat index over the other axes
    profile_shape: tuple[int, ...] = ()  # the shape of the other (non-time) axes of the tap map

    def to(self, device) -> FeatureStats:
        """These statistics on ``device`` (e.g. once on the host, rather than a value at a time from a GPU)."""
        moved = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, torch.Tensor)}
        return dataclasses.replace(self, **moved)

    def ranks(self) -> list[int]:
        """1-based rank of each channel by activation energy (1 = most energetic)."""
        order = torch.argsort(self.energy, descending=True, stable=True)
        ranks = torch.empty_like(order)
        ranks[order] = torch.arange(1, len(order) + 1, device=order.device)
        return [int(r) for r in ranks]


class ChunkedProjector:
    """Project features of several layers of one model input ``S`` (batch 1), chunk by chunk.

    ``geometry`` gives each layer's :class:`TimeGeometry` (None for a layer that cannot be chunked: then the whole
    input is one chunk); ``time_axis`` is the input's time axis. ``memory_budget`` bounds the bytes of a chunk's
    recorded forward pass plus the backward signals of one batch of features.
    """

    def __init__(
        self,
        module: torch.nn.Module,
        S: torch.Tensor,
        layers: Sequence[Layer],
        *,
        geometry: dict[int, TimeGeometry | None],
        time_axis: int,
        method: str,
        select: str,
        tap: str,
        memory_budget: int,
        bytes_per_frame: float,
        chunk_frames: int | None = None,
        check: Callable[[Trace, int], None] | None = None,
        profiles: bool = False,
    ):
        from auralise.engine.selection import parse_selection

        self.module, self.S, self.layers = module, S, {lay.number: lay for lay in layers}
        self.geometry, self.time_axis = geometry, time_axis
        self.method, self.tap, self.memory_budget = method, tap, memory_budget
        self.select, self.selection = select, parse_selection(select)
        self.n_frames = S.shape[time_axis]
        self.bytes_per_frame, self.check, self.profiles = bytes_per_frame, check, profiles
        self._stats: dict[int, FeatureStats] | None = None
        self._whole_trace: Trace | None = None
        if chunk_frames is None:
            chunk_frames = max(1, int(memory_budget / max(bytes_per_frame, 1.0)))
        self.chunks = self._plan(chunk_frames)

    @property
    def one_chunk_bytes(self) -> int:
        """The budget under which the whole input is one chunk (one forward pass for every group)."""
        return int(math.ceil(self.bytes_per_frame * self.n_frames))

    def with_budget(self, memory_budget: int) -> ChunkedProjector:
        """The same projector under another ``memory_budget`` (chunks planned again; no forward pass made yet)."""
        projector = self.with_input(self.S)
        projector.memory_budget = memory_budget
        projector.chunks = projector._plan(max(1, int(memory_budget / max(self.bytes_per_frame, 1.0))))
        return projector

    def with_input(self, S: torch.Tensor, layers: Sequence[int] | None = None) -> ChunkedProjector:
        """The same projector (layers' geometry, rule, selection, budget) on another input ``S`` of this layout.

        Cheaper than :func:`~auralise.engine.deconv.make_projector`, which measures each layer's geometry with dry
        passes.
        """
        numbers = list(self.layers) if layers is None else list(layers)
        return ChunkedProjector(
            self.module,
            S,
            [self.layers[n] for n in numbers],
            geometry={n: self.geometry[n] for n in numbers},
            time_axis=self.time_axis,
            method=self.method,
            select=self.select,
            tap=self.tap,
            memory_budget=self.memory_budget,
            bytes_per_frame=self.bytes_per_frame,
            check=self.check,
            profiles=self.profiles,
        )

    def _plan(self, chunk_frames: int) -> list[Chunk]:
        geos = [self.geometry[n] for n in self.layers]
        if any(g is None for g in geos):
            return plan_chunks(self.n_frames, 1, 0, None)
        stride = math.lcm(*(g.stride for g in geos))
        margin = max(math.ceil((g.frames + abs(g.offset)) / stride) * stride for g in geos)
        if chunk_frames < 3 * margin:  # cores would be thinner than their margins: not worth chunking
            chunk_frames = 3 * margin
        if self.n_frames <= chunk_frames or margin * 3 >= self.n_frames:
            return plan_chunks(self.n_frames, stride, margin, None)
        return plan_chunks(self.n_frames, stride, margin, chunk_frames)

    # -- forward passes ------------------------------------------------------------------------------------------

    def _deepest(self, numbers: Sequence[int]) -> int:
        return max(self.layers[n].taps[self.tap][0] for n in numbers)

    def _trace(self, chunk: Chunk, upto: int) -> Trace:
        if len(self.chunks) == 1:  # one chunk: one forward pass serves every layer and every feature group
            if self._whole_trace is None:
                whole = self.S if isinstance(self.S, torch.Tensor) else self.S.narrow(self.time_axis, 0, self.n_frames)
                self._whole_trace = self._record(whole, self._deepest(list(self.layers)))
            return self._whole_trace
        return self._record(self.S.narrow(self.time_axis, chunk.start, chunk.stop - chunk.start), upto)

    def _record(self, x: torch.Tensor, upto: int) -> Trace:
        with eval_mode(self.module):
            trace = record_forward(self.module, x, stop_after=upto)
        if self.check is not None:
            self.check(trace, upto)
        return trace

    def _tap(self, trace: Trace, number: int) -> torch.Tensor:
        rec, slot = self.layers[number].taps[self.tap]
        return trace.records[rec].outputs[slot]

    def _core_units(self, number: int, chunk: Chunk, tap: torch.Tensor) -> tuple[int, int]:
        """Local range along the tap's time axis of the units this chunk owns, and the chunk's global unit offset."""
        geo = self.geometry[number]
        if geo is None or len(self.chunks) == 1:
            return 0, tap.shape[geo.tap_axis] if geo else 0
        first = chunk.start // geo.stride
        lo = chunk.core_start // geo.stride - first
        hi = tap.shape[geo.tap_axis] if chunk.core_stop == self.n_frames else -(-chunk.core_stop // geo.stride) - first
        return lo, hi

    # -- statistics ----------------------------------------------------------------------------------------------

    def statistics(self) -> dict[int, FeatureStats]:
        """Per layer, global per-channel activation statistics (and ``topk`` candidates when selecting them)."""
        if self._stats is None:
            numbers = list(self.layers)
            parts: dict[int, list[FeatureStats]] = {n: [] for n in numbers}
            time_axes: dict[int, int | None] = {}
            for chunk in self.chunks:
                trace = self._trace(chunk, self._deepest(numbers))
                for n in numbers:
                    parts[n].append(self._chunk_stats(n, chunk, self._tap(trace, n)))
                    time_axes[n] = self._time_axis_of(n, self._tap(trace, n))
            self._stats = {n: _merge(parts[n], self.selection, time_axes[n]) for n in numbers}
        return self._stats

    def _chunk_stats(self, number: int, chunk: Chunk, tap: torch.Tensor) -> FeatureStats:
        geo = self.geometry[number]
        core = tap
        if geo is not None and len(self.chunks) > 1:
            lo, hi = self._core_units(number, chunk, tap)
            core = tap.narrow(geo.tap_axis, lo, hi - lo)
        per_channel = core.movedim(1, 0).reshape(core.shape[1], -1)
        stats = FeatureStats(per_channel.amax(dim=1), (per_channel**2).sum(dim=1), (per_channel != 0).sum(dim=1))
        stats.total, stats.units = per_channel.sum(dim=1, dtype=torch.float64), per_channel.shape[1]
        if self.profiles:
            stats.profile, stats.profile_index, stats.profile_shape = _time_profile(
                core, geo.tap_axis if geo is not None else None
            )
        kind, count = self.selection
        if kind == "topk":
            stats.top_values, positions = _top_units(core, count, self._time_axis_of(number, tap))
            if geo is not None and len(self.chunks) > 1:  # local core coordinate -> global unit index
                positions[..., geo.tap_axis - 1] += chunk.start // geo.stride + self._core_units(number, chunk, tap)[0]
            stats.top_positions = positions
        return stats

    def _time_axis_of(self, number: int, tap: torch.Tensor) -> int | None:
        """The tap map's time axis (None when it has none): the geometry's, else the input's where it is spatial."""
        geo = self.geometry[number]
        if geo is not None:
            return geo.tap_axis
        return self.time_axis if 2 <= self.time_axis < tap.dim() else None

    # -- projection ----------------------------------------------------------------------------------------------

    def project(self, groups: Sequence[tuple[int, Sequence[int]]]) -> Iterator[tuple[int, list[int], torch.Tensor]]:
        """For each (layer, features) group, yield (layer, features, D) with D (K, *S.shape[1:]).

        All groups share one forward pass per chunk; hold only as many groups as memory allows at once.
        """
        if len(self.chunks) == 1:  # one chunk, its core the whole input: the projections as they come
            [(_, cores)] = self.project_cores(groups)
            for number, feats, D in cores:
                yield number, list(feats), D
            return
        results = [
            torch.zeros((len(f), *self.S.shape[1:]), dtype=self.S.dtype, device=self.S.device) for _, f in groups
        ]
        for chunk, cores in self.project_cores(groups):
            for out, (_, _, D) in zip(results, cores):
                out.narrow(self.time_axis, chunk.core_start, chunk.core_stop - chunk.core_start).copy_(D)
        for (number, feats), out in zip(groups, results):
            yield number, list(feats), out

    def project_cores(
        self, groups: Sequence[tuple[int, Sequence[int]]], *, lazy: bool = False
    ) -> Iterator[tuple[Chunk, list[tuple[int, list[int], torch.Tensor]]]]:
        """Chunk by chunk, in time order: (chunk, [(layer, features, D_core) per group]), D_core the projection on
        the chunk's core frames only, (K, *S.shape[1:]) with ``core_stop - core_start`` frames.

        The whole-input projection is these cores laid side by side; nothing song-long is held (for
        :class:`~auralise.render.streaming.SegmentedInput` inputs). ``lazy``: each chunk's groups come as an
        iterator that projects a group when it is reached (one group's projections in memory at a time; consume it
        before the next chunk).
        """
        stats = self.statistics() if self.selection[0] == "topk" else None
        numbers = [n for n, _ in groups]
        for chunk in self.chunks:
            trace = self._trace(chunk, self._deepest(numbers))
            cores = (self._core(trace, chunk, number, list(feats), stats) for number, feats in groups)
            yield chunk, (cores if lazy else list(cores))

    def _core(self, trace: Trace, chunk: Chunk, number: int, feats: list[int], stats) -> tuple:
        """(layer, features, D_core) of one group on one chunk (:meth:`project_cores`)."""
        keep = chunk.core_stop - chunk.core_start
        parts = [
            D.narrow(self.time_axis, chunk.core_start - chunk.start, keep)
            for _, D in self._project_chunk(trace, number, feats, chunk, stats)
        ]
        return number, feats, parts[0] if len(parts) == 1 else torch.cat(parts)

    def _project_chunk(
        self, trace: Trace, number: int, feats: list[int], chunk: Chunk, stats: dict[int, FeatureStats] | None
    ) -> Iterator[tuple[int, torch.Tensor]]:
        tap_ref = self.layers[number].taps[self.tap]
        tap = self._tap(trace, number)
        recorded = trace.records[: tap_ref[0] + 1]
        kept = trace_bytes(
            [o for r in recorded for o in r.outputs] + [r.indices for r in recorded if r.indices is not None]
        )
        largest = max(o.numel() for r in recorded for o in r.outputs) * BYTES
        batch = max(1, int((self.memory_budget - kept) // (2 * largest + trace.source.numel() * BYTES)))
        for i in range(0, len(feats), batch):
            part = feats[i : i + batch]
            values, channels = self._seeds(tap, number, part, chunk, stats)
            D = project(trace, tap_ref, values, channels, rule=self.method)
            yield i, D.reshape(len(part), *trace.source.shape[1:])

    def _seeds(
        self, tap: torch.Tensor, number: int, feats: list[int], chunk: Chunk, stats: dict[int, FeatureStats] | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Seed slices (K, B, 1, *spatial) and channels (K,) for one chunk."""
        channels = torch.tensor(feats, dtype=torch.long, device=tap.device)
        values = tap[:, channels].movedim(1, 0).unsqueeze(2)
        if stats is None:
            return values.clone(), channels
        seeds = torch.zeros_like(values)
        geo = self.geometry[number]
        shift = chunk.start // geo.stride if geo is not None and len(self.chunks) > 1 else 0
        for k, f in enumerate(feats):
            pos = stats[number].top_positions[f].clone()
            if geo is not None:
                pos[:, geo.tap_axis - 1] -= shift
                inside = (pos[:, geo.tap_axis - 1] >= 0) & (pos[:, geo.tap_axis - 1] < tap.shape[geo.tap_axis])
                pos = pos[inside]
            index = (pos[:, 0], *(pos[:, d] for d in range(1, pos.shape[1])))
            seeds[k, :, 0][index] = values[k, :, 0][index]
        return seeds, channels


def _top_units(core: torch.Tensor, count: int, time_axis: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``count`` strongest units of each channel of ``core`` (B, C, *spatial): values (C, n) and positions
    (C, n, ndim) in (B, *spatial) coordinates, strongest first; ties go to the earliest unit along ``time_axis``
    (an axis of ``core``), then the lowest position on the other axes in order."""
    per_unit = core.movedim(1, 0)  # (C, B, *spatial): axis a >= 2 of core is still axis a
    order = list(range(1, core.dim()))
    if time_axis is not None:
        order.remove(time_axis)
        order.insert(0, time_axis)
    per_unit = per_unit.permute(0, *order)  # time-major flat order: earliest time, then lowest position
    flat = per_unit.reshape(per_unit.shape[0], -1)
    flat = torch.where(flat.isnan(), torch.full_like(flat, -torch.inf), flat)
    k = min(count, flat.shape[1])
    threshold = torch.topk(flat, k, dim=1).values[:, -1:]
    above, tied = flat > threshold, flat == threshold
    need = k - above.sum(dim=1, keepdim=True)
    chosen = above | tied
    excess = (chosen.sum(dim=1) > k).nonzero().flatten()  # channels with more tied units than places left
    if len(excess):  # keep the first of the tied ones: exactly k per channel
        ties = tied[excess]
        chosen[excess] = above[excess] | (ties & (ties.cumsum(dim=1) <= need[excess]))
    index = chosen.nonzero()[:, 1].view(flat.shape[0], k)
    values = flat.gather(1, index)
    rank = torch.argsort(values, dim=1, descending=True, stable=True)
    values, index = values.gather(1, rank), index.gather(1, rank)
    permuted = torch.stack(torch.unravel_index(index, per_unit.shape[1:]), dim=-1)
    positions = torch.empty_like(permuted)
    positions[..., [a - 1 for a in order]] = permuted
    return values, positions


def _time_profile(core: torch.Tensor, time_axis: int | None) -> tuple[torch.Tensor, torch.Tensor, tuple[int, ...]]:
    """Per channel and time unit of ``core`` (1, C, *spatial), the maximum over the other axes and its flat index
    there (the first maximum: the lowest position), (C, T') each, and the shape of those other axes; one unit in
    time when there is no time axis."""
    per = core[0]  # (C, *spatial)
    if time_axis is None:
        other, flat = tuple(per.shape[1:]), per.reshape(per.shape[0], -1, 1)
    else:
        moved = per.movedim(time_axis - 1, -1)  # (C, *other, T')
        other, flat = tuple(moved.shape[1:-1]), moved.reshape(per.shape[0], -1, moved.shape[-1])
    values, index = flat.max(dim=1)
    return values, index, other


def _merge(parts: list[FeatureStats], selection: tuple[str, int], time_axis: int | None = None) -> FeatureStats:
    """Combine per-chunk statistics into global ones (and the global ``topk`` candidates, ties broken as in
    :func:`_top_units`)."""
    merged = FeatureStats(
        torch.stack([p.maximum for p in parts]).amax(dim=0),
        torch.stack([p.energy for p in parts]).sum(dim=0),
        torch.stack([p.nonzero for p in parts]).sum(dim=0),
        total=torch.stack([p.total for p in parts]).sum(dim=0),
        units=sum(p.units for p in parts),
    )
    if parts[0].profile is not None:  # chunks own consecutive units: their profiles follow each other in time
        merged.profile = torch.cat([p.profile for p in parts], dim=1)
        merged.profile_index = torch.cat([p.profile_index for p in parts], dim=1)
        merged.profile_shape = parts[0].profile_shape
    if selection[0] == "topk":
        values = torch.cat([p.top_values for p in parts], dim=1)
        positions = torch.cat([p.top_positions for p in parts], dim=1)
        coords = list(range(positions.shape[-1]))
        if time_axis is not None:
            coords.remove(time_axis - 1)
            coords.insert(0, time_axis - 1)
        # stable sorts from the least significant key up: the other coordinates (last first), time, then value
        index = torch.arange(values.shape[1], device=values.device).expand(values.shape[0], -1)
        for key in [positions[..., c] for c in reversed(coords)] + [values]:
            rank = torch.argsort(key.gather(1, index), dim=1, descending=key is values, stable=True)
            index = index.gather(1, rank)
        index = index[:, : min(selection[1], values.shape[1])]
        merged.top_values = values.gather(1, index)
        merged.top_positions = positions.gather(1, index.unsqueeze(-1).expand(-1, -1, positions.shape[-1]))
    return merged
