"""Backward rules: carry a batch of K signals from a tap tensor down to the model input.

The backward pass walks a :class:`~auralise.engine.trace.Trace` in reverse. Every signal has a leading batch axis of K
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
every nonlinearity as the identity, so a non-negative seed spreads over exactly a unit's receptive field. Max,
power-average and adaptive pools spread over their whole windows (``ceil_mode`` and adaptive windows included),
not through the switches.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from auralise.choices import METHODS
from auralise.engine.trace import OpRecord, Trace

RULES = METHODS  # the backward rules, by name (auralise.choices.METHODS)
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
_WINDOW_POOLS = {"max_pool1d", "max_pool2d", "lp_pool1d", "lp_pool2d"} | {p for p in POOLS if p.startswith("adaptive_")}
_CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
_CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}

Signal = torch.Tensor  # (K, *forward_shape)


@dataclass(frozen=True)
class ChannelSlice:
    """A signal that is zero outside one channel per feature: ``values`` (K, B, 1, *spatial), ``channels`` (K,).

    Seeds at a tap start in this form, and channel-wise ops (pooling, rectifiers, batch norm, dropout) keep it, so
    the top convolution transposes one output channel per feature instead of all of them.
    """

    values: torch.Tensor
    channels: torch.Tensor

    def dense(self, shape: torch.Size) -> Signal:
        """The full signal (K, *shape)."""
        out = self.values.new_zeros((self.values.shape[0], *shape))
        out[torch.arange(len(self.channels), device=out.device), :, self.channels] = self.values[:, :, 0]
        return out

    def gather(self, x: torch.Tensor) -> torch.Tensor:
        """The selected channels of a forward tensor ``x`` (B, C, *spatial) as (K, B, 1, *spatial)."""
        return x[:, self.channels].movedim(1, 0).unsqueeze(2)

    def with_values(self, values: torch.Tensor) -> ChannelSlice:
        return ChannelSlice(values, self.channels)


def project(
    trace: Trace, tap: tuple[int, int], seeds: torch.Tensor, channels: torch.Tensor | None = None, *, rule: str
) -> torch.Tensor:
    """Carry ``seeds`` from the tap tensor down to the trace's source.

    ``seeds`` is (K, *tap_shape), or with ``channels`` (K,) given, (K, B, 1, *tap_spatial): the seed of feature k
    lives in channel ``channels[k]`` only. Returns the signal at the model input, (K, *source.shape). Records
    after the tap are ignored.
    """
    with torch.no_grad():  # the rules are explicit; autograd would only record them (the VJP rule has its own)
        return _project(trace, tap, seeds, channels, rule)


def _project(
    trace: Trace, tap: tuple[int, int], seeds: torch.Tensor, channels: torch.Tensor | None, rule: str
) -> torch.Tensor:
    start: Signal | ChannelSlice = seeds if channels is None else ChannelSlice(seeds, channels)
    if rule == "support" and channels is not None:
        start = start.dense(trace.records[tap[0]].outputs[tap[1]].shape)
    signals: dict[tuple[int, int], Signal | ChannelSlice] = {tap: start}
    rectified: set[tuple[int, int]] = set()  # signals already rectified (deconvnet), so their ReLU can pass them
    consumers = trace.consumers()
    result = torch.zeros((seeds.shape[0], *trace.source.shape), dtype=seeds.dtype, device=seeds.device)
    for rec in reversed(trace.records[: tap[0] + 1]):
        grads = [signals.pop((rec.index, slot), None) for slot in range(len(rec.outputs))]
        if all(g is None for g in grads):
            continue
        inputs = rec.tracked_inputs()
        pre_rectify = rule == "deconvnet" and _unpools_into_relu(trace, rec, consumers)
        if rule == "deconvnet" and rec.name in RELU_FAMILY and (rec.index, 0) in rectified:
            grads_in = grads  # rectified before unpooling: rectification commutes with non-overlapping unpooling
        else:
            grads_in = _backward(rec, grads, rule, pre_rectify)
        for x, g_in in zip(inputs, grads_in):
            if g_in is None:
                continue
            if x is trace.source:
                result += _as_dense(g_in, x.shape)
                continue
            key = trace.producer[id(x)]
            if pre_rectify:
                rectified.add(key)
            signals[key] = _add(signals[key], g_in, x.shape) if key in signals else g_in
    return result


def _as_dense(g: Signal | ChannelSlice, shape: torch.Size) -> Signal:
    return g.dense(shape) if isinstance(g, ChannelSlice) else g


def _add(a: Signal | ChannelSlice, b: Signal | ChannelSlice, shape: torch.Size) -> Signal | ChannelSlice:
    if isinstance(a, ChannelSlice) and isinstance(b, ChannelSlice) and torch.equal(a.channels, b.channels):
        return a.with_values(a.values + b.values)
    return _as_dense(a, shape) + _as_dense(b, shape)


def _unpools_into_relu(trace: Trace, rec: OpRecord, consumers: dict[int, list[int]]) -> bool:
    """Whether ``rec`` is a non-overlapping max-pool whose input is a rectifier's output used by nothing else."""
    if rec.indices is None or rec.name not in ("max_pool1d", "max_pool2d"):
        return False
    x = rec.tracked_inputs()[0]
    producer = trace.producer.get(id(x))
    if producer is None or trace.records[producer[0]].name not in RELU_FAMILY or len(consumers[id(x)]) != 1:
        return False
    params = _pool_params(rec)
    dims = 1 if rec.name == "max_pool1d" else 2
    kernel, stride = _tuple(params["kernel_size"], dims), _tuple(params.get("stride") or params["kernel_size"], dims)
    dilation = _tuple(params.get("dilation", 1), dims)
    return all(d * (k - 1) + 1 <= s for k, s, d in zip(kernel, stride, dilation))


