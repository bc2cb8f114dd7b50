"""Convolution layers in execution order, their tap points and receptive fields.

A *layer* is the L-th ``Conv1d``/``Conv2d`` module the forward pass calls (1-based); it can also be named by its
module path. Its *tap points* are the tensors that "layer L, feature F" means:

- ``conv``: the convolution's raw output;
- ``activation``: after the nonlinearity and any batch norm / dropout that follow it, before pooling;
- ``block`` (default): after the pooling that follows as well — the tensor the next layer sees.

Taps are found on a recorded dry forward pass: starting from the conv output, the chain advances while the
current tensor has exactly one consumer and that consumer is a channel-preserving unary op (activation, norm,
dropout; for ``block`` also pooling). A branch (two consumers), a concatenation, an addition, a reshape or the next
convolution ends the chain, so branching models get the last tensor that is still this layer's own.

Discovery also records the L2 norm of every feature's kernel as the forward pass ran it (:attr:`Layer.kernel_norms`),
from which :func:`near_dead_kernels` finds the kernels that respond to nothing.
"""

from __future__ import annotations

import threading
import warnings
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from auralise.choices import LAYOUT_AXES
from auralise.choices import TAPS as TAPS  # re-exported: auralise.engine.deconv and studies import it from here
from auralise.engine.ops import COPIES, DROPOUTS, NORMS, POOLS, RELU_FAMILY, SATURATING
from auralise.engine.rules import project
from auralise.engine.trace import Trace, record_forward
from auralise.errors import AuraliseError, AuraliseWarning, BadParameterError

_ACTIVATION_CHAIN = RELU_FAMILY | SATURATING | NORMS | DROPOUTS | COPIES
_BLOCK_CHAIN = _ACTIVATION_CHAIN | POOLS

TapRef = tuple[int, int]  # (record index, output slot)

NEAR_DEAD_RATIO = 1e-3  # a kernel this far (60 dB) below the layer's strongest responds to nothing


def near_dead_kernels(norms, ratio: float = NEAR_DEAD_RATIO) -> list[int]:
    """The features whose kernel's L2 norm is at most ``ratio`` times the largest kernel norm of their layer.

    By Cauchy-Schwarz a feature's response to any input patch is at most ``|w_f| |x|``: a kernel 60 dB (1e-3) below
    the layer's strongest gives at most a thousandth of what that one can give to the same input -- it draws blank
    in ``figure filters`` and whatever its map holds comes from its bias, not from the song. Relative to the layer's
    largest norm, not to an absolute value (a layer's weights scale with its input's units) nor to the median (in
    layers where most kernels are exactly zero -- 107 of 204 in MTT_musicnn's layer 2 -- the median is 0). A layer
    whose kernels are all zero is all near-dead.

    Parameters
    ----------
    norms : sequence of float
        One L2 norm per output feature (:attr:`Layer.kernel_norms`).
    ratio : float
        The threshold relative to the largest norm.

    Returns
    -------
    list of int
        Feature numbers, ascending.

    Examples
    --------
    >>> near_dead_kernels([2.0, 1e-4, 0.0, 0.5])
    [1, 2]
    """
    largest = max(norms, default=0.0)
    return [f for f, n in enumerate(norms) if n <= ratio * largest]


@dataclass(frozen=True)
class Layer:
    """One convolution layer, its geometry, and where its tap tensors are in the recorded forward pass."""

    number: int
    path: str  # module path of the conv weight's owner, e.g. "features.4"
    kind: str  # "conv1d" | "conv2d"
    in_channels: int
    channels: int
    kernel: tuple[int, ...]
    stride: tuple[int, ...]
    taps: dict[str, TapRef]
    shapes: dict[str, tuple[int, ...]]
    short_block: bool = False  # the pooling after the activation failed on the dry input: block is activation
    kernel_norms: tuple[float, ...] = ()  # L2 norm of each feature's kernel (all its input channels), as run

    def describe(self) -> str:
        return f"layer {self.number} ({self.path})"

    def near_dead(self) -> list[int]:
        """Features whose kernel is near-dead (:func:`near_dead_kernels`), in feature order."""
        return near_dead_kernels(self.kernel_norms)

    def warn_tap(self, tap: str) -> None:
        """Warn (one line) when ``tap`` is ``block`` but the block tap fell back to the activation."""
        if tap == "block" and self.short_block:
            warnings.warn(
                f"layer {self.number}'s block tap falls back to the activation because the input is shorter than "
                "the pooling window; use longer audio",
                AuraliseWarning,
                stacklevel=3,
            )


