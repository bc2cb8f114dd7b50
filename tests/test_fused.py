"""The fused unpool + transposed-convolution step (auralise.engine.fused) against slow references written here, and the
whole projection with and without it on real audio through the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auralise.engine import fused, fused_wide

pytestmark = pytest.mark.skipif(not fused.available(), reason="numba is not installed (it comes with librosa)")

REPO = Path(__file__).resolve().parents[1]


def as_pair(n):
    return tuple(n) if isinstance(n, tuple) else (n, n)


def reference(g, switches, size, chain, weight, padding):
    """Scatter-add unpooling, each op of the chain in turn, then torch's transposed convolution: (N, B, C_in, ...)."""
    n, b, c = g.shape[:3]
    flat = g.reshape(n * b, c, -1).double()
    u = torch.zeros(n * b, c, size[0] * size[1], dtype=torch.float64)
    u.scatter_add_(2, switches.reshape(1, b, c, -1).expand(n, -1, -1, -1).reshape(n * b, c, -1), flat)
    u = u.reshape(n * b, c, *size)
    for kind, gains in chain:
        u = torch.relu(u) if kind == "rectify" else u * torch.as_tensor(gains, dtype=u.dtype).view(1, -1, 1, 1)
    out = torch.nn.functional.conv_transpose2d(u, weight.double(), padding=padding)
    return out.reshape(n, b, *out.shape[1:])


CASES = [  # channels, inputs, size, kernel, padding, pool, stride, chain (gains by channel count), batch
    (4, 1, (9, 13), 3, 1, 2, 2, ["rectify"], 1),
    (4, 2, (9, 13), 3, 0, 2, 2, ["rectify"], 2),
    (5, 1, (10, 12), 3, 2, (2, 3), (2, 3), ["gain", "rectify"], 1),
    (4, 1, (10, 12), 3, 1, 2, 2, ["rectify", "gain", "rectify"], 1),
    (3, 1, (11, 17), 5, 2, (4, 1), (2, 2), ["gain", "rectify"], 1),  # overlapping windows (musicnn's VGG)
    (16, 1, (40, 24), 3, 1, (4, 1), (2, 2), ["rectify", "gain", "rectify"], 2),  # the same, many shared switches
    (8, 1, (21, 30), 3, 1, (1, 4), (2, 2), ["gain", "rectify"], 1),  # overlapping along columns
    (3, 2, (12, 9), 3, 1, 3, 2, ["rectify", "gain"], 2),  # overlapping along both (summed channel by channel)
    (4, 1, (14, 17), 3, 1, 2, 3, ["rectify"], 1),  # gaps between windows
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_matches_the_unfused_reference(case, channels_last) -> None:
    c, c_in, size, k, pad, pool, stride, kinds, b = case
    gen = torch.Generator().manual_seed(2 * CASES.index(case) + channels_last)
    x = torch.randn(b, c, *size, generator=gen)
    pooled, switches = torch.nn.functional.max_pool2d(x, pool, stride, return_indices=True)
    weight = torch.randn(c, c_in, k, k, generator=gen)
    g = torch.randn(3, b, c, *pooled.shape[2:], generator=gen)
    chain = [(kind, torch.randn(c, generator=gen).numpy() if kind == "gain" else None) for kind in kinds]
    values = g
    if channels_last:
        values = g.reshape(3 * b, c, *pooled.shape[2:]).contiguous(memory_format=torch.channels_last).view(g.shape)
    out = fused.unpool_transpose(values.numpy(), switches, size, chain, weight.numpy(), (pad, pad),
                                 windows=(as_pair(pool), as_pair(stride)), threads=2)  # fmt: skip
    ref = reference(g, switches, size, chain, weight, (pad, pad))
    if case[1] == 1 and pool in ((4, 1), (1, 4)) and c > 4:  # the windows do share switches here
        shared = (torch.diff(switches, dim=2 if pool == (4, 1) else 3) == 0).sum()
        assert int(shared) > 10
    assert out.shape == tuple(ref.shape)
    assert np.max(np.abs(out - ref.numpy())) <= 1e-5 * float(ref.abs().max())
    general = fused.unpool_transpose(values.numpy(), switches, size, chain, weight.numpy(), (pad, pad), threads=2)
    assert np.max(np.abs(general - ref.numpy())) <= 1e-5 * float(ref.abs().max())  # windows not described


@pytest.mark.parametrize("channels_last", [False, True])
def test_one_item_is_split_in_parts_with_the_same_result(channels_last) -> None:
    """Each item is split in fused.PARTS parts, each into its own plane: the same result as the slow reference, and
    bit for bit the same with 1 thread as with 2 or 3, and alone as in a batch."""
    c, c_in, size = 6, 1, (14, 22)
    gen = torch.Generator().manual_seed(7)
    pooled, switches = torch.nn.functional.max_pool2d(
        torch.randn(1, c, *size, generator=gen), 2, 2, return_indices=True
    )
    weight, g = torch.randn(c, c_in, 3, 3, generator=gen), torch.randn(1, 1, c, *pooled.shape[2:], generator=gen)
    values = (
        g.reshape(1, c, *pooled.shape[2:]).contiguous(memory_format=torch.channels_last).view(g.shape)
        if channels_last
        else g
    )
    chain = [("rectify", None)]
    tiles = ((2, 2), (2, 2))
    outs = [fused.unpool_transpose(values.numpy(), switches, size, chain, weight.numpy(), (1, 1), windows=tiles,
                                   threads=t) for t in (1, 2, 3)]  # fmt: skip
    ref = reference(g, switches, size, chain, weight, (1, 1)).numpy()
    assert np.max(np.abs(outs[1] - ref)) <= 1e-5 * np.abs(ref).max()
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2])
    batch = torch.cat([g, torch.randn(2, *g.shape[1:], generator=gen)])
    if channels_last:
        batch = batch.reshape(3, c, *pooled.shape[2:]).contiguous(memory_format=torch.channels_last).view(batch.shape)
    together = fused.unpool_transpose(batch.numpy(), switches, size, chain, weight.numpy(), (1, 1), windows=tiles,
                                      threads=2)  # fmt: skip
    assert np.array_equal(together[:1], outs[1])


