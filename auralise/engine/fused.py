"""The fused steps of the deconvnet's backward pass: max-unpooling, the channel-wise ops below the pool and the
transposed convolution below those, in one pass over the pooled signal's non-zero values.

Below a pooling layer the backward signal is non-zero only at the switches (one cell per window), and after a
rectifier at about half of those. Done as separate operations (zero fill, scatter, rectifier, a dense transposed
convolution) every stage writes and reads the whole dense signal and the convolution multiplies all its zeros.

- :func:`unpool_transpose`, into a convolution with few inputs (the first layer): each pooled cell's kernel
  contribution is added around its switch into an output plane that stays in cache. Before, the separate stages
  took about 40 % of a deep feature's backward time on the Choi demo model (85 MB of dense full-resolution signal
  per feature).
- :func:`auralise.engine.fused_wide.unpool_transpose_wide`, into a convolution with many inputs (layers 2 and
  up): each non-zero value's kernel, all its input channels at once, is added channels-last into the output; about
  5 % of the dense transpose's multiply-adds on both shipped models, 4-5 times faster than mkldnn's dense
  transpose there. It uses this module's chain slopes, switch offsets and helper threads.
- :func:`unpool_chain`, for an unrectified signal into a convolution with many inputs: unpooling and the ops only,
  written once, channels innermost, for the dense transpose that follows.

Each computes the same sums as the op-by-op path over the non-zero terms, in another order (agreement at float32
rounding, ~1e-7 to 5e-7 of the peak), and in an order fixed by the data's shape alone: the result depends neither on
the thread count nor on the batch.

The channel-wise ops (rectifiers under the deconvnet rule, eval batch norms) are positively homogeneous with one
kink at 0, so their chain is, per channel ``c``, ``f_c(u) = alpha_c * max(u, 0) + beta_c * min(u, 0)``
(:func:`chain_slopes`).

Numba (a dependency of librosa) compiles the kernels on first use and caches them on disk; without numba the rules
take the unfused path. The kernels release the GIL and run their parts on the calling thread and helper threads kept
between calls. In :func:`unpool_transpose` each item (feature x batch) is split in :data:`PARTS` parts (pooled
rows or channels, taken in turn, so that dense and sparse ones are shared alike), each into its own output plane,
summed in a fixed order: even a batch of one feature keeps both cores busy. Channels-last signals, as mkldnn's
transposed convolution above hands them down, go cell by cell straight into the output, each switch read as its
uint8 offset in its window; where windows overlap along one axis (musicnn's VGG: 4 x 1 windows, stride 2), the
offset also says whether the next window's switch is on the same cell (its value is added first) or the previous
one's (the value was taken). Signals in the plain layout, and windows that overlap otherwise, go channel by channel
(non-zero cells compacted first; shared cells summed in a scratch plane).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np

__all__ = [
    "available",
    "chain_slopes",
    "in_threads",
    "slice_transpose",
    "unpool_chain",
    "unpool_transpose",
    "window_codes",
]

_KERNELS: dict | None = None
_POOL: ThreadPoolExecutor | None = None  # the helper threads the kernels' parts run on, kept between calls
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
PATCH_VALUES = 1 << 20  # the most values of the kernels placed in a window's footprint (cell-by-cell kernel)
PARTS = 2  # each item's inner range is split in this many parts, whatever the batch or the number of threads


def available() -> bool:
    """Whether the fused kernels can run here (numba imports)."""
    return bool(_kernels())


def chain_slopes(chain: list[tuple[str, np.ndarray | None]], channels: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel slopes ``(alpha, beta)``, each (C,) float64, of a chain of ops on positive and negative input.

    ``chain`` in the order the backward signal meets the ops: ``("gain", g)`` multiplies channel c by ``g[c]``,
    ``("rectify", None)`` is ``max(x, 0)``.
    """
    alpha, beta = np.ones(channels), np.ones(channels)
    for kind, gains in chain:
        if kind == "gain":
            g = np.asarray(gains, dtype=np.float64).reshape(channels)
            alpha, beta = alpha * g, beta * g
        else:  # a unit input's image is alpha (u > 0) or -beta (u < 0): rectified where negative
            alpha, beta = np.where(alpha > 0, alpha, 0.0), np.where(beta < 0, beta, 0.0)
    return alpha, beta


