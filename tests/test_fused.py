"""The fused unpool + transposed-convolution step (auralise.engine.fused) against slow references written here, and the
whole projection with and without it on real audio through the shipped model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from auralise.engine import fused

pytestmark = pytest.mark.skipif(not fused.available(), reason="numba is not installed (it comes with librosa)")

REPO = Path(__file__).resolve().parents[1]


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
    (3, 2, (12, 9), 3, 1, 3, 2, ["rectify", "gain"], 2),
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
                                 overlap=pool != stride, threads=2)  # fmt: skip
    ref = reference(g, switches, size, chain, weight, (pad, pad))
    assert out.shape == tuple(ref.shape)
    assert np.max(np.abs(out - ref.numpy())) <= 1e-5 * float(ref.abs().max())


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
