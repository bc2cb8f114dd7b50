"""Where the deconvnet's backward pass on the CPU takes a fused step (:mod:`auralise.engine.fused`'s kernels) instead
of op by op, and the tiled unpooling that writes its output once.

Going down from a 2-d max-pool, through channel-wise ops only (rectifiers, eval batch norms, dropouts), to a
stride-1 convolution:

- into few input channels (the first layer): unpooling, the ops and that convolution's transpose in one pass
  (:func:`auralise.engine.fused.unpool_transpose`);
- into many, through windows that do not overlap, when the ops rectify (the signal is then about 95 % zeros):
  unpooling, the ops and the transpose in one pass over the non-zero values, channels-last
  (:func:`auralise.engine.fused_wide.unpool_transpose_wide`); a feature's seed, a channel slice, too (a grouped
  convolution would transpose the zeros of its unpooled map);
- into many, through windows that tile the pool's input, when nothing rectifies: unpooling and the ops in one pass
  that writes the convolution's output signal once, channels innermost, as its channels-last dense transpose wants
  it (:func:`auralise.engine.fused.unpool_chain`).

All compute the same sums as the op-by-op path, in another order (agreement at float32 rounding).
"""

from __future__ import annotations

import torch

from auralise.engine import ops
from auralise.engine.trace import OpRecord, Trace


def fused_below(trace: Trace, rec: OpRecord, g, consumers: dict[int, list[int]],
                channels: torch.Tensor | None = None) -> tuple | None:  # fmt: skip
    """(a tensor below ``rec``, its signal) when ``rec`` is a 2-d max-pool over channel-wise ops (rectifiers, eval
    batch norms, dropouts) over a stride-1 convolution, each tensor used only by the next op, and ``g`` a dense CPU
    signal (K, B, C, *pooled) that one of :mod:`auralise.engine.fused`'s kernels carries down that stretch (see the
    module docstring): the convolution's input, or its output. With ``channels`` (K,), ``g`` (K, B, 1, *pooled) is
    a channel slice (feature k's signal in channel ``channels[k]`` only), carried by the many-input kernel only.
    None otherwise (or without numba)."""
    if rec.name != "max_pool2d" or rec.indices is None or rec.is_aten or not isinstance(g, torch.Tensor):
        return None
    if g.device.type != "cpu" or g.dtype not in (torch.float32, torch.float64):
        return None
    x, chain = rec.tracked_inputs()[0], []
    while id(x) in trace.producer and len(consumers.get(id(x), ())) == 1:
        below = trace.records[trace.producer[id(x)][0]]
        if below.name == "conv2d":
            return _fused_conv(trace, rec, g, below, x, chain, channels)
        if below.name in ops.RELU_FAMILY:
            chain.append(("rectify", None))
        elif below.name in ops.NORMS and ops.eval_batch_norm(below):
            chain.append(("gain", ops.bn_scale(below, g).reshape(-1).cpu().numpy()))
        elif not (below.name in ops.DROPOUTS and not ops.kwarg(below, "training", 2, True) or below.name in ops.COPIES):
            return None
        if len(below.tracked) != 1:
            return None
        x = below.tracked_inputs()[0]
    return None


def _fused_conv(trace: Trace, pool: OpRecord, g: torch.Tensor, conv: OpRecord, x: torch.Tensor, chain: list,
                channels: torch.Tensor | None) -> tuple | None:  # fmt: skip
    """:func:`fused_below` once its convolution is found; ``x`` is the convolution's output."""
    from auralise.engine import fused, fused_wide

    params = ops.conv_params(conv)
    weight = params["weight"].detach()
    if weight.dim() != 4 or params["groups"] != 1 or not fused.available():
        return None
    if set(ops.as_tuple(params["stride"], 2)) != {1} or set(ops.as_tuple(params["dilation"], 2)) != {1}:
        return None
    size, threads = tuple(pool.tracked_inputs()[0].shape[2:]), torch.get_num_threads()
    padding = ops.numeric_padding(params["padding"], weight, (1, 1))
    valid = padding is not None and all(0 <= p < k for p, k in zip(padding, weight.shape[2:]))
    if weight.shape[1] * weight[0, 0].numel() > weight.shape[0]:  # many inputs
        windows = plain_windows(pool)
        if valid and windows is not None and _apart(windows) and any(kind == "rectify" for kind, _ in chain):
            picks = None if channels is None else channels.cpu().numpy()
            out = fused_wide.unpool_transpose_wide(g.numpy(), pool.indices, size, windows, chain,
                                                   weight.cpu().numpy(), padding, threads=threads,
                                                   cache=trace.cache, channels=picks)  # fmt: skip
            return params["input"], torch.from_numpy(out).permute(0, 1, 4, 2, 3)  # channels-last
        if channels is not None:
            return None
        window = tiling(pool)  # unrectified (dense) signals: stop at the convolution's output
        if window is None:
            return None
        out = fused.unpool_chain(g.numpy(), pool.indices, size, window, chain, threads=threads, cache=trace.cache)
        return x, torch.from_numpy(out).permute(0, 1, 4, 2, 3)  # (K, B, C, rows, columns), channels-last
    if not valid or channels is not None:
        return None
    out = fused.unpool_transpose(g.numpy(), pool.indices, size, chain, weight.cpu().numpy(), padding,
                                 windows=plain_windows(pool), threads=threads, cache=trace.cache)  # fmt: skip
    return params["input"], torch.from_numpy(out)


