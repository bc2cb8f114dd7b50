"""Project features of a convolution layer back onto the model input (deconvnet, guided backprop, gradient).

Example
-------
>>> import torch, auralise
>>> net = auralise.nets.zoo.build("choi2016")
>>> S = torch.rand(1, 1, 257, 173)
>>> D = auralise.deconvolve(net, S, layer=3, features=[0, 38])
>>> D.shape
torch.Size([2, 1, 257, 173])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from auralise.engine.chunking import BYTES, ChunkedProjector, trace_bytes
from auralise.engine.layers import LAYOUT_AXES, TAPS, Layer, discover, eval_mode, shared_dry_traces, time_geometry
from auralise.engine.rules import RULES
from auralise.engine.selection import check_features, parse_selection
from auralise.engine.trace import Trace, record_forward
from auralise.errors import BadParameterError, check_choice

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes: a chunk's recorded forward pass plus one batch of backward signals


@dataclass(frozen=True)
class Projection:
    """Result of :func:`project_features`.

    ``D`` (K, *S.shape[1:]) is the projection of each feature onto the input; ``activation_max`` and
    ``activation_energy`` (K,) describe the feature's activation at the tap (max value, sum of squares);
    ``silent`` marks features whose selected activation is all zero (their projection is zero).
    """

    D: torch.Tensor
    layer: Layer
    features: tuple[int, ...]
    activation_max: torch.Tensor
    activation_energy: torch.Tensor
    silent: tuple[bool, ...]


def _module_of(model) -> torch.nn.Module:
    module = getattr(model, "module", model)
    if not isinstance(module, torch.nn.Module):
        raise BadParameterError(f"expected a torch.nn.Module or a loaded auralise model, got {type(model).__name__}")
    return module


def project_features(
    model,
    S: torch.Tensor,
    *,
    layer: int | str,
    features: Sequence[int] | int,
    method: str = "deconvnet",
    select: str = "map",
    tap: str = "block",
    example: torch.Tensor | None = None,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    layout: str | None = None,
    chunk_frames: int | None = None,
) -> Projection:
    """Project ``features`` of ``layer`` onto the input ``S`` (batch 1); see :func:`deconvolve`.

    ``example`` is the input the layers are discovered on (default ``S``; a loaded model's patch-length input
    is cheaper). With the input ``layout`` given (``"BCFT"`` …), a long ``S`` is cut into chunks along time so the
    recorded forward pass and one feature's backward signals stay within ``memory_budget`` bytes (or into chunks of
    ``chunk_frames``); the stitched result equals the unchunked one. The backward pass runs in batches of features
    sized to the rest of the budget.
    """
    check_choice(method, RULES, "method")
    check_choice(tap, TAPS, "tap point")
    parse_selection(select)
    if not isinstance(S, torch.Tensor) or S.dim() < 2 or S.shape[0] != 1:
        raise BadParameterError("S must be a model-input tensor with batch size 1, e.g. shape (1, 1, F, T)")
    module = _module_of(model)
    projector = make_projector(
        module,
        S,
        [layer],
        method=method,
        select=select,
        tap=tap,
        example=S if example is None else example,
        memory_budget=memory_budget,
        layout=layout,
        chunk_frames=chunk_frames,
    )
    lay = next(iter(projector.layers.values()))
    feats = check_features(features, lay)
    stats = projector.statistics()[lay.number]
    (_, _, D), *_ = projector.project([(lay.number, feats)])
    index = torch.tensor(feats, device=stats.energy.device)
    return Projection(
        D=D,
        layer=lay,
        features=feats,
        activation_max=stats.maximum[index],
        activation_energy=stats.energy[index],
        silent=tuple(bool(n == 0) for n in stats.nonzero[index]),
    )


def make_projector(
    module: torch.nn.Module,
    S: torch.Tensor,
    layers: Sequence[int | str],
    *,
    method: str,
    select: str,
    tap: str,
    example: torch.Tensor,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    layout: str | None = None,
    chunk_frames: int | None = None,
) -> ChunkedProjector:
    """A :class:`~auralise.engine.chunking.ChunkedProjector` for ``layers`` of ``module`` on the input ``S``."""
    graph = discover(module, example)
    lays = [graph.layer(spec) for spec in layers]
    for lay in lays:
        lay.warn_tap(tap)
    with shared_dry_traces():  # one dry trace per input length serves every layer
        geometry = {
            lay.number: time_geometry(module, example, lay, tap=tap, layout=layout) if layout else None for lay in lays
        }
    time_axis = LAYOUT_AXES[layout][0] if layout else S.dim() - 1
    deepest = max(lay.taps[tap][0] for lay in lays)
    with eval_mode(module):
        dry = record_forward(module, example, stop_after=deepest)
    # per input frame: the recorded forward pass (each storage once: views and aliases cost nothing) plus the
    # backward signals of one feature (the two largest signals alive at once, and its projection)
    outputs = [o for r in dry.records for o in r.outputs]
    kept = trace_bytes(outputs + [r.indices for r in dry.records if r.indices is not None])
    signals = 2 * max((o.numel() for o in outputs), default=0) * BYTES + example.numel() * BYTES
    per_frame = (kept + signals) / example.shape[time_axis]

    def checked(trace: Trace, upto: int) -> None:
        graph.check(trace, upto)

    return ChunkedProjector(
        module,
        S,
        lays,
        geometry=geometry,
        time_axis=time_axis,
        method=method,
        select=select,
        tap=tap,
        memory_budget=memory_budget,
        bytes_per_frame=per_frame,
        chunk_frames=chunk_frames,
        check=checked,
    )


def deconvolve(
    model,
    S: torch.Tensor,
    *,
    layer: int | str,
    features: Sequence[int] | int,
    method: str = "deconvnet",
    select: str = "map",
    tap: str = "block",
) -> torch.Tensor:
    """Project features of one convolution layer back onto the model input.

    Parameters
    ----------
    model : an ``nn.Module`` or a loaded auralise model (``auralise.load_model``).
    S : model input of batch 1, e.g. (1, 1, F, T) for the ``BCFT`` layout.
    layer : 1-based conv-layer number in execution order, or the conv module's path (``"features.6"``).
    features : output channel(s) of that layer, 0-based.
    method : ``"deconvnet"`` (Zeiler & Fergus), ``"guided"`` (guided backprop) or ``"gradient"``.
    select : ``"map"`` (the whole feature map), ``"max"`` (the strongest activation) or ``"topk:K"``.
    tap : ``"block"`` (after the block's pooling), ``"activation"`` (after the nonlinearity) or ``"conv"``.

    Returns
    -------
    torch.Tensor, shape (len(features), *S.shape[1:])
        The deconvolved inputs, one per feature, in the order given.
    """
    patch = getattr(model, "example_input", None)
    example = patch().to(S.device) if callable(patch) else None
    return project_features(
        model, S, layer=layer, features=features, method=method, select=select, tap=tap, example=example
    ).D