def unpool_transpose(values: np.ndarray, switches, size: tuple[int, int], chain: list, weight: np.ndarray,
                     padding: tuple[int, int], *, windows: tuple | None = None, threads: int = 1,
                     cache: dict | None = None) -> np.ndarray:  # fmt: skip
    """Unpool pooled signals through their switches, pass the channel-wise ops below the pool and transpose a
    stride-1 convolution, in one pass.

    Parameters
    ----------
    values : np.ndarray, shape (N, B, C, *pooled), float32 or float64
        Pooled signals, N per batch item (e.g. features); a channels-last layout is read as it is.
    switches : array, shape (B, C, *pooled), int
        Each pooled cell's arg-max as a flat position in the pool input's (rows * columns) plane.
    size : (rows, columns)
        The pool input's spatial size (the convolution's output: stride 1).
    chain : list of (kind, gains)
        The ops between the convolution and the pool (:func:`chain_slopes`).
    weight : np.ndarray, shape (C, C_in, kh, kw)
        The convolution's weights.
    padding : (rows, columns)
        The convolution's zero padding, at most the kernel's size - 1.
    windows : ((rows, columns), (row stride, column stride)), optional
        The pool's kernel and stride when its windows have no padding, dilation or ceil mode; None otherwise.
        Windows that overlap may share a switch: signals meeting at one cell are summed before the ops.
    threads : int
        Threads the items are split over.
    cache : dict, optional
        Keeps the switches' positions in the padded plane for the next call with the same ``switches`` object.

    Returns
    -------
    np.ndarray, shape (N, B, C_in, rows + kh - 1 - 2 * pad_rows, columns + kw - 1 - 2 * pad_columns)
        The signal at the convolution's input (a view of a padded array).
    """
    n, b, c = values.shape[:3]
    kh, kw = weight.shape[2:]
    # the plane padded to hold every window whole: the input's cell (y, x) at (y + pad_y, x + pad_x)
    rows, cols = size[0] + kh - 1, size[1] + kw - 1
    alpha, beta = (s.astype(values.dtype) for s in chain_slopes(chain, c))
    cell_major = _channels_last(values)
    cache = {} if cache is None else cache
    if cell_major:
        flat = np.moveaxis(values, 2, -1).reshape(n * b, -1, c)  # a view: the memory is in this order
    else:
        flat = np.ascontiguousarray(values).reshape(n * b, c, -1)
    out = np.zeros((n * b, weight.shape[1], rows, cols), dtype=values.dtype)
    overlap = windows is None or windows[0] != windows[1]
    step = _shared_step(windows, values.shape[4]) if windows is not None else None
    w = np.ascontiguousarray(weight, dtype=values.dtype)
    direct = cell_major and step is not None  # channels-last cells straight into the output, no transposition
    if direct:  # unless the kernels placed in every window footprint would not stay in cache
        (height, width), _ = windows
        direct = c * w.shape[1] * height * width * (height + kh - 1) * (width + kw - 1) <= PATCH_VALUES
    kernel = _kernels()["cells" if direct else "channels"]
    if direct:  # each switch as its offset in its window (and the windows sharing it): 8x less to read
        h2, w2 = values.shape[3:]
        starts = window_codes(switches, size, windows, cache).reshape(b, h2 * w2, c)
        (height, width), (row_stride, col_stride) = windows
        geometry = np.array([w2, row_stride * cols, col_stride, cols, step, height + kh - 1, width + kw - 1],
                            dtype=np.int64)  # fmt: skip
        w = _patch_weights(w, (height, width))
    else:  # each switch as its position in the padded plane
        starts, geometry = _starts(switches, size, cols, cache), np.zeros(7, dtype=np.int64)
    outs = [out] + [np.zeros_like(out) for _ in range(PARTS - 1)]
    jobs = [(k, i, i + 1, k, PARTS) for i in range(n * b) for k in range(PARTS)]  # part k of item i
    args = (flat, cell_major, starts, alpha, beta, w)
    in_threads([(kernel, *args, outs[k], b, overlap, *span, geometry) for k, *span in jobs], threads)
    for extra in outs[1:]:  # each item's parts, summed in a fixed order whatever the batch or the thread count
        out += extra
    out = out.reshape(n, b, *out.shape[1:])
    in_rows, in_cols = rows - 2 * padding[0], cols - 2 * padding[1]  # the convolution's input size
    return out[..., padding[0] : padding[0] + in_rows, padding[1] : padding[1] + in_cols]