@dataclass(frozen=True)
class LayerGraph:
    """All convolution layers of a model, found on a dry forward pass of ``input_shape``."""

    layers: tuple[Layer, ...]
    signature: tuple[str, ...]  # op names of the dry pass, to check that a later pass follows the same path
    input_shape: tuple[int, ...]
    error: str | None = None  # why the dry pass stopped early, if it did (e.g. a classifier head)

    def layer(self, spec: int | str) -> Layer:
        """Layer by 1-based number or module path; BadParameterError with the valid range otherwise."""
        if not self.layers:
            raise BadParameterError("the model has no Conv1d/Conv2d layers; there is nothing to auralise")
        if isinstance(spec, str) and spec.strip().lstrip("-").isdigit():
            spec = int(spec)
        if isinstance(spec, int):
            if 1 <= spec <= len(self.layers):
                return self.layers[spec - 1]
            raise BadParameterError(
                f"layer {spec} is out of range: this model has layers 1-{len(self.layers)} "
                "(run `auralise inspect MODEL` to list them)"
            )
        for lay in self.layers:
            if lay.path == spec:
                return lay
        paths = ", ".join(lay.path for lay in self.layers)
        raise BadParameterError(
            f"no convolution layer named {spec!r}; choose a number 1-{len(self.layers)} or one of: {paths}"
        )

    def check(self, trace: Trace, upto: int) -> None:
        """Raise when ``trace`` did not follow the dry pass's ops up to record ``upto``."""
        names = tuple(r.name for r in trace.records[: upto + 1])
        if len(names) <= upto or names != self.signature[: upto + 1]:
            raise AuraliseError(
                "the model's forward pass takes a different path on this input than on the dry run "
                "(data-dependent control flow); auralise cannot locate the layer reliably"
            )


_CACHE: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def discover(module: torch.nn.Module, example: torch.Tensor) -> LayerGraph:
    """Find the conv layers and their taps with a dry forward pass on ``example`` (cached per shape).

    The dry pass tolerates a failure after the convolutions (a dense head that wants another input length):
    what ran before the failure is what counts.
    """
    key = (tuple(example.shape), example.dtype, str(example.device))
    cached = _CACHE.setdefault(module, {})
    if key in cached:
        return cached[key]
    with eval_mode(module):
        trace = record_forward(module, example, tolerate_errors=True)
    uses = trace.consumers()
    owners = {id(p): name.rpartition(".")[0] for name, p in module.named_parameters()}
    layers, seen = [], set()
    for rec in trace.records:
        if rec.name not in ("conv1d", "conv2d"):
            continue
        args = dict(zip(("input", "weight", "bias", "stride"), rec.args)) | rec.kwargs
        weight = args["weight"]
        if id(weight) in seen:  # a conv module called twice is one layer: its first call
            continue
        seen.add(id(weight))
        conv_tap = (rec.index, 0)
        activation = _advance(trace, uses, conv_tap, _ACTIVATION_CHAIN)
        block = _advance(trace, uses, activation, _BLOCK_CHAIN)
        short = block == activation and _pool_failed_on(trace, uses, activation)
        taps = {"conv": conv_tap, "activation": activation, "block": block}
        shapes = {name: tuple(trace.records[r].outputs[s].shape) for name, (r, s) in taps.items()}
        dims = weight.dim() - 2
        stride = args.get("stride", 1)
        groups = (rec.args[6] if len(rec.args) > 6 else rec.kwargs.get("groups", 1)) or 1
        layers.append(
            Layer(
                number=len(layers) + 1,
                path=owners.get(id(weight), f"{rec.name}#{rec.index}"),
                kind=rec.name,
                in_channels=weight.shape[1] * groups,
                channels=weight.shape[0],
                kernel=tuple(weight.shape[2:]),
                stride=tuple(stride) if isinstance(stride, (list, tuple)) else (stride,) * dims,
                taps=taps,
                shapes=shapes,
                short_block=short,
                kernel_norms=tuple(weight.detach().flatten(1).double().norm(dim=1).cpu().tolist()),
            )
        )
    if not layers and trace.error:
        raise AuraliseError(
            f"the model's forward pass failed on an input of shape {tuple(example.shape)}: {trace.error}"
        )
    graph = LayerGraph(tuple(layers), tuple(r.name for r in trace.records), tuple(example.shape), trace.error)
    cached[key] = graph
    return graph


