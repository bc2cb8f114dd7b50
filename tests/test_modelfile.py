"""Model files: the auralise checkpoint round trip, import-path architectures, front-end resolution."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import auralise
from auralise.errors import BadModelError

FRONTEND = {"kind": "stft", "sr": 8000, "n_fft": 256, "hop_length": 128, "compression": "log1p", "layout": "BCTF"}


class TimeFreqNet(nn.Module):
    """A user architecture outside the zoo, found again by its import path."""

    def __init__(self, width: int = 3):
        super().__init__()
        self.config = {"width": width}
        self.conv = nn.Conv2d(1, width, 3)
        self.bn = nn.BatchNorm2d(width)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


def test_checkpoint_round_trip_with_import_path(tmp_path):
    torch.manual_seed(0)
    net = TimeFreqNet(width=4).eval()
    net.bn.running_var.fill_(2.0)
    path = auralise.save_model(net, tmp_path / "m.pt", frontend=FRONTEND, labels=["a", "b"], provenance={"seed": 1})
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == "auralise-checkpoint" and raw["version"] == 1
    assert raw["architecture"] == f"{__name__}:TimeFreqNet" and raw["config"] == {"width": 4}
    with pytest.raises(BadModelError, match="--trust-model"):  # an import path is code: it needs trust
        auralise.load_model(path)
    loaded = auralise.load_model(path, trust=True)
    assert loaded.labels == ["a", "b"] and loaded.meta["provenance"] == {"seed": 1}
    assert loaded.frontend.layout == "BCTF" and loaded.frontend.compression == "log1p"
    S = torch.rand(1, 1, 40, 129)
    assert torch.equal(loaded.module(S), net(S))
    # the Python API takes the loaded model as well as the bare module
    assert torch.equal(
        auralise.deconvolve(loaded, S, layer=1, features=[0, 3]), auralise.deconvolve(net, S, layer=1, features=[0, 3])
    )
    assert loaded.example_input().shape == (1, 1, loaded.frontend.frames_for(4.0), 129)


def test_zoo_name_is_stored_and_config_checked(tmp_path):
    net = auralise.nets.zoo.build("choi2016", {"channels": 4, "hidden": 8})
    path = auralise.save_model(net, tmp_path / "c.pt", frontend=FRONTEND | {"layout": "BCFT"})
    raw = torch.load(path, weights_only=True)
    assert raw["architecture"] == "choi2016" and raw["config"]["channels"] == 4
    with pytest.raises(BadModelError, match="does not rebuild"):
        auralise.save_model(net, tmp_path / "bad.pt", frontend=FRONTEND, config={"channels": 8})
    assert not (tmp_path / "bad.pt").exists()
    with pytest.raises(BadModelError, match="front-end key"):
        auralise.save_model(net, tmp_path / "bad.pt", frontend=FRONTEND | {"compression": "cubic"})


def test_sidecar_frontend_and_override(tmp_path):
    net = TimeFreqNet()
    path = tmp_path / "whole.pt"
    torch.save(net, path)
    with pytest.raises(BadModelError, match="--trust-model"):
        auralise.load_model(path)
    with pytest.raises(BadModelError, match="no front-end"):
        auralise.load_model(path, trust=True)
    (tmp_path / "whole.pt.frontend.json").write_text(json.dumps(FRONTEND))
    assert auralise.load_model(path, trust=True).frontend.sr == 8000
    override = auralise.load_model(path, trust=True, frontend=FRONTEND | {"sr": 16000})
    assert override.frontend.sr == 16000


def test_torchscript_is_refused_with_a_remedy(tmp_path):
    path = tmp_path / "ts.pt"
    torch.jit.script(TimeFreqNet()).save(str(path))
    with pytest.raises(BadModelError, match="TorchScript"):
        auralise.load_model(path)


def test_exported_program_with_sidecar_frontend(tmp_path):
    """A torch.export program (dynamic time axis) auralises exactly like the module it was exported from."""
    torch.manual_seed(0)
    net = auralise.nets.zoo.build("choi2016", {"channels": 6, "hidden": 8, "n_layers": 3, "batch_norm": True}).eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.uniform_(0.5, 2.0)
                m.running_mean.uniform_(-0.5, 0.5)
    time_axis = torch.export.Dim("T", min=16, max=100_000)
    program = torch.export.export(net.features, (torch.rand(1, 1, 257, 173),), dynamic_shapes=({3: time_axis},))
    path = tmp_path / "features.pt2"
    torch.export.save(program, path)
    with pytest.raises(BadModelError, match="no front-end"):
        auralise.load_model(path)
    sidecar = {"kind": "stft", "sr": 11025, "n_fft": 512, "hop_length": 256}
    (tmp_path / "features.pt2.frontend.json").write_text(json.dumps(sidecar))
    loaded = auralise.load_model(path)
    assert loaded.meta["format"] == "torch.export"
    graph = auralise.engine.layers.discover(loaded.module, loaded.example_input())
    assert [(lay.path, lay.kernel, lay.channels) for lay in graph.layers] == [
        ("0", (3, 3), 6),
        ("5", (3, 3), 6),
        ("10", (3, 3), 6),
    ]
    S = torch.rand(1, 1, 257, 300)  # a longer input than the exported example: the time axis is dynamic
    for method in ("deconvnet", "guided", "gradient"):
        got = auralise.deconvolve(loaded, S, layer=3, features=[0, 5], method=method)
        want = auralise.deconvolve(net.features, S, layer=3, features=[0, 5], method=method)
        assert torch.allclose(got, want, rtol=1e-5, atol=1e-7), method
    (tmp_path / "broken.pt2").write_bytes(b"not a zip")
    with pytest.raises(BadModelError, match="cannot read exported program"):
        auralise.load_model(tmp_path / "broken.pt2", frontend=sidecar)