def unpool_chain(values: np.ndarray, switches, size: tuple[int, int], window: tuple[int, int], chain: list, *,
                 threads: int = 1, cache: dict | None = None) -> np.ndarray:  # fmt: skip
    """Unpool pooled signals through the switches of windows that tile the input and pass the channel-wise ops
    below the pool, in one pass that writes each output cell once, channels innermost.

    Parameters
    ----------
    values : np.ndarray, shape (N, B, C, rows_pooled, cols_pooled), float32 or float64
        Pooled signals, in either layout.
    switches : array, shape (B, C, rows_pooled, cols_pooled), int
        Each pooled cell's arg-max as a flat position in the pool input's (rows * columns) plane.
    size : (rows, columns)
        The pool input's spatial size; cells past the last whole window get 0.
    window : (rows, columns)
        The windows' size, equal to their stride.
    chain : list of (kind, gains)
        The ops between the pool and the tensor below (:func:`chain_slopes`).
    threads : int
        Threads the output rows are split over.
    cache : dict, optional
        Keeps the switches' offsets inside their windows for the next call with the same ``switches`` object.

    Returns
    -------
    np.ndarray, shape (N, B, rows, columns, C)
        The signal below the chain, channels innermost (each output cell is written by one thread only, so the
        result does not depend on the thread count).
    """
    n, b, c, h2, w2 = values.shape
    kh, kw = window
    alpha, beta = (s.astype(values.dtype) for s in chain_slopes(chain, c))
    codes = window_codes(switches, size, (window, window), {} if cache is None else cache)
    cells = values.reshape(n * b, c, h2, w2)  # either layout, read as it is
    out = np.empty((n * b, *size, c), dtype=values.dtype)
    out[:, h2 * kh :] = 0  # cells in no window
    out[:, : h2 * kh, w2 * kw :] = 0
    kernel = _kernels()["chain"]
    bounds = np.linspace(0, n * b * h2, max(1, min(threads, n * b * h2)) + 1).round().astype(int)
    in_threads(
        [
            (kernel, cells, codes, alpha, beta, out, kh, kw, b, int(lo), int(hi))
            for lo, hi in zip(bounds[:-1], bounds[1:])
        ],
        threads,
    )  # each thread writes its own output rows
    return out.reshape(n, b, *size, c)


def slice_transpose(values: np.ndarray, kernels: np.ndarray, padding: tuple[int, int], *,
                    threads: int = 1) -> np.ndarray:  # fmt: skip
    """A channel slice through the transpose of a stride-1 convolution with one input channel (a first layer):
    each signal by its own feature's flipped kernel, as the grouped convolution that torch's oneDNN runs for it,
    bit for bit (per output value, from 0, one fused multiply-add per tap in row-major order), in an eighth of its
    time (2.5 -> 0.3 ms a 30-s feature of the Choi demo model: oneDNN ran that one-channel convolution at about
    1.2 G multiply-adds per second).

    Parameters
    ----------
    values : np.ndarray, shape (K, B, 1, rows, columns), float32 or float64
        Signal k at the convolution's output, in its feature's channel only.
    kernels : np.ndarray, shape (K, kh, kw)
        Each feature's kernel into the input channel, flipped along both axes.
    padding : (rows, columns)
        The flipped kernel's zero padding (kernel size - 1 - the convolution's padding).

    Returns
    -------
    np.ndarray, shape (K, B, 1, rows + 2 * pad_rows - kh + 1, columns + 2 * pad_columns - kw + 1)
    """
    k, b, _, rows, cols = values.shape
    kh, kw = kernels.shape[1:]
    out = np.empty((k, b, 1, rows + 2 * padding[0] - kh + 1, cols + 2 * padding[1] - kw + 1), dtype=values.dtype)
    flat, taps = values.reshape(k * b, rows, cols), np.ascontiguousarray(kernels, dtype=values.dtype)
    kernel, items = _kernels()["slice"], out.reshape(k * b, *out.shape[3:])
    calls = [(kernel, flat, taps, items, b, padding[0], padding[1], i, i + 1) for i in range(k * b)]
    in_threads(calls, threads)
    return out