def taps_in_cell_order(g, switches, size, chain, weight, windows, padding) -> np.ndarray:
    """The cell-by-cell kernel's sums written tap by tap in float32: per part (pooled rows in turn) its own plane;
    cells in order, each cell's channels in order, each non-zero value times each tap added into the plane; a switch
    shared with the next window takes both values, the later window then adds nothing; the planes summed in order.
    (N, B, C_in, ...)."""
    n, b, c, h2, w2 = g.shape
    (kh, kw), (sh, sw) = windows
    c_in, k_rows, k_cols = weight.shape[1:]
    alpha, beta = (a.astype(np.float32) for a in fused.chain_slopes(chain, c))
    s, v, w = switches.numpy(), g.numpy().astype(np.float32), weight.numpy()
    rows, cols = size[0] + k_rows - 1, size[1] + k_cols - 1
    planes = np.zeros((fused.PARTS, n, b, c_in, rows, cols), dtype=np.float32)
    step = (1, 0) if kh > sh else (0, 1)  # where the window sharing a switch is
    for part in range(fused.PARTS):
        for i in range(n):
            for bb in range(b):
                for r in range(part, h2, fused.PARTS):
                    for q in range(w2):
                        for ch in range(c):
                            nr, nq, pr, pq = r + step[0], q + step[1], r - step[0], q - step[1]
                            if pr >= 0 and pq >= 0 and s[bb, ch, pr, pq] == s[bb, ch, r, q]:
                                continue  # taken by the window before
                            x = v[i, bb, ch, r, q]
                            if nr < h2 and nq < w2 and s[bb, ch, nr, nq] == s[bb, ch, r, q]:
                                x = np.float32(x + v[i, bb, ch, nr, nq])
                            u = np.float32(alpha[ch] * max(x, 0) + beta[ch] * min(x, 0))
                            if u == 0:
                                continue
                            y, x0 = divmod(int(s[bb, ch, r, q]), size[1])
                            for ci in range(c_in):
                                for ky in range(k_rows):
                                    for kx in range(k_cols):
                                        o = planes[part, i, bb, ci]
                                        o[y + ky, x0 + kx] = np.float32(o[y + ky, x0 + kx] + w[ch, ci, ky, kx] * u)
    out = planes[0]
    for extra in planes[1:]:
        out = out + extra
    return out[..., padding[0] : rows - padding[0], padding[1] : cols - padding[1]]


