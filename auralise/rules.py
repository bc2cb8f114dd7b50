"""Backward rules: carry a batch of K signals from a tap tensor down to the model input.

The backward pass walks a :class:`~auralise.trace.Trace` in reverse. Every signal has a leading batch axis of K
(one slice per projected feature) in front of the forward tensor's own shape, so K features cost one pass.

What each rule does, op by op:

========================  ===========================  ===========================  ========================
op                        ``deconvnet``                ``guided``                   ``gradient``
========================  ===========================  ===========================  ========================
convolution               transpose (same weights, no bias) — all rules
max-pooling               routed through the forward pass's own switches; overlapping windows sum — all rules
ReLU family               ``relu(g)``                  ``relu(g) * (x > 0)``        true derivative
batch norm (eval)         ``g * gamma / sqrt(var+eps)`` — all rules (it is linear)
dropout (eval), copies    identity — all rules
anything else             vector–Jacobian product of the op (autograd, batched with ``vmap``) — all rules
========================  ===========================  ===========================  ========================

The ReLU family is ReLU, ReLU6, LeakyReLU, ELU, SELU, CELU, GELU, SiLU, Mish, Softplus and Hardswish, as modules,
functions (``F.relu``, ``torch.relu``, ``x.relu()``) or in place: ``deconvnet`` rectifies the backward signal
whatever the forward input was; ``guided`` also zeroes it where the forward input was not positive. Saturating
units (tanh, sigmoid, hardtanh, softsign) are not rectifiers: every rule passes their true derivative.

The fourth rule, ``support``, is for geometry, not attribution: every weight and pooling window counts as 1 and
every nonlinearity as the identity, so a non-negative seed spreads over exactly a unit's receptive field.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .trace import OpRecord, Trace

RULES = ("deconvnet", "guided", "gradient")
RELU_FAMILY = {
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "hardswish",
}
SATURATING = {"tanh", "sigmoid", "hardtanh", "softsign", "hardsigmoid"}
NORMS = {"batch_norm", "instance_norm"}
DROPOUTS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
COPIES = {"contiguous", "clone"}
POOLS = {
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "lp_pool1d",
    "lp_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
}
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}

Signal = torch.Tensor  # (K, *forward_shape)


def project(trace: Trace, tap: tuple[int, int], seeds: torch.Tensor, *, rule: str) -> torch.Tensor:
    """Carry ``seeds`` (K, *tap_shape) from the tap tensor down to the trace's source.

    Returns the signal at the model input, shape (K, *source.shape). Records after the tap are ignored.
    """
    signals: dict[tuple[int, int], Signal] = {tap: seeds}
    result = torch.zeros((seeds.shape[0], *trace.source.shape), dtype=seeds.dtype, device=seeds.device)
    for rec in reversed(trace.records[: tap[0] + 1]):
        grads = [signals.pop((rec.index, slot), None) for slot in range(len(rec.outputs))]
        if all(g is None for g in grads):
            continue
        inputs = rec.tracked_inputs()
        for x, g_in in zip(inputs, _backward(rec, grads, rule)):
            if g_in is None:
                continue
            if x is trace.source:
                result += g_in
                continue
            key = trace.producer[id(x)]
            signals[key] = signals[key] + g_in if key in signals else g_in
    return result


def _backward(rec: OpRecord, grads: list[Signal | None], rule: str) -> list[Signal | None]:
    """Input signals of one op, for its output signals ``grads`` (None where an output got none)."""
    name = rec.name
    g = grads[0]
    if rec.indices is not None and g is not None:
        return [_unpool(rec, g, rule)]
    if name in ("conv1d", "conv2d") and g is not None:
        return [_conv_transpose(rec, g, rule)]
    if name in RELU_FAMILY or (name in SATURATING and rule == "support"):
        return [_nonlinearity(rec, g, rule)]
    if name in DROPOUTS and not _kwarg(rec, "training", 2, True) or name in COPIES:
        return [g]
    if name in NORMS and (rule == "support" or _eval_batch_norm(rec)):
        return [g if rule == "support" else g * _bn_scale(rec, g)]
    return _vjp(rec, grads)


def _nonlinearity(rec: OpRecord, g: Signal, rule: str) -> Signal:
    x = rec.tracked_inputs()[0]
    if rule == "support":
        return g
    if rule == "deconvnet":
        return torch.relu(g)
    if rule == "guided":
        return torch.relu(g) * (x > 0)
    if rec.name == "relu":
        return g * (rec.outputs[0] > 0)
    return _vjp(rec, [g])[0]


def _unpool(rec: OpRecord, g: Signal, rule: str) -> Signal:
    """Max-unpooling through the recorded switches: scatter-add each window's signal onto its arg-max."""
    x = rec.tracked_inputs()[0]
    if rule == "support" and rec.name in ("max_pool1d", "max_pool2d"):
        return _pool_support(rec, g)
    k, b, c = g.shape[0], x.shape[0], x.shape[1]
    idx = rec.indices.reshape(1, b * c, -1).expand(k, -1, -1)
    out = torch.zeros((k, b * c, x[0, 0].numel()), dtype=g.dtype, device=g.device)
    out.scatter_add_(2, idx, g.reshape(k, b * c, -1))
    return out.view(k, *x.shape)


