"""Chunked projection of long inputs equals the unchunked computation, for every selection and rule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auralise import load_model
from auralise.demo import synth
from auralise.engine.chunking import plan_chunks
from auralise.engine.deconv import make_projector, project_features

MODELS = "models"


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = b.abs().max()
    assert scale > 0, "reference is all zero: the test would prove nothing"
    return float((a - b).abs().max() / scale)


@pytest.fixture(scope="module")
def choi():
    return load_model(f"{MODELS}/choi2016-synth.pt")


@pytest.fixture(scope="module")
def minute(choi) -> torch.Tensor:
    """The model input for 60 s of synthetic music: (1, 1, 257, 2584)."""
    fe = choi.frontend
    y = synth.generate_sequence(["dance", "ballad", "hiphop"], seconds_each=20.0, sr=fe.sr, seed=5).mix
    return fe.model_input(fe.stft(y.astype(np.float32)))


def test_plan_partitions_the_input_into_aligned_cores():
    chunks = plan_chunks(1000, 8, 48, 300)
    assert len(chunks) > 3
    assert chunks[0].core_start == 0 and chunks[-1].core_stop == 1000
    for a, b in zip(chunks, chunks[1:]):
        assert a.core_stop == b.core_start
    for c in chunks:
        assert c.start % 8 == 0 and c.core_start % 8 == 0 and c.stop - c.start <= 300
        assert c.start == max(0, c.core_start - 48) and c.stop == min(1000, c.core_stop + 48)
    assert plan_chunks(1000, 8, 48, None) == plan_chunks(1000, 8, 48, 1000) == [plan_chunks(1000, 8, 48, 1000)[0]]


@pytest.mark.parametrize(
    "layer,method,select",
    [(1, "deconvnet", "map"), (3, "deconvnet", "map"), (5, "deconvnet", "map"), (3, "guided", "topk:4"),
     (5, "deconvnet", "max"), (2, "gradient", "map")],
)  # fmt: skip
def test_chunked_minute_matches_unchunked(choi, minute, layer, method, select):
    feats = [0, 5, 38, 63]
    kwargs = dict(layer=layer, features=feats, method=method, select=select, example=choi.example_input())
    whole = project_features(choi.module, minute, **kwargs)
    chunked = project_features(choi.module, minute, layout="BCFT", chunk_frames=700, **kwargs)
    alive = [k for k in range(len(feats)) if not whole.silent[k]]
    assert alive, "every chosen feature is silent: the test would prove nothing"
    for k in range(len(feats)):
        if whole.silent[k]:
            assert chunked.silent[k] and chunked.D[k].abs().max() == 0
        else:
            assert rel_err(chunked.D[k], whole.D[k]) <= 1e-4, (layer, feats[k])
    torch.testing.assert_close(chunked.activation_energy, whole.activation_energy, rtol=1e-4, atol=0)
    torch.testing.assert_close(chunked.activation_max, whole.activation_max, rtol=1e-5, atol=0)


def test_the_minute_really_is_cut(choi, minute):
    projector = make_projector(
        choi.module, minute, [5], method="deconvnet", select="map", tap="block", example=choi.example_input(),
        layout="BCFT", chunk_frames=700,
    )  # fmt: skip
    chunks = projector.chunks
    assert len(chunks) >= 4
    assert all(c.start % 32 == 0 for c in chunks)  # layer 5's block tap has a time stride of 32 frames
    assert min(c.core_start - c.start for c in chunks[1:]) >= 94  # at least the receptive field of 94 frames


def test_default_budget_cuts_long_inputs_only(choi, minute):
    kwargs = dict(method="deconvnet", select="map", tap="block", example=choi.example_input(), layout="BCFT")
    assert len(make_projector(choi.module, minute[..., :1292], [3], **kwargs).chunks) == 1  # 30 s: one pass
    small = make_projector(choi.module, minute, [3], memory_budget=64 << 20, **kwargs)
    assert len(small.chunks) > 1


def test_pons_mid_end_layers_chunk_along_their_own_time_axis():
    """pons-synth's 1-D mid-end taps are (B, C, T): the time axis of the tap differs from the input's."""
    pons = load_model(f"{MODELS}/pons-synth.pt")
    fe = pons.frontend
    y = synth.generate("hiphop", seconds=30.0, sr=fe.sr, seed=9).mix.astype(np.float32)
    S = fe.model_input(fe.stft(y))
    for layer in (3, 7):
        kwargs = dict(layer=layer, features=[0, 1, 2], example=pons.example_input())
        whole = project_features(pons.module, S, **kwargs)
        chunked = project_features(pons.module, S, layout=fe.layout, chunk_frames=400, **kwargs)
        for k in range(3):
            if not whole.silent[k]:
                assert rel_err(chunked.D[k], whole.D[k]) <= 1e-4, (layer, k)