@pytest.mark.parametrize(
    "c, c_in, size, pool, stride",
    [(6, 1, (10, 13), 2, 2), (5, 2, (9, 12), (2, 3), (2, 3)), (8, 1, (16, 7), (4, 1), (2, 2)),
     (6, 1, (7, 16), (1, 4), (2, 2)), (4, 1, (14, 17), 2, 3)],
)  # fmt: skip
def test_cells_kernel_adds_the_taps_in_cell_and_channel_order(c, c_in, size, pool, stride) -> None:
    """The cell-by-cell kernel (channels-last signals) is bit for bit the tap-by-tap sum in cell and channel order,
    written here in float32: its patches of kernels placed around each switch change no rounding."""
    gen = torch.Generator().manual_seed(c * 10 + c_in)
    pooled, switches = torch.nn.functional.max_pool2d(torch.randn(2, c, *size, generator=gen), pool, stride,
                                                      return_indices=True)  # fmt: skip
    weight = torch.randn(c, c_in, 3, 3, generator=gen)
    g = torch.randn(2, 2, c, *pooled.shape[2:], generator=gen)
    chain = [("gain", torch.randn(c, generator=gen).numpy()), ("rectify", None)]
    values = g.reshape(4, c, *pooled.shape[2:]).contiguous(memory_format=torch.channels_last).view(g.shape)
    windows = (as_pair(pool), as_pair(stride))
    out = fused.unpool_transpose(values.numpy(), switches, size, chain, weight.numpy(), (1, 1), windows=windows,
                                 threads=2)  # fmt: skip
    assert np.array_equal(out, taps_in_cell_order(g, switches, size, chain, weight, windows, (1, 1)))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize(
    "window, size, kinds",
    [((2, 2), (10, 13), ["rectify"]), ((2, 3), (9, 12), ["rectify", "gain"]), ((3, 1), (11, 4), ["gain", "rectify"])],
)
def test_unpool_chain_matches_the_scatter_and_the_ops(window, size, kinds, channels_last) -> None:
    """Unpooling through tiling windows and the channel-wise ops in one pass, channels innermost: equal to
    max_unpool2d followed by each op in turn, including the rows and columns past the last whole window (0)."""
    c, b, n = 5, 2, 3
    gen = torch.Generator().manual_seed(len(kinds) + 10 * window[1] + channels_last)
    x = torch.randn(b, c, *size, generator=gen)
    pooled, switches = torch.nn.functional.max_pool2d(x, window, window, return_indices=True)
    g = torch.randn(n, b, c, *pooled.shape[2:], generator=gen, dtype=torch.float64)
    chain = [(kind, torch.randn(c, generator=gen).numpy() if kind == "gain" else None) for kind in kinds]
    values = g
    if channels_last:
        values = g.reshape(n * b, c, *pooled.shape[2:]).contiguous(memory_format=torch.channels_last).view(g.shape)
    out = fused.unpool_chain(values.numpy(), switches, size, window, chain, threads=2)
    u = torch.nn.functional.max_unpool2d(g.reshape(n * b, c, *pooled.shape[2:]), switches.repeat(n, 1, 1, 1), window,
                                         window, output_size=size)  # fmt: skip
    for kind, gains in chain:
        u = torch.relu(u) if kind == "rectify" else u * torch.as_tensor(gains, dtype=u.dtype).view(1, -1, 1, 1)
    assert out.shape == (n, b, *size, c)
    assert np.array_equal(np.moveaxis(out, -1, 2), u.reshape(n, b, c, *size).numpy())


