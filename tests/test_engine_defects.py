"""Engine defects found in an audit: ceil_mode pools, receptive fields through adaptive pools, tie-breaking of
``max``/``topk`` selections across chunk plans, and a block tap that silently fell back to the activation."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import FRONTEND, SR
from test_cli import assert_error, run_cli, run_ok
from torch import nn

from auralise import load_model, save_model
from auralise.demo import synth
from auralise.engine.deconv import deconvolve, make_projector, project_features
from auralise.engine.layers import discover, layer_table, receptive_field
from auralise.frontends.base import Frontend
from auralise.nets import zoo

WAVEFORM = {"kind": "waveform", "sr": SR, "n_fft": 256, "hop_length": 64, "layout": "BFT", "patch_seconds": 1.0}


# --------------------------------------------------------------------------- nets


@zoo.register("test-engine-ceil2d")
class Ceil2d(nn.Module):
    """Three conv blocks whose max-pools use ``ceil_mode`` (one with overlapping, anisotropic windows)."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.config = {"channels": channels}
        c = channels
        self.features = nn.Sequential(
            nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, ceil_mode=True),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d((2, 3), stride=2, ceil_mode=True),
            nn.Conv2d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


@zoo.register("test-engine-ceil1d")
class Ceil1d(nn.Module):
    """A sample-level 1-D net whose max-pools use ``ceil_mode``."""

    def __init__(self, channels: int = 4):
        super().__init__()
        self.config = {"channels": channels}
        c = channels
        self.features = nn.Sequential(
            nn.Conv1d(1, c, 9, stride=3), nn.ReLU(), nn.MaxPool1d(3, ceil_mode=True),
            nn.Conv1d(c, c, 3, padding=1), nn.ReLU(), nn.MaxPool1d(4, stride=3, ceil_mode=True),
            nn.Conv1d(c, c, 3), nn.ReLU(), nn.MaxPool1d(3, ceil_mode=True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def built(cls: type[nn.Module], seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return cls().eval()


def surrogate(seq: nn.Sequential) -> nn.Sequential:
    """The same geometry with every weight 1, no nonlinearity and average pools over the same windows: the gradient
    of a unit is then nonzero exactly on the inputs that can reach it (its receptive field)."""
    out = []
    for m in seq:
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            m = copy.deepcopy(m)
            with torch.no_grad():
                m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()
            out.append(m)
        elif isinstance(m, (nn.MaxPool1d, nn.MaxPool2d)):
            assert m.padding == 0 and m.dilation == 1
            avg = nn.AvgPool1d if isinstance(m, nn.MaxPool1d) else nn.AvgPool2d
            out.append(avg(m.kernel_size, m.stride, ceil_mode=m.ceil_mode))
        elif isinstance(m, nn.AdaptiveMaxPool1d):
            out.append(nn.AdaptiveAvgPool1d(m.output_size))
        elif isinstance(m, nn.AdaptiveMaxPool2d):
            out.append(nn.AdaptiveAvgPool2d(m.output_size))
        elif isinstance(m, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d)):
            out.append(m)
        else:
            assert isinstance(m, nn.ReLU), m
    return nn.Sequential(*out).eval()


def brute_force_rf(seq: nn.Sequential, upto: int, shape: tuple[int, ...], axes: tuple[int, int]) -> tuple[int, ...]:
    """Widest extent along each input axis of ``axes`` of the nonzero input gradient of one unit of channel 0 of
    the output of ``seq[:upto]``, over every such unit."""
    net = surrogate(seq[:upto])
    jac = torch.autograd.functional.jacobian(lambda x: net(x)[0, 0], torch.ones(shape))
    support = (jac != 0).reshape(-1, *shape)
    widest = []
    for axis in axes:
        other = tuple(d for d in range(1, support.dim()) if d != axis + 1)
        hit = support.amax(dim=other)  # (units, shape[axis])
        index = torch.arange(shape[axis]).expand_as(hit)
        first = torch.where(hit, index, shape[axis]).amin(dim=1)
        last = torch.where(hit, index, -1).amax(dim=1)
        widest.append(int((last - first + 1).max()))
    return tuple(widest)


@pytest.fixture(scope="module")
def ceil_models(tmp_path_factory) -> dict[str, str]:
    d = tmp_path_factory.mktemp("ceil")
    return {
        "2d": str(save_model(built(Ceil2d), d / "ceil2d.pt", frontend=FRONTEND)),
        "1d": str(save_model(built(Ceil1d), d / "ceil1d.pt", frontend=WAVEFORM)),
    }


@pytest.fixture(scope="module")
def song_file(tmp_path_factory) -> str:
    y = synth.generate("dance", seconds=3.0, sr=SR, seed=3).mix.astype(np.float32)
    path = tmp_path_factory.mktemp("song") / "song.wav"
    sf.write(path, y, SR)
    return str(path)


# --------------------------------------------------------------------------- 1. ceil_mode pools


@pytest.mark.parametrize(
    "cls,shape,layout",
    [(Ceil2d, (1, 1, 64, 97), "BCFT"), (Ceil1d, (1, 1, 700), "BFT")],
)  # fmt: skip
def test_ceil_mode_receptive_fields_are_exact(cls, shape, layout):
    from auralise.engine.layers import LAYOUT_AXES

    net = built(cls)
    example = torch.rand(shape)
    graph = discover(net, example)
    axes = LAYOUT_AXES[layout]
    for lay in graph.layers:
        field = receptive_field(net, example, lay, tap="block", layout=layout)
        assert field == brute_force_rf(net.features, 3 * lay.number, shape, axes), lay.number
        for tap, upto in (("conv", 3 * lay.number - 2), ("activation", 3 * lay.number - 1)):
            assert receptive_field(net, example, lay, tap=tap, layout=layout) == brute_force_rf(
                net.features, upto, shape, axes
            )


def test_ceil_mode_chunked_projection_equals_one_pass():
    torch.manual_seed(1)
    S2 = torch.rand(1, 1, 64, 403)  # 403 frames: not a multiple of any tap's stride, so ceil windows are partial
    S1 = torch.rand(1, 1, 9001)
    for cls, S, layout, chunk in ((Ceil2d, S2, "BCFT", 120), (Ceil1d, S1, "BFT", 2500)):
        net = built(cls)
        example = S[..., : S.shape[-1] // 3]
        for layer in (1, 2, 3):
            for select in ("map", "max", "topk:3"):
                kwargs = dict(layer=layer, features=[0, 1, 2, 3], select=select, example=example)
                projector = make_projector(net, S, [layer], method="deconvnet", select=select, tap="block",
                                           example=example, layout=layout, chunk_frames=chunk)  # fmt: skip
                assert len(projector.chunks) >= 3, (cls.__name__, layer)
                whole = project_features(net, S, **kwargs)
                chunked = project_features(net, S, layout=layout, chunk_frames=chunk, **kwargs)
                assert whole.D.abs().max() > 0
                torch.testing.assert_close(chunked.D, whole.D, rtol=1e-5, atol=1e-6 * float(whole.D.abs().max()))
                torch.testing.assert_close(chunked.activation_energy, whole.activation_energy, rtol=1e-5, atol=0)
        # and the one-pass result is the deconvnet's, whatever the chunking machinery does
        D = deconvolve(net, S, layer=3, features=[0])
        torch.testing.assert_close(project_features(net, S, layer=3, features=[0]).D, D)


@pytest.mark.parametrize("kind", ["2d", "1d"])
def test_ceil_mode_cli_inspect_and_run(capsys, tmp_path, ceil_models, song_file, kind):
    model = ceil_models[kind]
    out, err = run_ok(capsys, "inspect", model)
    assert len(out.strip().splitlines()) == 2 + 3 and "warning" not in err
    doc = json.loads(run_ok(capsys, "inspect", model, "--json")[0])
    loaded = load_model(model)
    example = loaded.example_input(4.0)
    rows = layer_table(loaded.module, example, loaded.frontend)
    assert [r["rf_frames"] for r in doc["layers"]] == [r["rf_frames"] for r in rows]
    for r in doc["layers"]:
        lay = discover(loaded.module, example).layer(r["layer"])
        assert r["rf_frames"] == receptive_field(loaded.module, example, lay, layout=loaded.frontend.layout)[0]
    for select in ("map", "max"):
        target = tmp_path / select
        out, _ = run_ok(capsys, model, song_file, "--layer", 3, "-f", 1, "-f", 2, "--select", select,
                        "--out", target, "--no-plot")  # fmt: skip
        tag = "" if select == "map" else f"_{select}"  # the naming template marks a non-default selection
        assert sorted(p.name for p in target.glob("*.wav")) == [f"layer3_feature{f}{tag}.wav" for f in (1, 2)]
    run_ok(capsys, "export", model, song_file, "--out", tmp_path / "set", "--layers", "2,3", "--features", "0,1",
           "--memory", "0.0005", "--quiet")  # fmt: skip


def test_ceil_mode_inspect_errors_are_one_line(capsys, tmp_path, ceil_models):
    code, _, err = run_cli(capsys, "inspect", ceil_models["2d"], "--tap", "pool")
    assert_error(code, err, 2, "--tap")
    broken = tmp_path / "broken.pt"
    broken.write_bytes(open(ceil_models["2d"], "rb").read()[:100])
    code, _, err = run_cli(capsys, "inspect", broken)
    assert code != 0 and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


# --------------------------------------------------------------------------- 2. adaptive pools


def _adaptive(bins_pools: list[nn.Module]) -> nn.Sequential:
    mods: list[nn.Module] = []
    for pool in bins_pools:
        mods += [nn.Conv2d(1 if not mods else 2, 2, 3, padding=1), nn.ReLU(), pool]
    torch.manual_seed(0)
    return nn.Sequential(*mods).eval()


@pytest.mark.parametrize(
    "bins,pools",
    [
        (257, [nn.AdaptiveMaxPool2d((4, None))]),
        (10, [nn.AdaptiveMaxPool2d((6, None))]),  # windows of 2 and 3 bins: the centre unit is not the widest
        (10, [nn.AdaptiveAvgPool2d((6, None))]),
        (257, [nn.AdaptiveAvgPool2d((6, None))]),
        (257, [nn.AdaptiveMaxPool2d((40, None)), nn.AdaptiveAvgPool2d((7, None))]),
        (61, [nn.AdaptiveMaxPool2d((None, 5))]),  # time pooled to a fixed size: a share of the whole input
    ],
)
def test_adaptive_pool_receptive_fields_are_exact(bins, pools):
    net = _adaptive(pools)
    shape = (1, 1, bins, 16)
    example = torch.rand(shape)
    graph = discover(net, example)
    for lay in graph.layers:
        expected = brute_force_rf(net, 3 * lay.number, shape, (3, 2))
        assert receptive_field(net, example, lay, tap="block", layout="BCFT") == expected, lay.number
    if bins == 257 and len(pools) == 1 and pools[0].output_size == (4, None):
        assert expected == (3, 67)  # windows of 65 bins (257 -> 4) plus the 3x3 kernel's 2
        row = layer_table(net, example, Frontend.from_dict(FRONTEND))[0]
        assert (row["rf_frames"], row["rf_bins"]) == (3, 67)


# --------------------------------------------------------------------------- 3. ties in max / topk


def _tie_net() -> nn.Sequential:
    """Integer weights on an integer input: activations are exact, so equal windows tie exactly; non-negative
    weights keep the maxima away from the zero-padded edges."""
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
    ).eval()  # fmt: skip
    with torch.no_grad():
        for m in net:
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(torch.randint(0, 3, m.weight.shape).float())  # >= 0: edges never win
                m.bias.zero_()
    return net


def _periodic_input(frames: int = 240, bins: int = 12) -> torch.Tensor:
    """The same 16-frame pattern over and over, and the same in every bin: maxima tie in time and frequency."""
    pattern = torch.tensor([0.0, 1, 3, 7, 2, 0, 1, 5, 4, 0, 2, 1, 6, 0, 3, 2])
    return pattern.repeat(frames // 16)[None, None, None, :].expand(1, 1, bins, frames).contiguous()


def _expected_units(tap: torch.Tensor, channel: int, k: int) -> list[list[int]]:
    """The k strongest units of a channel; ties to the earliest time, then the lowest frequency: [b, f, t]."""
    values = tap[0, channel]
    units = [(-float(values[f, t]), t, f) for f in range(values.shape[0]) for t in range(values.shape[1])]
    return [[0, f, t] for _, t, f in sorted(units)[:k]]


@pytest.mark.parametrize("layer", [1, 2])
@pytest.mark.parametrize("select,k", [("max", 1), ("topk:3", 3)])
def test_tied_maxima_pick_the_earliest_unit_whatever_the_chunk_plan(layer, select, k):
    net, S = _tie_net(), _periodic_input()
    example = S[..., :64]
    kwargs = dict(method="deconvnet", select=select, tap="block", example=example)
    one = make_projector(net, S, [layer], **kwargs)
    chunked = make_projector(net, S, [layer], layout="BCFT", chunk_frames=50, **kwargs)
    assert len(one.chunks) == 1 and len(chunked.chunks) >= 5
    tap = net[: 3 * layer](S)
    for f in (0, 1):
        expected = _expected_units(tap, f, k)
        assert len({tuple(u[1:]) for u in expected}) == k
        top = tap[0, f].max()
        assert int((tap[0, f] == top).sum()) > 1, "no tie: the test would prove nothing"
        assert one.statistics()[layer].top_positions[f].tolist() == expected
        assert chunked.statistics()[layer].top_positions[f].tolist() == expected
    proj = dict(layer=layer, features=[0, 1], select=select, example=example)
    whole = project_features(net, S, **proj)
    cut = project_features(net, S, layout="BCFT", chunk_frames=50, **proj)
    assert whole.D.abs().max() > 0
    torch.testing.assert_close(cut.D, whole.D, rtol=0, atol=0)


def test_selection_ties_are_documented():
    from auralise.engine.selection import parse_selection

    assert "earliest unit in time, then the lowest frequency" in " ".join(parse_selection.__doc__.split())


# --------------------------------------------------------------------------- 4. short input for the block's pool


def _pooled_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
    ).eval()  # fmt: skip


def test_block_tap_on_too_short_input_warns():
    net = _pooled_net()
    short = torch.rand(1, 1, 33, 3)  # 3 frames: shorter than the 4-frame pooling window after layer 1
    message = (
        "layer 1's block tap falls back to the activation because the input is shorter than the pooling window; "
        "use longer audio"
    )
    with pytest.warns(UserWarning, match=message.replace("(", r"\(")) as caught:
        D = deconvolve(net, short, layer=1, features=[0])
    assert D.shape == (1, 1, 33, 3)
    assert all("\n" not in str(w.message) for w in caught)
    with pytest.warns(UserWarning, match="layer 1's block tap falls back"):
        layer_table(net, short, Frontend.from_dict(FRONTEND))


def test_block_tap_on_long_enough_input_does_not_warn(recwarn):
    net = _pooled_net()
    deconvolve(net, torch.rand(1, 1, 33, 40), layer=2, features=[0])
    deconvolve(net, torch.rand(1, 1, 33, 3), layer=1, features=[0], tap="activation")  # asked for: no warning
    assert not [w for w in recwarn if "block tap" in str(w.message)]


def test_cli_prints_the_short_block_tap_warning_as_one_line(tmp_path):
    """The command line shows auralise's own warnings as one ``warning:`` line, without Python's file:line."""
    import subprocess
    import sys

    script = (
        "import warnings\n"
        "from auralise.cli import _show_warning\n"
        "from auralise.errors import AuraliseWarning\n"
        "warnings.showwarning = _show_warning\n"
        'warnings.warn("layer 1\'s block tap falls back", AuraliseWarning)\n'
    )
    err = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stderr
    assert err == "warning: layer 1's block tap falls back\n"


@pytest.mark.parametrize("model", ["choi2016-synth.pt", "pons-synth.pt"])
def test_shared_dry_traces_give_each_layer_the_same_geometry_and_field(model, monkeypatch):
    """The set-up records one dry trace per input length for all layers (shared_dry_traces) instead of one per layer
    and length: every layer's time geometry and receptive field is what its own traces give."""
    from pathlib import Path

    from auralise.engine import layers
    from auralise.session import Session

    session = Session(Path(__file__).resolve().parents[1] / "models" / model)
    module, example, layout = session.module, session.example, session.frontend.layout
    lays = layers.discover(module, example).layers

    def measured():
        return [(layers._measure_time_geometry(module, example, lay, tap="block", layout=layout),
                 layers.receptive_field(module, example, lay, tap="block", layout=layout)) for lay in lays]  # fmt: skip

    alone = measured()
    recorded = []
    record = layers.record_forward

    def counted(*args, **kwargs):
        recorded.append(args[1].shape)
        return record(*args, **kwargs)

    monkeypatch.setattr(layers, "record_forward", counted)
    with layers.shared_dry_traces():
        shared = measured()
    assert shared == alone and any(g is not None for g, _ in alone)
    assert len(recorded) == len(set(recorded)) < len(lays)  # one trace per input length, fewer than the layers