def _backward(
    rec: OpRecord, grads: list[Signal | ChannelSlice | None], rule: str, pre_rectify: bool = False
) -> list[Signal | ChannelSlice | None]:
    """Input signals of one op, for its output signals ``grads`` (None where an output got none)."""
    name = rec.name
    g = grads[0]
    if rule == "support" and name in _WINDOW_POOLS and g is not None:
        return [_pool_support(rec, _as_dense(g, rec.outputs[0].shape))]
    if rec.indices is not None and g is not None:
        return [_unpool(rec, g, pre_rectify)]
    if name in ("conv1d", "conv2d") and g is not None:
        return [_conv_transpose(rec, g, rule)]
    if isinstance(g, ChannelSlice):
        channelwise = _channelwise(rec, g, rule)
        if channelwise is not None:
            return [channelwise]
    grads = [_as_dense(g, o.shape) for g, o in zip(grads, rec.outputs)]
    g = grads[0]
    if name in RELU_FAMILY or (name in SATURATING and rule == "support"):
        return [_nonlinearity(rec, g, rule)]
    if name in DROPOUTS and not _kwarg(rec, "training", 2, True) or name in COPIES:
        return [g]
    if name in NORMS and (rule == "support" or _eval_batch_norm(rec)):
        return [g if rule == "support" else g * _bn_scale(rec, g)]
    return _vjp(rec, grads)


def _channelwise(rec: OpRecord, g: ChannelSlice, rule: str) -> ChannelSlice | None:
    """The rule of a channel-wise op applied to a channel slice, or None when the op is not channel-wise."""
    name = rec.name
    if name in DROPOUTS and not _kwarg(rec, "training", 2, True) or name in COPIES:
        return g
    if name in NORMS and _eval_batch_norm(rec):
        scale = _bn_scale(rec, g.values).reshape(-1)[g.channels]
        return g.with_values(g.values * scale.view(-1, *([1] * (g.values.dim() - 1))))
    if name not in RELU_FAMILY:
        return None
    if rule == "deconvnet":
        return g.with_values(torch.relu(g.values))
    if rule == "guided":
        return g.with_values(torch.relu(g.values) * (g.gather(rec.tracked_inputs()[0]) > 0))
    if name == "relu":
        return g.with_values(g.values * (g.gather(rec.outputs[0]) > 0))
    return None


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