WIDE_CASES = [  # channels, inputs, size, kernel, padding, pool, stride, chain, batch
    (6, 8, (10, 14), 3, 1, 2, 2, ["rectify"], 1),
    (5, 7, (24, 13), 3, 0, 2, 2, ["gain", "rectify"], 2),  # no padding; two bands of rows and the row between
    (4, 16, (21, 18), (5, 3), (2, 1), (2, 3), (2, 3), ["rectify", "gain"], 1),  # two rows between the bands
    (7, 9, (30, 11), 3, 2, 2, 3, ["rectify"], 2),  # gaps between windows; padding 2 (outputs beyond the switches)
    (3, 5, (5, 9), 3, 1, 2, 2, ["rectify", "gain", "rectify"], 1),  # too few rows for two bands
]


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("case", WIDE_CASES)
def test_wide_kernel_matches_the_unfused_reference(monkeypatch, case, channels_last) -> None:
    """Unpooling, the chain and the transpose of a convolution with many inputs, over the non-zero values only:
    the scatter, each op and torch's transposed convolution in float64, to float32 rounding; into output memory
    that held anything before (NaN here: every output row is cleared by the kernel)."""
    c, c_in, size, k, pad, pool, stride, kinds, b = case
    gen = torch.Generator().manual_seed(3 * WIDE_CASES.index(case) + channels_last)
    kernel, padding = as_pair(k), as_pair(pad)
    pooled, switches = torch.nn.functional.max_pool2d(torch.randn(b, c, *size, generator=gen), pool, stride,
                                                      return_indices=True)  # fmt: skip
    weight = torch.randn(c, c_in, *kernel, generator=gen)
    g = torch.randn(3, b, c, *pooled.shape[2:], generator=gen)
    chain = [(kind, torch.randn(c, generator=gen).numpy() if kind == "gain" else None) for kind in kinds]
    values = g
    if channels_last:
        values = g.reshape(3 * b, c, *pooled.shape[2:]).contiguous(memory_format=torch.channels_last).view(g.shape)
    monkeypatch.setattr(fused_wide, "_uncleared", lambda shape, dtype: np.full(shape, np.nan, dtype=dtype))
    out = fused_wide.unpool_transpose_wide(values.numpy(), switches, size, (as_pair(pool), as_pair(stride)), chain,
                                      weight.numpy(), padding, threads=2)  # fmt: skip
    ref = reference(g, switches, size, chain, weight, padding)
    assert out.shape == (*ref.shape[:2], *ref.shape[3:], c_in)  # channels innermost
    assert np.max(np.abs(np.moveaxis(out, -1, 2) - ref.numpy())) <= 1e-5 * float(ref.abs().max())


def test_wide_kernel_result_depends_on_neither_threads_nor_batch() -> None:
    """Bit for bit the same with 1, 2 or 3 threads, and for an item alone as in a batch."""
    c, c_in, size = 8, 12, (26, 20)
    gen = torch.Generator().manual_seed(11)
    pooled, switches = torch.nn.functional.max_pool2d(torch.randn(1, c, *size, generator=gen), 2, 2,
                                                      return_indices=True)  # fmt: skip
    weight, g = torch.randn(c, c_in, 3, 3, generator=gen).numpy(), torch.randn(3, 1, c, *pooled.shape[2:])
    args = (switches, size, ((2, 2), (2, 2)), [("rectify", None)], weight, (1, 1))
    outs = [fused_wide.unpool_transpose_wide(g.numpy(), *args, threads=t) for t in (1, 2, 3)]
    assert np.array_equal(outs[0], outs[1]) and np.array_equal(outs[1], outs[2])
    alone = fused_wide.unpool_transpose_wide(g[1:2].numpy(), *args, threads=2)
    assert np.array_equal(alone[0], outs[1][1])


def test_wide_kernel_takes_channel_slices_as_their_dense_signals() -> None:
    """A channel slice (each feature's signal in one channel, as a seed starts) gives bit for bit what the same
    signal written into its channel of a dense zero signal gives."""
    c, c_in, size, b = 6, 10, (18, 14), 2
    gen = torch.Generator().manual_seed(5)
    pooled, switches = torch.nn.functional.max_pool2d(torch.randn(b, c, *size, generator=gen), 2, 2,
                                                      return_indices=True)  # fmt: skip
    weight = torch.randn(c, c_in, 3, 3, generator=gen).numpy()
    chain = [("gain", torch.rand(c, generator=gen).numpy() + 0.5), ("rectify", None)]
    picks = np.array([4, 0, 4])
    values = torch.randn(3, b, 1, *pooled.shape[2:], generator=gen)
    dense = torch.zeros(3, b, c, *pooled.shape[2:])
    dense[torch.arange(3), :, torch.as_tensor(picks)] = values[:, :, 0]
    args = (switches, size, ((2, 2), (2, 2)), chain, weight, (1, 1))
    sliced = fused_wide.unpool_transpose_wide(values.numpy(), *args, threads=2, channels=picks)
    assert np.abs(sliced).max() > 0
    assert np.array_equal(sliced, fused_wide.unpool_transpose_wide(dense.numpy(), *args, threads=2))


