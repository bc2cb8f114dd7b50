"""Project features of a convolution layer back onto the model input (deconvnet, guided backprop, gradient).

Example
-------
>>> import torch, auralise
>>> net = auralise.zoo.build("choi2016")
>>> S = torch.rand(1, 1, 257, 173)
>>> D = auralise.deconvolve(net, S, layer=3, features=[0, 38])
>>> D.shape
torch.Size([2, 1, 257, 173])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .errors import BadParameterError, check_choice
from .layers import TAPS, Layer, discover, eval_mode
from .rules import RULES, project
from .trace import record_forward

DEFAULT_MEMORY_BUDGET = 1 << 30  # bytes of backward signals held at once


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


def parse_selection(select: str) -> tuple[str, int]:
    """``"map"`` → ("map", 0); ``"max"`` → ("topk", 1); ``"topk:K"`` → ("topk", K)."""
    if select == "map":
        return "map", 0
    if select == "max":
        return "topk", 1
    head, _, count = select.partition(":")
    if head == "topk" and count.isdigit() and int(count) > 0:
        return "topk", int(count)
    raise BadParameterError(f"unknown selection {select!r}; use 'map', 'max' or 'topk:K' with K a positive integer")


def _module_of(model) -> torch.nn.Module:
    module = getattr(model, "module", model)
    if not isinstance(module, torch.nn.Module):
        raise BadParameterError(f"expected a torch.nn.Module or a loaded auralise model, got {type(model).__name__}")
    return module


def _seeds(tap: torch.Tensor, features: Sequence[int], select: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Seed slices (K, B, 1, *spatial) and their channels (K,): the selected activations of each feature."""
    kind, count = parse_selection(select)
    channels = torch.tensor(list(features), dtype=torch.long, device=tap.device)
    values = tap[:, channels].movedim(1, 0).unsqueeze(2).clone()
    if kind == "topk":
        flat = values.reshape(len(features), -1)
        top = torch.topk(flat, min(count, flat.shape[1]), dim=1).indices
        kept = torch.zeros_like(flat).scatter_(1, top, flat.gather(1, top))
        values = kept.view_as(values)
    return values, channels


def check_features(features: Sequence[int] | int, layer: Layer) -> tuple[int, ...]:
    """Features as a tuple, each checked against the layer's channel count (BadParameterError otherwise)."""
    feats = (features,) if isinstance(features, int) else tuple(features)
    if not feats:
        raise BadParameterError("no features given; pass at least one feature number")
    for f in feats:
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < layer.channels:
            raise BadParameterError(
                f"feature {f} is out of range for {layer.describe()}: it has features 0-{layer.channels - 1}"
            )
    return feats


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
) -> Projection:
    """Project ``features`` of ``layer`` onto the input ``S`` (batch 1); see :func:`deconvolve`.

    ``example`` is the input the layers are discovered on (default ``S``; a loaded model's patch-length input
    is cheaper). One forward pass, stopped at the tap; the backward pass runs in batches of features sized so the
    signals held at once stay within ``memory_budget`` bytes.
    """
    check_choice(method, RULES, "method")
    check_choice(tap, TAPS, "tap point")
    parse_selection(select)
    if not isinstance(S, torch.Tensor) or S.dim() < 2 or S.shape[0] != 1:
        raise BadParameterError("S must be a model-input tensor with batch size 1, e.g. shape (1, 1, F, T)")
    module = _module_of(model)
    graph = discover(module, S if example is None else example)
    lay = graph.layer(layer)
    feats = check_features(features, lay)
    rec_index, slot = lay.taps[tap]
    with eval_mode(module):
        trace = record_forward(module, S, stop_after=rec_index)
    graph.check(trace, rec_index)
    tap_tensor = trace.records[rec_index].outputs[slot]
    per_feature = 4 * max(o.numel() for r in trace.records[: rec_index + 1] for o in r.outputs) * 3
    batch = max(1, memory_budget // per_feature)
    parts = [
        project(trace, (rec_index, slot), *_seeds(tap_tensor, feats[i : i + batch], select), rule=method)
        for i in range(0, len(feats), batch)
    ]
    D = torch.cat(parts).reshape(len(feats), *S.shape[1:])
    acts = tap_tensor[0, list(feats)].reshape(len(feats), -1)
    return Projection(
        D=D,
        layer=lay,
        features=feats,
        activation_max=acts.amax(dim=1),
        activation_energy=(acts**2).sum(dim=1),
        silent=tuple(bool(v) for v in (acts == 0).all(dim=1)),
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