def in_threads(calls: list[tuple], threads: int) -> None:
    """Run each ``(kernel, *args)`` of ``calls`` over at most ``threads`` threads: the calling one and helpers kept
    between calls (the kernels release the GIL). Thread t runs calls t, t + threads, ... in turn, so the split
    does not depend on timing."""
    global _POOL, _POOL_SIZE
    threads = max(1, min(threads, len(calls)))
    if threads > 1:
        with _POOL_LOCK:
            if _POOL_SIZE < threads - 1:
                _POOL, _POOL_SIZE = ThreadPoolExecutor(threads - 1, thread_name_prefix="auralise-fused"), threads - 1
            pool = _POOL
        helpers = [pool.submit(_run_calls, calls[t::threads]) for t in range(1, threads)]
    _run_calls(calls[::threads])
    if threads > 1:
        for job in helpers:
            job.result()


def _run_calls(calls: list[tuple]) -> None:
    for kernel, *args in calls:
        kernel(*args)


def window_codes(switches, size: tuple[int, int], windows: tuple, cache: dict) -> np.ndarray:
    """Each switch's offset in its window, ``dy * kernel_columns + dx``, (B, rows_pooled, cols_pooled, C) uint8;
    where windows overlap (:func:`_shared_step`), plus 64 where the next window's switch is on the same cell and
    128 where the previous window's is."""
    key = ("fused-codes", id(switches), windows)
    if key not in cache:
        (kh, kw), (sh, sw) = windows
        s = np.asarray(switches, dtype=np.int64)
        codes = np.empty((s.shape[0], s.shape[2], s.shape[3], s.shape[1]), dtype=np.uint8)
        shared = 2 if kh > sh else 3 if kw > sw else 0  # the axis along which windows overlap, if any
        _kernels()["codes"](s, size[1], kw, sh, sw, shared, codes)
        cache[key] = (switches, codes)
    return cache[key][1]  # the switches are kept alive with their codes, so their id stays theirs


def _shared_step(windows: tuple, pooled_cols: int) -> int | None:
    """How far apart, in pooled cells, two windows sharing a cell are: 0 when windows do not overlap, the pooled
    row's length when they overlap along rows only and a cell is in at most two, 1 along columns; None for any other
    overlap (the channel-by-channel kernel sums those), or offsets that do not fit the codes."""
    (kh, kw), (sh, sw) = windows
    if kh * kw > 64:
        return None
    if kh <= sh and kw <= sw:
        return 0
    if kw <= sw and kh <= 2 * sh:
        return pooled_cols
    if kh <= sh and kw <= 2 * sw:
        return 1
    return None