@pytest.mark.parametrize("size, kernel, padding", [((37, 53), 3, 1), ((20, 31), (5, 3), (2, 0)), ((9, 12), 3, 0)])
def test_slice_transpose_is_the_grouped_convolution_it_replaces(size, kernel, padding) -> None:
    """A first layer's channel slice through each feature's flipped kernel: bit for bit torch's grouped convolution
    (oneDNN: per output, from 0, one fused multiply-add per tap in row-major order), and a float64 reference to
    float32 rounding; mostly zeros, as an unpooled and rectified signal is."""
    gen = torch.Generator().manual_seed(sum(size))
    kh, kw = as_pair(kernel)
    values = torch.relu(torch.randn(3, 2, 1, *size, generator=gen)) * (torch.rand(3, 2, 1, *size, generator=gen) < 0.3)
    kernels = torch.randn(3, 1, kh, kw, generator=gen)
    pad = as_pair(padding)
    out = fused.slice_transpose(values.numpy(), kernels[:, 0].numpy(), pad, threads=2)
    grouped = torch.nn.functional.conv2d(values.reshape(3, 2, *size).movedim(0, 1), kernels, padding=pad, groups=3)
    want = grouped.movedim(1, 0).unsqueeze(2)
    assert out.shape == tuple(want.shape)
    assert np.array_equal(out.view(np.uint32), want.numpy().view(np.uint32))
    exact = torch.nn.functional.conv2d(values.double().reshape(3, 2, *size).movedim(0, 1), kernels.double(),
                                       padding=pad, groups=3).movedim(1, 0).unsqueeze(2)  # fmt: skip
    assert np.max(np.abs(out - exact.numpy())) <= 1e-6 * float(exact.abs().max())


def test_chain_slopes_follow_the_ops() -> None:
    alpha, beta = fused.chain_slopes([("gain", np.array([2.0, -3.0])), ("rectify", None)], 2)
    # channel 0: 2u, then rectified: 2u for u > 0, 0 below; channel 1: -3u rectified: 0 above, -3u below
    assert alpha.tolist() == [2.0, 0.0] and beta.tolist() == [0.0, -3.0]


def test_projection_with_and_without_the_fused_step(monkeypatch) -> None:
    """Every rule's projections of layers 1-3 of the Choi demo model on 4 s of real audio: the deconvnet's fused
    path equals the unfused one to float32 rounding; the other rules do not use it."""
    from auralise.session import RenderOptions, Session

    out = {}
    for method in ("deconvnet", "guided"):
        session = Session(REPO / "models" / "choi2016-synth.pt", options=RenderOptions(method=method))
        song = session.song(REPO / "demo_audio" / "dance.ogg", duration=4.0)
        for use in (True, False):
            if not use:
                monkeypatch.setattr(fused, "_KERNELS", {})
            for layer in (1, 2, 3):
                out[method, use, layer] = session.project(song, layer, [0, 5, 38]).D
            monkeypatch.undo()
    for method in ("deconvnet", "guided"):
        for layer in (1, 2, 3):
            a, b = out[method, True, layer], out[method, False, layer]
            assert float(b.abs().max()) > 0
            assert float((a - b).abs().max()) <= 1e-6 * float(b.abs().max()), (method, layer)