def _unpool(rec: OpRecord, g: Signal | ChannelSlice, rectify: bool) -> Signal | ChannelSlice:
    """Max-unpooling through the recorded switches: scatter-add each window's signal onto its arg-max.

    With ``rectify`` the signal is rectified first (cheaper than rectifying the unpooled one; equal when the
    windows do not overlap). A channel slice stays a slice: only its own channel's switches are used.
    """
    x = rec.tracked_inputs()[0]
    values = g.values if isinstance(g, ChannelSlice) else g
    if rectify:
        values = torch.relu(values)
    k, b, c = values.shape[0], x.shape[0], values.shape[2]
    indices = rec.indices.reshape(b, x.shape[1], -1)
    if isinstance(g, ChannelSlice):
        indices = indices[:, g.channels].movedim(1, 0).reshape(k, b, -1)
    else:
        indices = indices.reshape(1, b * c, -1).expand(k, -1, -1)
    out = values.new_zeros((k, b * c, x[0, 0].numel()))
    out.scatter_add_(2, indices, values.reshape(k, b * c, -1))
    out = out.view(k, b, c, *x.shape[2:])
    return g.with_values(out) if isinstance(g, ChannelSlice) else out


def _pool_params(rec: OpRecord) -> dict:
    names = ("input", "kernel_size", "stride", "padding", "dilation")
    params = dict(zip(names, rec.args))
    params.update({n: v for n, v in rec.kwargs.items() if n in names})
    return params