def _patch_weights(weight: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Each channel's kernel placed at each switch offset in a window's footprint, zeros around: (C, kh * kw,
    C_in * F), ``F = (kh + weight rows - 1) * (kw + weight columns - 1)``."""
    c, c_in, rows, cols = weight.shape
    kh, kw = window
    out = np.zeros((c, kh * kw, c_in, kh + rows - 1, kw + cols - 1), dtype=weight.dtype)
    for dy in range(kh):
        for dx in range(kw):
            out[:, dy * kw + dx, :, dy : dy + rows, dx : dx + cols] = weight
    return out.reshape(c, kh * kw, -1)


def _channels_last(values: np.ndarray) -> bool:
    """Whether (N, B, C, h, w) has its channels innermost in memory."""
    return values.ndim == 5 and values.shape[2] > 1 and values.strides[2] == values.itemsize


def _starts(switches, size: tuple[int, int], cols: int, cache: dict) -> np.ndarray:
    """The switches as positions in the padded plane, (B, C, Q) int64."""
    key = ("fused-starts", id(switches), cols)
    if key not in cache:
        s = np.asarray(switches, dtype=np.int64).reshape(*switches.shape[:2], -1)
        starts = np.empty_like(s)
        _kernels()["starts"](s.reshape(-1), size[1], cols, starts.reshape(-1))
        cache[key] = (switches, starts)
    return cache[key][1]  # the switches are kept alive with their positions, so their id stays theirs


def _kernels() -> dict:
    global _KERNELS
    if _KERNELS is None:
        try:
            import numba
        except ImportError:  # pragma: no cover - numba comes with librosa
            _KERNELS = {}
            return _KERNELS
        global _add_3x3
        jit = numba.njit(nogil=True, cache=True)
        _add_3x3 = jit(_add_3x3)  # called by the kernel, so compiled first
        _KERNELS = {"channels": jit(_unpool_transpose), "cells": jit(_cells_unpool_transpose),
                    "chain": jit(_unpool_chain), "codes": jit(_window_codes),
                    "starts": jit(_padded_positions),
                    "slice": numba.njit(nogil=True, cache=True, fastmath={"contract"})(_slice_transpose)}  # fmt: skip
        # No kernel with fastmath may call another jitted function: numba compiles a callee first reached from such
        # a caller with the caller's flags and keeps that version for every caller, so sums would round by the
        # order of first calls.
    return _KERNELS


def _unpool_transpose(values, cell_major, starts, alpha, beta, weight, out, batch, overlap, first, last, part, parts,
                      geometry):  # fmt: skip
    """Items ``first:last`` of (NB, C, Q) signals, or (NB, Q, C) ``cell_major`` ones (transposed item by item in
    cache-sized blocks), channel by channel: the value at each touched cell (summed in a scratch plane where
    windows overlap), through the chain, then each kernel tap's contribution of the non-zero cells (compacted
    first) added into the padded output (NB, C_in, rows, cols)."""
    channels = weight.shape[0]
    cells = values.shape[1] if cell_major else values.shape[2]
    local = np.empty((channels, cells) if cell_major else (0, 0), dtype=values.dtype)
    c_in, kh, kw = weight.shape[1], weight.shape[2], weight.shape[3]
    cols = out.shape[3]
    plane = out.shape[2] * cols
    scratch = np.zeros(plane if overlap else 0, dtype=values.dtype)
    where = np.empty(cells, dtype=np.int64)
    value = np.empty(cells, dtype=values.dtype)
    zero = values.dtype.type(0)
    for i in range(first, last):
        b = i % batch
        o = out[i].reshape(c_in * plane)
        if cell_major:
            for q0 in range(0, cells, 16):
                for c in range(part, channels, parts):
                    for q in range(q0, min(q0 + 16, cells)):
                        local[c, q] = values[i, q, c]
        for c in range(part, channels, parts):
            s = starts[b, c]
            if overlap:  # each cell taken once: a later window with the same switch finds 0
                for q in range(cells):
                    scratch[s[q]] += local[c, q] if cell_major else values[i, c, q]
                for q in range(cells):
                    value[q] = scratch[s[q]]
                    scratch[s[q]] = 0
            elif cell_major:
                value[:] = local[c]
            else:
                value[:] = values[i, c]
            a, m = alpha[c], beta[c]
            n = 0
            for q in range(cells):  # through the chain, keeping the non-zero cells without a branch
                u = a * max(value[q], zero) + m * min(value[q], zero)
                where[n] = s[q]
                value[n] = u
                n += u != 0
            for ci in range(c_in):
                if kh == 3 and kw == 3:  # the common kernel, its taps in registers
                    _add_3x3(o, where, value, n, weight[c, ci], ci * plane, cols)
                    continue
                for ky in range(kh):
                    for kx in range(kw):
                        w = weight[c, ci, ky, kx]
                        offset = ci * plane + ky * cols + kx
                        for j in range(n):
                            o[where[j] + offset] += w * value[j]


def _add_3x3(o, where, value, n, w, base, cols):  # pragma: no cover - compiled by numba
    """``o[where[j] + base + ky * cols + kx] += w[ky, kx] * value[j]`` for the first n cells, a 3x3 kernel."""
    w0, w1, w2, w3, w4, w5, w6, w7, w8 = w[0, 0], w[0, 1], w[0, 2], w[1, 0], w[1, 1], w[1, 2], w[2, 0], w[2, 1], w[2, 2]
    for j in range(n):
        r, v = where[j] + base, value[j]
        o[r] += w0 * v
        o[r + 1] += w1 * v
        o[r + 2] += w2 * v
        r += cols
        o[r] += w3 * v
        o[r + 1] += w4 * v
        o[r + 2] += w5 * v
        r += cols
        o[r] += w6 * v
        o[r + 1] += w7 * v
        o[r + 2] += w8 * v


def _cells_unpool_transpose(values, cell_major, codes, alpha, beta, patches, out, batch, overlap, first, last, part,
                            parts, geometry):  # fmt: skip
    """Items ``first:last`` of (NB, Q, C) channels-last signals, cell by cell: the chain on all of a cell's
    channels at once; a cell with any non-zero value reads its footprint from the padded output (NB, C_in, rows,
    cols) into a patch, adds each non-zero channel's ``patches`` row (C, codes, C_in * F: its kernel placed at its
    switch's offset, zeros around) times its value, in channel order, and writes the patch back. Each output value
    thus gets the same terms in the same order as tap-by-tap adds would give it (the zeros add nothing), with one
    vector operation per channel instead of a scattered add per tap. ``codes`` (B, Q, C) are the switches' offsets in
    their windows (+64: add the value of the window ``step`` cells on, which has the same switch; +128: that value was
    taken by the window before), and ``geometry`` (pooled columns, a pooled row's stride in the output, a pooled
    column's stride, the output's row stride, ``step``, the footprint's rows and columns). Mostly zeros after a
    rectifier (96 % of the values, 90 % of the cells on the Choi demo model), so whole cells are skipped first."""
    items, cells, channels = values.shape
    w2, row_step, col_step, cols, step = geometry[0], geometry[1], geometry[2], geometry[3], geometry[4]
    rows_f, cols_f = geometry[5], geometry[6]
    c_in, plane, size = out.shape[1], out.shape[2] * geometry[3], patches.shape[2]
    zero = values.dtype.type(0)
    u = np.empty(channels, dtype=values.dtype)
    live = np.empty(channels, dtype=np.int64)
    patch = np.empty(size, dtype=values.dtype)
    places = np.empty(size, dtype=np.int64)  # a patch value's place in the padded plane, from the window's corner
    for t in range(size):
        ci, a, b2 = t // (rows_f * cols_f), (t // cols_f) % rows_f, t % cols_f
        places[t] = ci * plane + a * cols + b2
    for i in range(first, last):
        b = i % batch
        o = out[i].reshape(c_in * plane)
        for row in range(part, cells // w2, parts):  # pooled rows in turn: each part gets dense and sparse rows alike
            for q in range(row * w2, (row + 1) * w2):
                v, code = values[i, q], codes[b, q]
                if step == 0:  # windows apart: every code < 64 (no test in the loop, which LLVM then vectorises)
                    for c in range(channels):
                        x = v[c]
                        u[c] = alpha[c] * max(x, zero) + beta[c] * min(x, zero)
                elif q + step >= cells:
                    for c in range(channels):  # the chain, vectorised over the channels
                        x = v[c] if code[c] < 128 else zero
                        u[c] = alpha[c] * max(x, zero) + beta[c] * min(x, zero)
                else:
                    after = values[i, q + step]
                    for c in range(channels):  # a switch shared with the next window: both values, then the chain
                        x = v[c] + after[c] if 64 <= code[c] < 128 else v[c] if code[c] < 128 else zero
                        u[c] = alpha[c] * max(x, zero) + beta[c] * min(x, zero)
                n = 0
                for c in range(channels):  # a count first (no stores): most cells stop here
                    n += u[c] != zero
                if n == 0:
                    continue
                n = 0
                for c in range(channels):  # the non-zero channels, in order, without a branch
                    live[n] = c
                    n += u[c] != zero
                corner = row * row_step + (q - row * w2) * col_step
                for t in range(size):
                    patch[t] = o[corner + places[t]]
                for k in range(n):
                    c = live[k]
                    uc, w = u[c], patches[c, code[c] & 63]
                    for t in range(size):
                        patch[t] += w[t] * uc
                for t in range(size):
                    o[corner + places[t]] = patch[t]


def _unpool_chain(values, codes, alpha, beta, out, kh, kw, batch, first, last):  # pragma: no cover - numba
    """Pooled rows ``first:last`` (over items x pooled rows) of (NB, C, h2, w2) ``values``, in either layout: each
    window's cells get the chain's image of its value where the switch's offset ``codes`` (B, h2, w2, C) is theirs,
    0 elsewhere, in ``out`` (NB, rows, columns, C)."""
    channels, h2, w2 = values.shape[1], values.shape[2], values.shape[3]
    zero = values.dtype.type(0)
    u = np.empty(channels, dtype=values.dtype)
    for r in range(first, last):
        item, i = r // h2, r % h2
        b = item % batch
        for j in range(w2):
            for c in range(channels):
                v = values[item, c, i, j]
                u[c] = alpha[c] * max(v, zero) + beta[c] * min(v, zero)
            code = codes[b, i, j]
            for dy in range(kh):
                for dx in range(kw):
                    o, k = out[item, i * kh + dy, j * kw + dx], dy * kw + dx
                    for c in range(channels):
                        o[c] = u[c] if code[c] == k else zero


def _slice_transpose(values, taps, out, batch, pad_y, pad_x, first, last):  # pragma: no cover - compiled by numba
    """Items ``first:last`` of (NB, rows, columns) ``values`` by item i's kernel ``taps[i // batch]`` (kh, kw),
    zero-padded by (pad_y, pad_x), into ``out`` (NB, rows_out, columns_out): each output value from 0, one fused
    multiply-add per tap in row-major tap order (``contract``; the taps outside the signal add nothing), a row of
    outputs at a time."""
    rows, cols = values.shape[1], values.shape[2]
    kh, kw = taps.shape[1], taps.shape[2]
    zero = values.dtype.type(0)
    for i in range(first, last):
        w, o = taps[i // batch], out[i]
        for y in range(o.shape[0]):
            row = o[y]
            row[:] = zero
            for ky in range(kh):
                yy = y + ky - pad_y
                if yy < 0 or yy >= rows:
                    continue
                for kx in range(kw):
                    wt = w[ky, kx]
                    lo, hi = max(0, pad_x - kx), min(o.shape[1], cols + pad_x - kx)
                    dst, src = row[lo:hi], values[i, yy, lo + kx - pad_x : hi + kx - pad_x]
                    for t in range(hi - lo):  # slices from 0: LLVM vectorises this (8 lanes), not the offset form
                        dst[t] = dst[t] + src[t] * wt


def _window_codes(s, columns, kw, sh, sw, shared, codes):  # pragma: no cover - compiled by numba
    """:func:`window_codes` of switches ``s`` (B, C, h2, w2), flat positions in planes ``columns`` wide, into
    ``codes`` (B, h2, w2, C); ``shared`` is the axis (2 or 3) along which windows overlap, 0 if none."""
    batch, channels, h2, w2 = s.shape
    for b in range(batch):
        for i in range(h2):
            for j in range(w2):
                for c in range(channels):
                    v = s[b, c, i, j]
                    code = (v // columns - i * sh) * kw + (v % columns - j * sw)
                    if shared == 2:
                        code += 64 * (i + 1 < h2 and s[b, c, min(i + 1, h2 - 1), j] == v)
                        code += 128 * (i > 0 and s[b, c, max(i - 1, 0), j] == v)
                    elif shared == 3:
                        code += 64 * (j + 1 < w2 and s[b, c, i, min(j + 1, w2 - 1)] == v)
                        code += 128 * (j > 0 and s[b, c, i, max(j - 1, 0)] == v)
                    codes[b, i, j, c] = code


def _padded_positions(s, columns, cols, out):  # pragma: no cover - compiled by numba
    """Flat positions ``s`` in planes ``columns`` wide as positions in planes ``cols`` wide, into ``out``."""
    for i in range(s.shape[0]):
        out[i] = (s[i] // columns) * cols + s[i] % columns