def _pool_support(rec: OpRecord, g: Signal) -> Signal:
    """Spread a max-pool's signal over its whole window (the geometry, not the switch)."""
    x = rec.tracked_inputs()[0]
    dims = 1 if rec.name == "max_pool1d" else 2
    names = ("input", "kernel_size", "stride", "padding", "dilation")
    params = dict(zip(names, rec.args))
    params.update({n: v for n, v in rec.kwargs.items() if n in names})
    kernel = _tuple(params["kernel_size"], dims)
    stride = _tuple(params.get("stride") or kernel, dims)
    channels = x.shape[1]
    ones = torch.ones((channels, 1, *kernel), dtype=g.dtype, device=g.device)
    conv_input = torch.nn.grad.conv1d_input if dims == 1 else torch.nn.grad.conv2d_input
    k = g.shape[0]
    out = conv_input(
        (k * x.shape[0], *x.shape[1:]),
        ones,
        g.reshape(k * x.shape[0], *g.shape[2:]),
        stride=stride,
        padding=_tuple(params.get("padding", 0), dims),
        dilation=_tuple(params.get("dilation", 1), dims),
        groups=channels,
    )
    return out.view(k, *x.shape)


def _conv_transpose(rec: OpRecord, g: Signal, rule: str) -> Signal:
    """Transposed convolution with the layer's own weights and no bias (``conv{1,2}d_input``)."""
    params = dict(_CONV_DEFAULTS)
    params.update(zip(_CONV_ARGS, rec.args))
    params.update(rec.kwargs)
    if isinstance(params["padding"], str):
        return _vjp(rec, [g])[0]
    x, weight = params["input"], params["weight"]
    if rule == "support":
        weight = torch.ones_like(weight)
    conv_input: Callable = torch.nn.grad.conv1d_input if rec.name == "conv1d" else torch.nn.grad.conv2d_input
    k, b = g.shape[0], x.shape[0]
    out = conv_input(
        (k * b, *x.shape[1:]),
        weight,
        g.reshape(k * b, *g.shape[2:]),
        stride=params["stride"],
        padding=params["padding"],
        dilation=params["dilation"],
        groups=params["groups"],
    )
    return out.view(k, *x.shape)


def _eval_batch_norm(rec: OpRecord) -> bool:
    return rec.name == "batch_norm" and not _kwarg(rec, "training", 5, False)


def _bn_scale(rec: OpRecord, g: Signal) -> torch.Tensor:
    """Per-channel gain of an eval-mode batch norm, shaped to broadcast against ``g``."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    if rec.is_aten:  # aten::batch_norm orders its tensors differently from F.batch_norm
        names = ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps")
    params = {"weight": None, "eps": 1e-5}
    params.update(zip(names, rec.args))
    params.update(rec.kwargs)
    scale = torch.rsqrt(params["running_var"] + params["eps"])
    if params["weight"] is not None:
        scale = scale * params["weight"]
    return scale.view(1, 1, -1, *([1] * (g.dim() - 3)))


def _vjp(rec: OpRecord, grads: list[Signal | None]) -> list[Signal | None]:
    """Generic rule: the op's vector–Jacobian product, batched over K with ``torch.func.vmap``."""
    inputs = rec.tracked_inputs()
    outs, vjp_fn = torch.func.vjp(lambda *xs: tuple(rec.call_with(*xs)), *inputs)
    k = next(g.shape[0] for g in grads if g is not None)
    cotangents = tuple(
        g if g is not None else torch.zeros((k, *o.shape), dtype=o.dtype, device=o.device) for g, o in zip(grads, outs)
    )
    return list(torch.func.vmap(vjp_fn)(cotangents))


def _kwarg(rec: OpRecord, name: str, position: int, default):
    if name in rec.kwargs:
        return rec.kwargs[name]
    return rec.args[position] if len(rec.args) > position else default


def _tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
