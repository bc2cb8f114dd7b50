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

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from auralise.choices import METHODS
from auralise.engine.fusion import fused_below, tiled_unpool
from auralise.engine.ops import (
    COPIES,
    DROPOUTS,
    NORMS,
    RELU_FAMILY,
    SATURATING,
    WINDOW_POOLS,
    as_tuple,
    bn_scale,
    conv_params,
    eval_batch_norm,
    kwarg,
    numeric_padding,
    pool_params,
)
from auralise.engine.trace import OpRecord, Trace

RULES = METHODS  # the backward rules, by name (auralise.choices.METHODS)

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
    after the tap are ignored. On the CPU a seed that is zero everywhere (a feature never active) is not carried:
    its projection is zero, as every rule is positively homogeneous in its seed (on a GPU, finding it would make
    the host wait for the device).
    """
    with torch.no_grad():  # the rules are explicit; autograd would only record them (the VJP rule has its own)
        silent = _silent_seeds(seeds)
        if silent is not None:
            carried = (~silent).nonzero().flatten()
            chosen = None if channels is None or not len(carried) else channels[carried]
            part = project(trace, tap, seeds[carried], chosen, rule=rule) if len(carried) else None
            # allocated once the part is made: at most the memory of the whole batch's projection and its scaling
            out = torch.zeros((seeds.shape[0], *trace.source.shape), dtype=seeds.dtype, device=seeds.device)
            if part is not None:
                out[carried] = part
            return out
        exponents = _peak_exponents(seeds)
        scaled = torch.ldexp(seeds, exponents.view(-1, *([1] * (seeds.dim() - 1))).to(seeds.dtype))
        D = _project(trace, tap, scaled, channels, rule)
        return torch.ldexp(D, -exponents.view(-1, *([1] * (D.dim() - 1))).to(D.dtype))


def _silent_seeds(seeds: torch.Tensor) -> torch.Tensor | None:
    """(K,) bool, True for the seeds that are zero everywhere, when some are and the seeds are on the CPU; else
    None (on a GPU, finding them would make the host wait for the device)."""
    if seeds.device.type != "cpu":
        return None
    silent = seeds.detach().flatten(1).abs().amax(dim=1) == 0
    return silent if bool(silent.any()) else None


def _peak_exponents(seeds: torch.Tensor) -> torch.Tensor:
    """(K,) integer exponents ``e`` that bring each seed's peak into [1, 2) when it is multiplied by ``2**e``.

    Every rule is positively homogeneous in the seed, so a seed scaled by a power of two gives the same projection
    scaled by it, bit for bit, as long as nothing under- or overflows. A barely active feature (a peak of 1e-34,
    say) would otherwise run its whole backward pass in subnormal numbers: imprecise, and on x86 about ten times
    slower (a 128-channel transposed convolution took 0.5 s instead of 43 ms).
    """
    peak = seeds.detach().abs().flatten(1).amax(dim=1)
    _, exponent = torch.frexp(peak)  # peak = m * 2**exponent, m in [0.5, 1); 0 for a zero peak
    limit = int(math.log2(torch.finfo(seeds.dtype).max)) - 1  # the scale itself stays finite
    return torch.where(peak > 0, (1 - exponent).clamp(max=limit), 0)


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
        fused = _fused_step(trace, rec, grads[0], consumers) if rule == "deconvnet" else None
        inputs, grads_in = (fused[:1], fused[1:]) if fused else (rec.tracked_inputs(), None)
        pre_rectify = not fused and rule == "deconvnet" and _unpools_into_relu(trace, rec, consumers)
        if fused:
            pass  # the pool, the channel-wise ops below it and the convolution below those, in one step
        elif rule == "deconvnet" and rec.name in RELU_FAMILY and (rec.index, 0) in rectified:
            grads_in = grads  # rectified before unpooling: rectification commutes with non-overlapping unpooling
        elif rec.indices is not None and grads[0] is not None and rule != "support":
            grads_in = [_unpool(rec, grads[0], pre_rectify, trace)]
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


def _fused_step(trace: Trace, rec: OpRecord, g: Signal | ChannelSlice | None, consumers: dict) -> tuple | None:
    """:func:`~auralise.engine.fusion.fused_below` for a dense signal or a channel slice (its values, one channel
    per feature)."""
    if isinstance(g, ChannelSlice):
        return fused_below(trace, rec, g.values, consumers, channels=g.channels)
    return fused_below(trace, rec, g, consumers)


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
    params = pool_params(rec)
    dims = 1 if rec.name == "max_pool1d" else 2
    kernel = as_tuple(params["kernel_size"], dims)
    stride = as_tuple(params.get("stride") or params["kernel_size"], dims)
    dilation = as_tuple(params.get("dilation", 1), dims)
    return all(d * (k - 1) + 1 <= s for k, s, d in zip(kernel, stride, dilation))


def _backward(
    rec: OpRecord, grads: list[Signal | ChannelSlice | None], rule: str, pre_rectify: bool = False
) -> list[Signal | ChannelSlice | None]:
    """Input signals of one op, for its output signals ``grads`` (None where an output got none)."""
    name = rec.name
    g = grads[0]
    if rule == "support" and name in WINDOW_POOLS and g is not None:
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
    if name in DROPOUTS and not kwarg(rec, "training", 2, True) or name in COPIES:
        return [g]
    if name in NORMS and (rule == "support" or eval_batch_norm(rec)):
        return [g if rule == "support" else g * bn_scale(rec, g)]
    return _vjp(rec, grads)


def _channelwise(rec: OpRecord, g: ChannelSlice, rule: str) -> ChannelSlice | None:
    """The rule of a channel-wise op applied to a channel slice, or None when the op is not channel-wise."""
    name = rec.name
    if name in DROPOUTS and not kwarg(rec, "training", 2, True) or name in COPIES:
        return g
    if name in NORMS and eval_batch_norm(rec):
        scale = bn_scale(rec, g.values).reshape(-1)[g.channels]
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


def _unpool(
    rec: OpRecord, g: Signal | ChannelSlice, rectify: bool, trace: Trace | None = None
) -> Signal | ChannelSlice:
    """Max-unpooling through the recorded switches: scatter-add each window's signal onto its arg-max.

    With ``rectify`` the signal is rectified first (cheaper than rectifying the unpooled one; equal when the
    windows do not overlap). A channel slice stays a slice: only its own channel's switches are used. A dense
    signal through windows that tile the input (kernel = stride, no padding or dilation) into a convolution whose
    transpose runs channels-last is multiplied by one-hot masks of the switches instead (made once per trace), one
    per window offset: the output is written once, channels-last, with no zero fill, scatter or layout copy.
    """
    x = rec.tracked_inputs()[0]
    values = g.values if isinstance(g, ChannelSlice) else g
    if rectify:
        values = torch.relu(values)
    if trace is not None and not isinstance(g, ChannelSlice):
        tiled = tiled_unpool(trace, rec, values)
        if tiled is not None:
            return tiled
    k, b, c = values.shape[0], x.shape[0], values.shape[2]
    if trace is not None and not isinstance(g, ChannelSlice) and _channels_last(values):
        return _unpool_channels_last(trace, rec, values)
    indices = rec.indices.reshape(b, x.shape[1], -1)
    if isinstance(g, ChannelSlice):
        indices = indices[:, g.channels].movedim(1, 0).reshape(k, b, -1)
    else:
        indices = indices.reshape(1, b * c, -1).expand(k, -1, -1)
    out = values.new_zeros((k, b * c, x[0, 0].numel()))
    out.scatter_add_(2, indices, values.contiguous().view(k, b * c, -1))  # a channels-last source: one copy
    out = out.view(k, b, c, *x.shape[2:])
    return g.with_values(out) if isinstance(g, ChannelSlice) else out


def _channels_last(values: Signal) -> bool:
    """Whether a dense 2-d signal (K, B, C, h, w) is laid out channels-last (C innermost) and not also plainly."""
    return values.dim() == 5 and values.shape[2] > 1 and values.stride(2) == 1 and not values.is_contiguous()


def _unpool_channels_last(trace: Trace, rec: OpRecord, values: Signal) -> Signal:
    """:func:`_unpool` of a channels-last dense signal (K, B, C, h, w) into a channels-last output: the scatter
    runs along the positions with the channels innermost (switches rearranged once per trace), no layout copy."""
    x = rec.tracked_inputs()[0]
    k, (b, c, h, w) = values.shape[0], x.shape
    key = ("unpool-channels-last", rec.index)
    if key not in trace.cache:
        trace.cache[key] = rec.indices.permute(0, 2, 3, 1).reshape(1, b, -1, c)
    indices = trace.cache[key]
    src = values.permute(0, 1, 3, 4, 2).reshape(k, b, -1, c)  # a view: the memory is already in this order
    out = values.new_zeros((k, b, h * w, c))
    out.scatter_add_(2, indices.expand(k, -1, -1, -1), src)
    return out.view(k, b, h, w, c).permute(0, 1, 4, 2, 3)


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
        params = pool_params(rec)
    kernel = as_tuple(params["kernel_size"], dims)
    stride = as_tuple(params.get("stride") or kernel, dims)
    padding, dilation = as_tuple(params.get("padding", 0), dims), as_tuple(params.get("dilation", 1), dims)
    # ceil_mode adds a last window that starts inside the input but runs past its end: transpose onto an input
    # long enough to hold it, then keep the real input's part
    size = tuple(
        max(n, (o - 1) * s + d * (k - 1) + 1 - 2 * p)
        for n, o, s, k, p, d in zip(x.shape[2:], g.shape[3:], stride, kernel, padding, dilation)
    )
    channels = x.shape[1]
    same = channels > 1 and g.stride(2) == 0  # every channel the same (an all-ones transpose below): spread one
    if same:
        g, channels = g.narrow(2, 0, 1), 1
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
    if same:
        return out.reshape(k, x.shape[0], 1, *x.shape[2:]).expand(k, *x.shape)
    return out.reshape(k, *x.shape)


def _slice_kernel_fits(values: torch.Tensor, kernels: torch.Tensor, dilation: tuple) -> bool:
    """Whether :func:`auralise.engine.fused.slice_transpose` carries a channel slice (K, B, 1, rows, columns) of
    CPU float32 values through flipped ``kernels`` (K, 1, kh, kw), undilated: a first layer's single input channel
    (in float32 torch runs oneDNN's grouped convolution, whose sums it repeats; float64 keeps torch's)."""
    from auralise.engine import fused

    return (values.device.type == "cpu" and values.dtype == torch.float32 and values.dim() == 5
            and kernels.shape[1] == 1 and set(dilation) == {1} and fused.available())  # fmt: skip


def _conv_transpose(rec: OpRecord, g: Signal | ChannelSlice, rule: str) -> Signal:
    """Transposed convolution with the layer's own weights and no bias.

    Stride-1 convolutions take fast forms: a channel slice goes through a grouped convolution with each feature's
    own flipped kernel; a dense signal into few input channels through a matrix product and ``fold`` (col2im);
    other dense signals through a forward convolution with the flipped, transposed kernel. The rest use
    ``conv{1,2}d_input``.
    """
    params = conv_params(rec)
    x, weight = params["input"], params["weight"].detach()  # matmul avoids its fast path for tensors needing grad
    dims = weight.dim() - 2
    padding = numeric_padding(params["padding"], weight, as_tuple(params["dilation"], dims))
    if padding is None:
        return _vjp(rec, [_as_dense(g, rec.outputs[0].shape)])[0]
    if rule == "support" and params["groups"] == 1:
        return _support_transpose(rec, g, params, padding)
    if rule == "support":
        weight = torch.ones_like(weight)
    stride, dilation = as_tuple(params["stride"], dims), as_tuple(params["dilation"], dims)
    flipped_padding = tuple(d * (k - 1) - p for k, p, d in zip(weight.shape[2:], padding, dilation))
    fast = set(stride) == {1} and params["groups"] == 1 and min(flipped_padding) >= 0
    conv = torch.nn.functional.conv1d if dims == 1 else torch.nn.functional.conv2d
    k, b = g.values.shape[0] if isinstance(g, ChannelSlice) else g.shape[0], x.shape[0]
    if fast and isinstance(g, ChannelSlice):
        kernels = weight[g.channels].flip(list(range(2, 2 + dims)))  # (K, C_in, *kernel)
        if _slice_kernel_fits(g.values, kernels, dilation):  # into one input channel: the same sums, 8x sooner
            from auralise.engine.fused import slice_transpose

            values = g.values.numpy().reshape(k, b, 1, *g.values.shape[3:])
            out = slice_transpose(values, kernels[:, 0].numpy(), flipped_padding, threads=torch.get_num_threads())
            return torch.from_numpy(out).view(k, *x.shape)
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
    return out.unflatten(0, (k, b))  # channels-last stays so: the next transpose takes it as it is


def _support_transpose(rec: OpRecord, g: Signal | ChannelSlice, params: dict, padding: tuple[int, ...]) -> Signal:
    """The ``support`` rule's transpose of an ungrouped convolution: with every weight 1, each input channel gets
    the same signal, the transpose of the output channels' sum through one all-ones kernel (C_out x C_in times
    less work than the dense transpose; the values are the same counts, summed in another order)."""
    x, weight = params["input"], params["weight"]
    dims = weight.dim() - 2
    g = _as_dense(g, rec.outputs[0].shape)
    k, b = g.shape[0], x.shape[0]
    total = g.reshape(k * b, *g.shape[2:]).sum(dim=1, keepdim=True)
    ones = torch.ones((1, 1, *weight.shape[2:]), dtype=total.dtype, device=total.device)
    conv_input: Callable = torch.nn.grad.conv1d_input if dims == 1 else torch.nn.grad.conv2d_input
    out = conv_input((k * b, 1, *x.shape[2:]), ones, total, stride=as_tuple(params["stride"], dims),
                     padding=padding, dilation=as_tuple(params["dilation"], dims))  # fmt: skip
    return out.expand(k * b, x.shape[1], *x.shape[2:]).unflatten(0, (k, b))


def _vjp(rec: OpRecord, grads: list[Signal | None]) -> list[Signal | None]:
    """Generic rule: the op's vector–Jacobian product, batched over K with ``torch.func.vmap``."""
    inputs = rec.tracked_inputs()
    outs, vjp_fn = torch.func.vjp(lambda *xs: tuple(rec.call_with(*xs)), *inputs)
    k = next(g.shape[0] for g in grads if g is not None)
    cotangents = tuple(
        g if g is not None else torch.zeros((k, *o.shape), dtype=o.dtype, device=o.device) for g, o in zip(grads, outs)
    )
    return list(torch.func.vmap(vjp_fn)(cotangents))
