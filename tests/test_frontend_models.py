"""Models on mel and constant-Q inputs, and musicnn's branching graph, against Captum's deconvnet."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import NeuronDeconvolution, NeuronGuidedBackprop
from test_deconv import assert_all_match, captum, randomise_batch_norms, tap_modules

import auralise
from auralise.demo import synth
from auralise.frontends.base import Frontend
from auralise.nets import zoo

MEL = {"kind": "mel", "sr": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 96, "power": 2,
       "compression": "log10p", "log_scale": 10000.0}  # fmt: skip
CQT = {"kind": "cqt", "sr": 16000, "n_fft": 512, "hop_length": 256, "n_bins": 72, "bins_per_octave": 12,
       "compression": "log1p"}  # fmt: skip


def model_input(frontend: dict, seconds: float = 3.0) -> torch.Tensor:
    fe = Frontend.from_dict(frontend)
    y = synth.generate("hiphop", seconds=seconds, sr=fe.sr, seed=3).mix.astype(np.float32)
    return fe.analyse(y)[1]


@pytest.mark.parametrize("frontend", [MEL, CQT], ids=["mel", "cqt"])
@pytest.mark.parametrize("method,cls", [("deconvnet", NeuronDeconvolution), ("guided", NeuronGuidedBackprop)])
def test_choi_on_mel_and_cqt_matches_captum(frontend, method, cls):
    S = model_input(frontend)
    torch.manual_seed(11)
    net = zoo.build("choi2016", {"channels": 8, "hidden": 8, "n_bins": S.shape[2], "n_frames": S.shape[3]}).eval()
    pools = tap_modules(net.features)
    for layer in (1, 3, 5):
        feats = [0, 3, 6]
        D = auralise.deconvolve(net, S, layer=layer, features=feats, method=method)
        assert_all_match(D, [captum(cls, net, pools[layer - 1], S, f) for f in feats])


def test_musicnn_branches_and_residuals_match_captum():
    """Timbral and temporal branches (concatenated), and the residual mid-end, on a real log-mel input."""
    S = model_input(MEL, seconds=4.0).transpose(2, 3)  # musicnn reads (B, 1, T, mel)
    torch.manual_seed(12)
    net = zoo.build("musicnn", {"num_filt_frontend": 0.25, "num_filt_midend": 8, "num_units_backend": 8}).eval()
    randomise_batch_norms(net)
    for layer, module in ((1, net.timbral[0]), (4, net.temporal[1]), (6, net.midend[0]), (8, net.midend[2])):
        feats = [0, 2, 5]
        D = auralise.deconvolve(net, S, layer=layer, features=feats)
        assert_all_match(D, [captum(NeuronDeconvolution, net, module, S, f) for f in feats])