def _advance(trace: Trace, uses: dict[int, list[int]], start: TapRef, allowed: set[str]) -> TapRef:
    current = start
    while True:
        out = trace.records[current[0]].outputs[current[1]]
        users = uses.get(id(out), [])
        if len(users) != 1:
            return current
        nxt = trace.records[users[0]]
        if nxt.name not in allowed or len(nxt.tracked) != 1:
            return current
        current = (nxt.index, 0)


def _pool_failed_on(trace: Trace, uses: dict[int, list[int]], ref: TapRef) -> bool:
    """Whether the dry pass stopped at a pooling op whose only input is the tensor at ``ref`` (used by nothing
    else): an input too short for the pooling window that would have followed."""
    out = trace.records[ref[0]].outputs[ref[1]]
    if trace.error is None or trace.failed is None or uses.get(id(out)):
        return False
    name, inputs = trace.failed
    return name.rstrip("_") in POOLS and inputs == (id(out),)


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[None]:
    """Eval mode for the duration of a ``with`` block (dropout off, batch norm on running statistics)."""
    flags = [(m, m.training) for m in module.modules()]
    for m, _ in flags:  # what .eval() does, also for exported programs, whose .eval() refuses to run
        m.training = False
    try:
        yield
    finally:
        for m, flag in flags:
            m.training = flag


def receptive_field(
    module: torch.nn.Module, example: torch.Tensor, layer: Layer, *, tap: str = "block", layout: str = "BCFT"
) -> tuple[int, int]:
    """Receptive field of one unit at ``tap`` of ``layer``, as (frames, bins) of the model input.

    Computed exactly from the layers' geometry: a unit-impulse seed at the centre of the tap map is carried down
    with the ``support`` rule (all weights and pooling windows count, nonlinearities pass everything). Where an
    adaptive pool comes before the tap its windows differ from unit to unit, so every unit along each axis of the
    tap map is measured and the widest field is reported. The time axis of the dry input is doubled until the
    field is not clipped by its ends; a tap whose size does not grow with the input (an adaptive pool over time:
    its units see a share of the whole input) reports its field on ``example`` itself. An axis that is the input's
    channel axis (e.g. frequency for ``BFT``) is covered whole by construction. A frequency field wider than the
    input is reported as the input's height.
    """
    time_axis, freq_axis = LAYOUT_AXES[layout]
    shape = list(example.shape)
    first = None
    while True:
        frames, bins, tap_shape = _field(module, example, shape, layer, tap, (time_axis, freq_axis))
        if first is None:
            first = (frames, bins, tap_shape)
        elif tap_shape == first[2]:  # the tap does not grow with the input: the field is a share of all of it
            return first[0], first[1]
        if time_axis == 1 or frames < shape[time_axis] or shape[time_axis] >= 1 << 16:
            return frames, bins
        shape[time_axis] *= 2  # the field may be clipped by the input's ends: look again on a longer input


