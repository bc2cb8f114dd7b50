"""The deconvnet's fused backward step into a convolution with many inputs: max-unpooling, the channel-wise ops
below the pool and the convolution's transpose, in one pass over the pooled signal's non-zero values
(:func:`unpool_transpose_wide`; the few-input first layer's step and the shared pieces are in
:mod:`auralise.engine.fused`).

After a rectifier about 95 % of the unpooled signal is zero on both shipped models' layers 2-4 (a window has one
switch, and about half the values are rectified away), so adding each non-zero value's kernel, all its input
channels at once, into a channels-last output does about a twentieth of the dense transpose's multiply-adds. On 30 s
through layer 2 (the bulk of a deep feature's backward pass) that took 13-16 ms a feature on 2 cores instead of
46-78 ms for the rectified unpooling and mkldnn's dense transpose.
"""

from __future__ import annotations

import numpy as np

from auralise.engine.fused import chain_slopes, in_threads, window_codes

__all__ = ["unpool_transpose_wide"]

_KERNEL = None


def unpool_transpose_wide(values: np.ndarray, switches, size: tuple[int, int], windows: tuple, chain: list,
                          weight: np.ndarray, padding: tuple[int, int], *, threads: int = 1,
                          cache: dict | None = None, channels: np.ndarray | None = None) -> np.ndarray:  # fmt: skip
    """Unpool pooled signals through the switches of windows that do not overlap, pass the channel-wise ops below
    the pool and transpose a stride-1 convolution with many inputs, in one pass over the non-zero values only.

    Only the non-zero values are visited (see the module docstring). The sums are the dense transpose's
    non-zero terms in another order (float32 rounding, ~5e-7 of the peak): the pooled rows in two bands, each in
    order, then the rows between them (the bands then write disjoint output rows, and run on two threads); in a
    row, cells, switch offsets and channels in order. The result depends neither on the thread count nor on the
    batch.

    Parameters
    ----------
    values : np.ndarray, shape (N, B, C, rows_pooled, cols_pooled), float32 or float64
        N signals per batch item at the pool's output, channels-last or plain.
    switches : array, shape (B, C, rows_pooled, cols_pooled), int
        The pool's arg-maxes (``max_pool2d``'s indices): flat positions in its input's plane.
    size, chain, weight, padding
        The pool input's size, the ops between the convolution and the pool, the convolution's weights (C, C_in,
        kh, kw) and zero padding: as :func:`auralise.engine.fused.unpool_transpose`.
    windows : ((rows, columns), (row stride, column stride))
        The pool's kernel and stride, windows not overlapping (kernel <= stride), no padding, dilation or ceil mode.
    threads : int
        Threads the two bands of pooled rows run on.
    cache : dict, optional
        Keeps the switches' offsets inside their windows for the next call with the same ``switches`` object.
    channels : np.ndarray, shape (N,), int, optional
        ``values`` (N, B, 1, ...) are channel slices: signal k lives in channel ``channels[k]`` only (a feature's
        seed), so its own channel's switches, ops and kernel are used.

    Returns
    -------
    np.ndarray, shape (N, B, rows + kh - 1 - 2 * pad_rows, columns + kw - 1 - 2 * pad_columns, C_in)
        The signal at the convolution's input, channels innermost.
    """
    n, b, c, h2, w2 = values.shape
    kh, kw = weight.shape[2:]
    alpha, beta = (s.astype(values.dtype) for s in chain_slopes(chain, weight.shape[0]))
    picks = np.zeros(n, dtype=np.int64) if channels is None else np.asarray(channels, dtype=np.int64).reshape(n)
    picks = np.repeat(picks, b)  # each item's first channel among the switches, ops and kernels
    codes = window_codes(switches, size, windows, {} if cache is None else cache)
    taps = np.ascontiguousarray(weight.transpose(0, 2, 3, 1), dtype=values.dtype).reshape(weight.shape[0], -1)
    rows, cols = size[0] + kh - 1 - 2 * padding[0], size[1] + kw - 1 - 2 * padding[1]
    out = _uncleared((n * b, rows * cols * weight.shape[1]), values.dtype)  # cleared by the kernel
    (height, width), (row_stride, _) = windows
    gap = -(-(height + kh - 1) // row_stride) - 1  # pooled rows this many apart write disjoint output rows
    kernel = _kernel()
    geometry = np.array([height, width, *windows[1], kh, kw, *padding, rows, cols], dtype=np.int64)
    cells, common = values.reshape(n * b, c, h2, w2), (picks, codes, alpha, beta, taps, out, b, geometry)
    if h2 < 2 * (gap + 1):
        kernel(cells, *common, 0, h2, 0, rows)
    else:  # two bands of rows, each in order (the output rows they share stay in cache), then the rows between
        middle = (h2 - gap) // 2
        split = min(rows, max(0, (middle + gap) * row_stride - padding[0]))  # band 2's first output row
        in_threads([(kernel, cells, *common, 0, middle, 0, split),
                     (kernel, cells, *common, middle + gap, h2, split, rows)], threads)  # fmt: skip
        if gap:
            kernel(cells, *common, middle, middle + gap, 0, 0)
    return out.reshape(n, b, rows, cols, -1)


def _uncleared(shape: tuple, dtype) -> np.ndarray:
    """Output memory that the kernel clears itself, row by row as it reaches it (``np.empty``)."""
    return np.empty(shape, dtype=dtype)


def _kernel():
    """The compiled kernel. Numba's ``contract`` lets LLVM fuse each multiply-add (one rounding, as the result's
    order is fixed anyway): only then does it vectorise the adds of a kernel row (4-5 times faster here)."""
    global _KERNEL
    if _KERNEL is None:
        import numba

        _KERNEL = numba.njit(nogil=True, cache=True, fastmath={"contract"})(_wide_unpool_transpose)
    return _KERNEL


def _wide_unpool_transpose(
    values, picks, codes, alpha, beta, taps, out, batch, geometry, first_row, last_row, clear_from, clear_to
):  # pragma: no cover - compiled by numba
    """Pooled rows ``first_row:last_row`` of each item of (NB, C, h2, w2) ``values``, in either layout, row by row
    and cell by cell: the channels through the chain, the non-zero ones grouped by their switch's offset ``codes``
    (B, h2, w2, C) in the window, in channel order; then per offset and kernel row, the group's ``taps`` rows (C,
    kh * kw * C_in: each kernel channels-last) times their values added into ``out`` (NB, rows * columns * C_in),
    four channels a pass, then one by one, in channel order. Output rows ``clear_from:clear_to`` are set to 0 just
    before the first row that writes them (and the rest after the last). ``geometry``: the windows' rows and
    columns, row and column strides, the convolution's kernel rows and columns, row and column padding, the
    output's rows and columns. Item i's channel c is channel ``picks[i] + c`` of the codes, slopes and taps (a
    channel slice's own channel; 0 for a dense signal)."""
    items, channels, h2, w2 = values.shape
    height, width, row_stride, col_stride = geometry[0], geometry[1], geometry[2], geometry[3]
    kh, kw, pad_y, pad_x, rows, cols = geometry[4], geometry[5], geometry[6], geometry[7], geometry[8], geometry[9]
    c_in = taps.shape[1] // (kh * kw)
    offsets = height * width
    zero = values.dtype.type(0)
    u = np.empty(channels, dtype=values.dtype)
    count = np.empty(offsets, dtype=np.int64)
    # per offset, its channels (one spare slot); windows apart: every code < offsets (no shared-switch flags)
    groups = np.empty((offsets, channels + 1), dtype=np.int64)
    for i in range(items):
        b, p = i % batch, picks[i]
        o = out[i]
        cleared = clear_from
        for pi in range(first_row, last_row + 1):
            reach = clear_to if pi == last_row else min(clear_to, pi * row_stride - pad_y + height + kh - 1)
            if reach > cleared:  # clear the output rows this row is the first to write, while they are in cache
                o[cleared * cols * c_in : reach * cols * c_in] = zero
                cleared = reach
            if pi == last_row:
                break
            for pj in range(w2):
                code = codes[b, pi, pj]
                for c in range(channels):  # the chain
                    x = values[i, c, pi, pj]
                    u[c] = alpha[p + c] * max(x, zero) + beta[p + c] * min(x, zero)
                n = 0
                for c in range(channels):  # a count first: empty cells stop here
                    n += u[c] != zero
                if n == 0:
                    continue
                for d in range(offsets):
                    count[d] = 0
                for c in range(channels):  # the non-zero channels grouped by offset, in channel order, no branch
                    d = code[p + c]
                    groups[d, count[d]] = c
                    count[d] += u[c] != zero
                for d in range(offsets):
                    if count[d] == 0:
                        continue
                    order = groups[d]
                    y0 = pi * row_stride + d // width - pad_y  # the kernel's corner in the output
                    x0 = pj * col_stride + d % width - pad_x
                    kx0, kx1 = max(0, -x0), min(kw, cols - x0)  # the kernel columns inside the output
                    span = (kx1 - kx0) * c_in
                    for ky in range(max(0, -y0), min(kh, rows - y0)):
                        base = ((y0 + ky) * cols + x0 + kx0) * c_in
                        dst, at = o[base : base + span], (ky * kw + kx0) * c_in
                        j, end = 0, count[d]
                        while j + 4 <= end:  # four channels a pass: one load and store of the output for four
                            k0, k1 = taps[p + order[j], at : at + span], taps[p + order[j + 1], at : at + span]
                            k2, k3 = taps[p + order[j + 2], at : at + span], taps[p + order[j + 3], at : at + span]
                            u0, u1, u2, u3 = u[order[j]], u[order[j + 1]], u[order[j + 2]], u[order[j + 3]]
                            for t in range(span):
                                dst[t] = dst[t] + u0 * k0[t] + u1 * k1[t] + u2 * k2[t] + u3 * k3[t]
                            j += 4
                        while j < end:
                            k0, u0 = taps[p + order[j], at : at + span], u[order[j]]
                            for t in range(span):
                                dst[t] = dst[t] + u0 * k0[t]
                            j += 1