def _apart(windows: tuple) -> bool:
    """Whether pooling windows ((rows, columns), (row stride, column stride)) do not overlap, and a switch's offset
    in its window fits the fused kernels' one-byte codes."""
    (kh, kw), (sh, sw) = windows
    return kh <= sh and kw <= sw and kh * kw <= 64


def tiled_unpool(trace: Trace, rec: OpRecord, values: torch.Tensor) -> torch.Tensor | None:
    """The rules' unpooling of a dense signal (K, B, C, *pooled) through windows that tile the input, on any
    device; None when they do not (overlapping, padded, dilated or ``ceil_mode`` windows), the op is not a 2-d
    max-pool or no channels-last transpose follows."""
    geometry = tiling(rec)
    if geometry is None:
        return None
    x = rec.tracked_inputs()[0]
    kh, kw = geometry
    k, (b, c, h, w) = values.shape[0], x.shape
    h2, w2 = values.shape[3], values.shape[4]
    key = ("tiled-unpool", rec.index)
    if key not in trace.cache:  # per window offset (dy, dx): 1 where the window's switch is, (B, C, h2, w2)
        offsets = None
        if feeds_channels_last_conv(trace, rec):
            mask = torch.zeros((b, c, h * w), dtype=values.dtype, device=x.device)
            mask.scatter_(2, rec.indices.reshape(b, c, -1), 1.0)
            tiles = mask.view(b, c, h, w)[:, :, : h2 * kh, : w2 * kw].unflatten(3, (w2, kw)).unflatten(2, (h2, kh))
            offsets = {(dy, dx): tiles[:, :, :, dy, :, dx].contiguous(memory_format=torch.channels_last)
                       for dy in range(kh) for dx in range(kw)}  # fmt: skip
        trace.cache[key] = offsets
    offsets = trace.cache[key]
    if offsets is None:  # a matrix product below wants the plain layout: the scatter makes it directly
        return None
    out = torch.empty((k * b, c, h, w), dtype=values.dtype, device=values.device, memory_format=torch.channels_last)
    full = out.view(k, b, c, h, w)
    tiles = full[..., : h2 * kh, : w2 * kw].unflatten(4, (w2, kw)).unflatten(3, (h2, kh))
    for (dy, dx), switch in offsets.items():  # each output cell written once: no zero fill, no scatter
        torch.mul(values, switch, out=tiles[:, :, :, :, dy, :, dx])
    if h > h2 * kh:
        full[..., h2 * kh :, :] = 0
    if w > w2 * kw:
        full[..., : h2 * kh, w2 * kw :] = 0
    return full


def tiling(rec: OpRecord) -> tuple[int, int] | None:
    """(kernel rows, columns) of a 2-d max-pool whose windows tile its input (kernel = stride, no padding,
    dilation or ceil mode); None otherwise."""
    windows = plain_windows(rec)
    return windows[0] if windows is not None and windows[0] == windows[1] else None


def plain_windows(rec: OpRecord) -> tuple[tuple[int, int], tuple[int, int]] | None:
    """((kernel rows, columns), (row stride, column stride)) of a 2-d max-pool with no padding, dilation or ceil
    mode; None otherwise."""
    if rec.name != "max_pool2d" or rec.is_aten:
        return None
    params = ops.pool_params(rec)
    kernel = ops.as_tuple(params["kernel_size"], 2)
    stride = ops.as_tuple(params.get("stride") or params["kernel_size"], 2)
    padding, dilation = ops.as_tuple(params.get("padding", 0), 2), ops.as_tuple(params.get("dilation", 1), 2)
    ceil = rec.kwargs.get("ceil_mode", rec.args[5] if len(rec.args) > 5 else False)
    if set(padding) != {0} or set(dilation) != {1} or ceil:
        return None
    return tuple(kernel), tuple(stride)


def feeds_channels_last_conv(trace: Trace, rec: OpRecord) -> bool:
    """Whether the pool's input comes, through channel-wise ops only, from a convolution whose transpose runs
    channels-last (the rules' dense forward-convolution form of its transpose)."""
    x = rec.tracked_inputs()[0]
    while id(x) in trace.producer:
        below = trace.records[trace.producer[id(x)][0]]
        if below.name == "conv2d":
            params = ops.conv_params(below)
            weight = params["weight"]
            few_inputs = weight.shape[1] * weight[0, 0].numel() <= weight.shape[0]
            return set(ops.as_tuple(params["stride"], 2)) == {1} and params["groups"] == 1 and not few_inputs
        channelwise = below.name in ops.RELU_FAMILY | ops.NORMS | ops.DROPOUTS | ops.COPIES
        if not channelwise or len(below.tracked) != 1:
            return False
        x = below.tracked_inputs()[0]
    return False