@pytest.mark.parametrize("method", ["deconvnet", "guided", "gradient"])
def test_seeds_scaled_to_a_unit_peak_change_nothing_but_subnormals(monkeypatch, method) -> None:
    """Every rule is positively homogeneous in its seed, so the projection scales a seed to a unit peak by a power of
    two and scales the result back. For ordinary seeds that is bit for bit the unscaled projection. A seed 2**-k
    times smaller (a barely active feature; k as large as keeps the seed itself exact) projects to exactly the
    ordinary projection times 2**-k wherever that is a normal number; unscaled, its backward pass ran in subnormal
    numbers and was not exact."""
    from auralise.engine import rules
    from auralise.engine.layers import discover, eval_mode
    from auralise.engine.trace import record_forward
    from auralise.session import Session

    session = Session(REPO / "models" / "choi2016-synth.pt")
    S = session.song(REPO / "demo_audio" / "dance.ogg", duration=3.0).S
    lay = discover(session.module, session.example).layers[2]
    with eval_mode(session.module):
        trace = record_forward(session.module, S, stop_after=lay.taps["conv"][0])
    tap, channels = lay.taps["conv"], torch.tensor([0, 5, 38])
    seeds = trace.records[tap[0]].outputs[tap[1]][:, channels].movedim(1, 0).unsqueeze(2).clone()
    k = int(torch.floor(torch.log2(seeds.abs()[seeds != 0].min()))) + 126
    small = torch.ldexp(seeds, torch.tensor(-k))
    assert k > 100 and torch.equal(torch.ldexp(small, torch.tensor(k)), seeds)
    scaled, tiny = (rules.project(trace, tap, s, channels, rule=method) for s in (seeds, small))
    monkeypatch.setattr(rules, "_peak_exponents", lambda s: torch.zeros(s.shape[0], dtype=torch.int32))
    plain, unscaled_tiny = (rules.project(trace, tap, s, channels, rule=method) for s in (seeds, small))
    assert float(plain.abs().max()) > 0
    assert torch.equal(scaled, plain)
    expected = torch.ldexp(plain, torch.tensor(-k))
    normal = plain.abs() >= torch.finfo(torch.float32).tiny * 2.0**k
    assert float(normal.float().mean()) > 0.5
    assert torch.equal(tiny[normal], expected[normal])
    assert not torch.equal(unscaled_tiny[normal], expected[normal])


@pytest.mark.parametrize("method", ["deconvnet", "guided", "gradient"])
def test_zero_seeds_are_not_carried_and_project_to_zero(monkeypatch, method) -> None:
    """A seed that is zero everywhere (a feature never active at a block tap) projects to zero under every rule; it
    is left out of the backward pass, and the other seeds' projections are bit for bit what they are without it.
    A seed with only a NaN is carried (its NaN is not hidden)."""
    from auralise.engine import rules
    from auralise.engine.layers import discover, eval_mode
    from auralise.engine.trace import record_forward
    from auralise.session import Session

    session = Session(REPO / "models" / "choi2016-synth.pt")
    S = session.song(REPO / "demo_audio" / "dance.ogg", duration=3.0).S
    lay = discover(session.module, session.example).layers[2]
    with eval_mode(session.module):
        trace = record_forward(session.module, S, stop_after=lay.taps["block"][0])
    tap = lay.taps["block"]
    block = trace.records[tap[0]].outputs[tap[1]]
    channels = torch.nonzero(block.flatten(2).amax(dim=2)[0] > 0).flatten()[:4]  # four active features
    seeds = block[:, channels].movedim(1, 0).unsqueeze(2).clone()
    seeds[1], seeds[3] = 0.0, 0.0  # two of them as if never active
    carried = []
    inner = rules._project
    monkeypatch.setattr(rules, "_project", lambda t, tp, s, c, r: carried.append(len(s)) or inner(t, tp, s, c, r))
    both = rules.project(trace, tap, seeds, channels, rule=method)
    assert carried == [2]
    alone = rules.project(trace, tap, seeds[[0, 2]], channels[[0, 2]], rule=method)
    assert float(alone.abs().amax()) > 0
    assert torch.equal(both[[0, 2]], alone) and not both[[1, 3]].any()
    with_nan = seeds.clone()
    with_nan[1, 0, 0, 0, 0] = float("nan")
    carried.clear()
    rules.project(trace, tap, with_nan, channels, rule=method)
    assert carried == [3]