def _pool_support(rec: OpRecord, g: Signal) -> Signal:
    """Spread a pool's signal over each of its whole windows (the geometry, not the switch or the weights).

    Max and power-average pools spread over their kernel windows, including a ``ceil_mode`` window that runs past
    the input's end (only its part inside the input is kept); adaptive pools over their own windows, output unit
    ``i`` of ``n_out`` covering input ``[floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out))``.
    """
    x = rec.tracked_inputs()[0]
    dims = 1 if rec.name.endswith("1d") else 2
    if rec.name.startswith("adaptive_"):
        out = g
        for d in range(dims):
            n_in, n_out = x.shape[2 + d], g.shape[3 + d]
            i = torch.arange(n_out, device=g.device).unsqueeze(1)
            j = torch.arange(n_in, device=g.device).unsqueeze(0)
            windows = ((j >= i * n_in // n_out) & (j < -(-(i + 1) * n_in // n_out))).to(g.dtype)  # (n_out, n_in)
            out = torch.matmul(out.movedim(3 + d, -1), windows).movedim(-1, 3 + d)
        return out
    if rec.name.startswith("lp_pool"):
        params = dict(zip(("input", "norm_type", "kernel_size", "stride"), rec.args)) | rec.kwargs
        params.update(padding=0, dilation=1)
    else:
        params = _pool_params(rec)
    kernel = _tuple(params["kernel_size"], dims)
    stride = _tuple(params.get("stride") or kernel, dims)
    padding, dilation = _tuple(params.get("padding", 0), dims), _tuple(params.get("dilation", 1), dims)
    # ceil_mode adds a last window that starts inside the input but runs past its end: transpose onto an input
    # long enough to hold it, then keep the real input's part
    size = tuple(
        max(n, (o - 1) * s + d * (k - 1) + 1 - 2 * p)
        for n, o, s, k, p, d in zip(x.shape[2:], g.shape[3:], stride, kernel, padding, dilation)
    )
    channels = x.shape[1]
    ones = torch.ones((channels, 1, *kernel), dtype=g.dtype, device=g.device)
    conv_input = torch.nn.grad.conv1d_input if dims == 1 else torch.nn.grad.conv2d_input
    k = g.shape[0]
    out = conv_input(
        (k * x.shape[0], channels, *size),
        ones,
        g.reshape(k * x.shape[0], *g.shape[2:]),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=channels,
    )
    for d, n in enumerate(x.shape[2:]):
        out = out.narrow(2 + d, 0, n)
    return out.reshape(k, *x.shape)


def _conv_transpose(rec: OpRecord, g: Signal | ChannelSlice, rule: str) -> Signal:
    """Transposed convolution with the layer's own weights and no bias.

    Stride-1 convolutions take fast forms: a channel slice goes through a grouped convolution with each feature's
    own flipped kernel; a dense signal into few input channels through a matrix product and ``fold`` (col2im);
    other dense signals through a forward convolution with the flipped, transposed kernel. The rest use
    ``conv{1,2}d_input``.
    """
    params = dict(_CONV_DEFAULTS)
    params.update(zip(_CONV_ARGS, rec.args))
    params.update(rec.kwargs)
    x, weight = params["input"], params["weight"].detach()  # matmul avoids its fast path for tensors needing grad
    dims = weight.dim() - 2
    padding = _numeric_padding(params["padding"], weight, _tuple(params["dilation"], dims))
    if padding is None:
        return _vjp(rec, [_as_dense(g, rec.outputs[0].shape)])[0]
    if rule == "support":
        weight = torch.ones_like(weight)
    stride, dilation = _tuple(params["stride"], dims), _tuple(params["dilation"], dims)
    flipped_padding = tuple(d * (k - 1) - p for k, p, d in zip(weight.shape[2:], padding, dilation))
    fast = set(stride) == {1} and params["groups"] == 1 and min(flipped_padding) >= 0
    conv = torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d
    k, b = g.values.shape[0] if isinstance(g, ChannelSlice) else g.shape[0], x.shape[0]
    if fast and isinstance(g, ChannelSlice):
        kernels = weight[g.channels].flip(list(range(2, 2 + dims)))  # (K, C_in, *kernel)
        out = conv(
            g.values.reshape(k, b, *g.values.shape[3:]).movedim(0, 1),
            kernels.reshape(k * weight.shape[1], 1, *weight.shape[2:]),
            padding=flipped_padding,
            dilation=dilation,
            groups=k,
        )
        return out.view(b, k, *x.shape[1:]).movedim(1, 0)
    g = _as_dense(g, rec.outputs[0].shape).reshape(k * b, *rec.outputs[0].shape[1:])
    c_out, c_in = weight.shape[0], weight.shape[1]
    if fast and dims == 2 and c_in * weight[0, 0].numel() <= c_out:
        columns = torch.matmul(weight.reshape(c_out, -1).t(), g.reshape(k * b, c_out, -1))
        out = torch.nn.functional.fold(columns, x.shape[2:], weight.shape[2:], dilation=dilation, padding=padding)
    elif fast:
        memory = torch.channels_last if dims == 2 else torch.contiguous_format
        flipped = weight.flip(list(range(2, 2 + dims))).transpose(0, 1)
        out = conv(
            g.contiguous(memory_format=memory),
            flipped.contiguous(memory_format=memory),
            padding=flipped_padding,
            dilation=dilation,
        )
    else:
        conv_input: Callable = torch.nn.grad.conv1d_input if dims == 1 else torch.nn.grad.conv2d_input
        out = conv_input(
            (k * b, *x.shape[1:]), weight, g, stride=stride, padding=padding, dilation=dilation, groups=params["groups"]
        )
    return out.contiguous().view(k, *x.shape)


def _numeric_padding(padding, weight: torch.Tensor, dilation: tuple[int, ...]) -> tuple[int, ...] | None:
    """Symmetric padding per spatial dim; None for a 'same' padding that torch makes asymmetric."""
    dims = weight.dim() - 2
    if padding == "valid":
        return (0,) * dims
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(weight.shape[2:], dilation)]
        return None if any(t % 2 for t in total) else tuple(t // 2 for t in total)
    return _tuple(padding, dims)


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