def _field(
    module: torch.nn.Module, example: torch.Tensor, shape: list[int], layer: Layer, tap: str, axes: tuple[int, int]
) -> tuple[int, int, tuple[int, ...]]:
    """Widest extent along each input axis of ``axes`` of a unit of channel 0 at ``tap`` on an input of ``shape``,
    and the tap's shape."""
    rec_index, slot = layer.taps[tap]
    trace = _dry_trace(module, example, shape, rec_index)
    out = trace.records[rec_index].outputs[slot]
    if out.dim() <= 2:  # no spatial axis: the unit sees everything
        return shape[axes[0]], shape[axes[1]], tuple(out.shape)
    centre = [0, 0, *(n // 2 for n in out.shape[2:])]
    units = [centre]
    if any(r.name.startswith("adaptive_") for r in trace.records[: rec_index + 1]):
        units += [
            [*centre[:axis], i, *centre[axis + 1 :]] for axis in range(2, out.dim()) for i in range(out.shape[axis])
        ]
    largest = max(o.numel() for r in trace.records[: rec_index + 1] for o in r.outputs)
    batch = max(1, (1 << 24) // max(largest, 1))  # about 64 MiB of float32 signal per batch of units
    widest = [0, 0]
    for i in range(0, len(units), batch):
        part = units[i : i + batch]
        seeds = torch.zeros((len(part), *out.shape), dtype=out.dtype, device=out.device)
        for k, unit in enumerate(part):
            seeds[(k, *unit)] = 1.0
        support = project(trace, (rec_index, slot), seeds, rule="support") != 0
        for k in range(len(part)):
            for a, axis in enumerate(axes):
                widest[a] = max(widest[a], _extent(support[k], axis))
    return widest[0], widest[1], tuple(out.shape)


@dataclass(frozen=True)
class TimeGeometry:
    """How the units of a tap map tile the input's time axis.

    Along the tap map's axis ``tap_axis``, unit ``j`` sees input frames ``[offset + j * stride, ... + frames)``
    (``offset`` is negative where the convolutions pad).
    """

    tap_axis: int
    stride: int
    offset: int
    frames: int


def time_geometry(
    module: torch.nn.Module, example: torch.Tensor, layer: Layer, *, tap: str = "block", layout: str = "BCFT"
) -> TimeGeometry | None:
    """The tap's tiling of the input time axis (support rule on unit-impulse seeds), or None when it has none.

    None means the time axis is not a spatial axis of the tap (e.g. it is the input's channel axis) or a unit sees
    the whole input (a global op before the tap): such models cannot be cut into chunks. The geometry depends on the
    module's structure only, so it is measured once per module, layer, tap, layout and example shape and kept.
    """
    key = (layer.number, layer.path, tap, layout, tuple(example.shape), example.dtype, str(example.device))
    known = _GEOMETRIES.setdefault(module, {})
    if key not in known:
        known[key] = _measure_time_geometry(module, example, layer, tap=tap, layout=layout)
    return known[key]


_GEOMETRIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # module -> {key: TimeGeometry | None}


def _measure_time_geometry(module, example, layer: Layer, *, tap: str, layout: str) -> TimeGeometry | None:
    """:func:`time_geometry`, measured."""
    time_axis = LAYOUT_AXES[layout][0]
    if time_axis == 1:
        return None
    rec_index, slot = layer.taps[tap]
    shape = list(example.shape)
    _, out = _tap_trace(module, example, shape, rec_index, slot)
    while shape[time_axis] < 1 << 16:
        longer = [*shape[:time_axis], 2 * shape[time_axis], *shape[time_axis + 1 :]]
        trace, longer_out = _tap_trace(module, example, longer, rec_index, slot)
        changed = [a for a in range(1, out.dim()) if out.shape[a] != longer_out.shape[a]]
        if len(changed) != 1:
            return None
        axis, mid = changed[0], longer_out.shape[changed[0]] // 2
        first, last = _span(_unit_support(trace, (rec_index, slot), axis, mid), time_axis)
        if first > 0 and last < longer[time_axis] - 1:
            stride = _span(_unit_support(trace, (rec_index, slot), axis, mid + 1), time_axis)[0] - first
            return TimeGeometry(axis, stride, first - mid * stride, last - first + 1) if stride > 0 else None
        shape, out = longer, longer_out
    return None


def _tap_trace(module, example: torch.Tensor, shape: list[int], rec_index: int, slot: int):
    trace = _dry_trace(module, example, shape, rec_index)
    return trace, trace.records[rec_index].outputs[slot]


_SHARED = threading.local()  # .traces: {(module id, shape, dtype, device): Trace} inside shared_dry_traces()


@contextmanager
def shared_dry_traces() -> Iterator[None]:
    """Within this block, one dry trace per input shape serves every layer's time geometry and receptive field
    (:func:`_dry_trace`); they are dropped at its end."""
    outer = getattr(_SHARED, "traces", None)
    _SHARED.traces = {} if outer is None else outer
    try:
        yield
    finally:
        _SHARED.traces = outer


def _dry_trace(module, example: torch.Tensor, shape: list[int], rec_index: int) -> Trace:
    """A forward trace of a random input of ``shape`` that reaches record ``rec_index``.

    Inside :func:`shared_dry_traces` it is recorded through the whole model (tolerating a head that wants another
    length) and serves every layer on that shape: the ``support`` rule reads the ops, not the values (the Choi demo
    model's set-up recorded 17 dry passes, 0.45 s, before); the last three shapes are kept."""
    shared = getattr(_SHARED, "traces", None)
    key = (id(module), tuple(shape), example.dtype, str(example.device))
    trace = None if shared is None else shared.get(key)
    if trace is not None and len(trace.records) > rec_index:
        return trace
    dry = torch.rand(shape, dtype=example.dtype, device=example.device)
    with eval_mode(module):
        trace = record_forward(module, dry, tolerate_errors=True) if shared is not None else None
        if trace is None or len(trace.records) <= rec_index:  # alone, or failed before the tap
            trace = record_forward(module, dry, stop_after=rec_index)
    if shared is not None:
        shared.pop(key, None)
        shared[key] = trace
        while len(shared) > 3:
            shared.pop(next(iter(shared)))
    return trace


def _unit_support(trace: Trace, tap: TapRef, axis: int, index: int) -> torch.Tensor:
    """Boolean mask over the traced input of what reaches one unit of channel 0 (centred on every axis but
    ``axis``, where it sits at ``index``)."""
    out = trace.records[tap[0]].outputs[tap[1]]
    position = [0, 0, *(n // 2 for n in out.shape[2:])]
    position[axis] = index
    seed = torch.zeros((1, *out.shape), dtype=out.dtype, device=out.device)
    seed[(0, *position)] = 1.0
    return project(trace, tap, seed, rule="support")[0] != 0


def _span(support: torch.Tensor, axis: int) -> tuple[int, int]:
    """First and last index along ``axis`` where ``support`` is set ((0, -1) when nowhere)."""
    other = tuple(d for d in range(support.dim()) if d != axis)
    nz = torch.nonzero(support.to(torch.uint8).amax(dim=other)).flatten()
    return (int(nz[0]), int(nz[-1])) if len(nz) else (0, -1)


def _extent(support: torch.Tensor, axis: int) -> int:
    first, last = _span(support, axis)
    return last - first + 1


def layer_table(
    module: torch.nn.Module, example: torch.Tensor, frontend, *, tap: str = "block", field_example=None
) -> list[dict]:
    """One row per conv layer: geometry, tap shape for ``example`` and receptive field (the paper's Table 1).

    ``field_example`` (default ``example``) is the input the receptive fields are measured on: any length the
    model takes gives the same fields (:func:`receptive_field` lengthens it while a field is clipped), and a short
    one is quicker (a framed model's 4-second example is 401 frames of 1024 samples).

    The receptive field of a unit at ``tap`` spans ``rf_frames`` STFT frames and ``rf_bins`` bins; in time that is
    ``((rf_frames - 1) * hop + win) / sr`` seconds of audio (the windows of its first and last frame; for a framed
    input, whose bins are a frame's samples, ``((rf_frames - 1) * hop + rf_bins) / sr``), in frequency
    ``rf_bins * sr / n_fft`` Hz for an STFT input (None for mel and CQT inputs, whose bins have no single width).
    ``rf_semitones`` is its span in pitch where input bins are equally wide in semitones (the harmonic CQT), else None.
    ``near_dead`` lists the features whose kernel is near-dead (:func:`near_dead_kernels`).
    """
    graph = discover(module, example)
    with shared_dry_traces():  # one dry trace per input length serves every layer
        return [_table_row(module, example if field_example is None else field_example, lay, frontend, tap)
                for lay in graph.layers]  # fmt: skip


def _table_row(module: torch.nn.Module, field: torch.Tensor, lay: Layer, frontend, tap: str) -> dict:
    """:func:`layer_table`'s row of ``lay``, its receptive field measured on ``field``."""
    lay.warn_tap(tap)
    frames, bins = receptive_field(module, field, lay, tap=tap, layout=frontend.layout)
    hz = frontend.field_hz(bins)  # None where input bins have no single width
    return {
        "layer": lay.number,
        "path": lay.path,
        "type": lay.kind,
        "kernel": list(lay.kernel),
        "stride": list(lay.stride),
        "in_channels": lay.in_channels,
        "out_channels": lay.channels,
        "tap": tap,
        "output_shape": list(lay.shapes[tap]),
        "rf_frames": frames,
        "rf_bins": bins,
        "rf_ms": round(1000.0 * frontend.field_seconds(frames, bins), 1),
        "rf_hz": None if hz is None else round(hz, 1),
        "rf_semitones": frontend.field_semitones(bins),
        "near_dead": lay.near_dead(),
    }
