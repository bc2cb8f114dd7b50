"""Silent features (never active, numerically zero projections: flagged, never divided by), the filter figure's
axes for time x frequency models, and notes shown as plain text in `figure grid`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR
from test_cli import assert_error, assert_nothing_written, run_cli, run_ok
from torch import nn

import auralise
from auralise.frontends.base import Frontend
from auralise.listening.export import file_sha256
from auralise.nets import zoo
from auralise.render.resynth import render_waves

NEVER_ACTIVE, NUMERICALLY_ZERO = "never active", "projection is numerically zero"  # resynth's reasons

STFT_BCFT = {"kind": "stft", "sr": SR, "n_fft": 512, "hop_length": 256, "compression": "linear", "layout": "BCFT"}


@zoo.register("test-elu")
class EluNet(nn.Module):
    """conv 3x3 -> ELU -> 2x2 max-pool (layer 1), conv 3x3 -> ReLU -> BN -> 2x2 max-pool (layer 2).

    Feature 0 of layer 1 has a large negative bias: its ELU is negative everywhere (never active). Feature 1 of
    layer 2 has a negative batch-norm scale and a positive shift, so it is active (positive) everywhere but its
    deconvnet projection is exactly zero: the scale turns the seed negative and the ReLU rule rectifies it away
    (what musicnn's feature 1-3 does, batch norm after the ReLU).
    """

    def __init__(self, channels: int = 3):
        super().__init__()
        self.config = {"channels": channels}
        self.features = nn.Sequential(
            nn.Conv2d(1, channels, 3, padding=1),
            nn.ELU(),
            nn.MaxPool2d(2),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.ReLU(),
            nn.BatchNorm2d(channels),
            nn.MaxPool2d(2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


@zoo.register("test-bctf")
class TimeFirstNet(nn.Module):
    """A time x frequency (BCTF) model: layer 1 has (k_t=5, k_f=1) temporal filters, layer 2 (5, 3) kernels."""

    def __init__(self):
        super().__init__()
        self.config = {}
        self.features = nn.Sequential(nn.Conv2d(1, 2, (5, 1)), nn.ReLU(), nn.Conv2d(2, 2, (5, 3)), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


def elu_model(path):
    torch.manual_seed(0)
    net = EluNet().eval()
    with torch.no_grad():
        net.features[0].bias[0] = -100.0  # ELU(conv) ~ -1 everywhere: never active
        bn = net.features[5]
        bn.weight[1], bn.bias[1] = -1.0, 10.0  # positive activation, negative backward scale
    return auralise.save_model(net, path, frontend=STFT_BCFT)


# --------------------------------------------------------------------------- 1. denormal projections


@pytest.mark.parametrize("mode", ["mask", "magnitude"])
@pytest.mark.parametrize("normalize", ["peak", "none"])
def test_denormal_projection_is_silent_and_finite(mode, normalize):
    fe = Frontend.from_dict(STFT_BCFT)
    y = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    X = fe.stft(y)
    shape = (1, *X.shape)  # one model input (BCFT): (C, F, T)
    rng = np.random.default_rng(1)
    D = np.zeros((4, *shape), dtype=np.float32)
    D[0] = np.where(rng.random(shape) < 0.3, 1e-40, 0.0)  # subnormal peak (MTT_musicnn 1-105: 1.4e-39)
    D[1] = rng.random(shape)  # an ordinary projection
    D[2] = -rng.random(shape) + np.where(rng.random(shape) < 0.01, 3e-38, 0.0)  # tiny positive part
    D[3] = rng.random(shape) * 1e-20  # tiny, but every value a normal float32: not silent in mask mode
    assert np.any(D[0]) and D[0].max() < np.finfo(np.float32).tiny
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # nothing divided by a numerically zero peak
        waves, gains, grid = rendered = render_waves(X, D, frontend=fe, mode=mode, length=len(y), normalize=normalize)
    assert waves.shape == (4, len(y)) and waves.dtype == np.float32
    assert np.all(np.isfinite(waves)) and np.all(np.isfinite(gains)) and np.all(np.isfinite(grid))
    assert list(rendered.silent[:3]) == [True, False, True]
    assert rendered.reasons[0] == rendered.reasons[2] == NUMERICALLY_ZERO and rendered.reasons[1] is None
    for k in (0, 2):
        assert not np.any(waves[k]) and not np.any(grid[k]) and gains[k] == 1.0
    assert np.any(waves[1])
    if normalize == "peak":
        assert np.max(np.abs(waves[1])) == pytest.approx(0.99, abs=1e-6)
    if mode == "mask":  # the mask is normalised per feature: a 1e-20 projection is as loud as any other
        assert not rendered.silent[3] and np.any(waves[3])
    assert rendered.warnings(1, [7, 8, 9, 10]) == [
        "feature 7 of layer 1 is silent: its projection is numerically zero; its WAV is silence",
        "feature 9 of layer 1 is silent: its projection is numerically zero; its WAV is silence",
    ] + (["feature 10 of layer 1 is silent: its projection is numerically zero; its WAV is silence"]
         if rendered.silent[3] else [])  # fmt: skip


def test_never_active_features_are_silent_whatever_their_projection():
    fe = Frontend.from_dict(STFT_BCFT)
    y = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    X = fe.stft(y)
    D = np.random.default_rng(1).random((3, 1, *X.shape)).astype(np.float32)
    waves, gains, grid = rendered = render_waves(
        X, D, frontend=fe, length=len(y), activation_max=torch.tensor([0.5, 0.0, -2.0])
    )
    assert list(rendered.silent) == [False, True, True]
    assert rendered.reasons == (None, NEVER_ACTIVE, NEVER_ACTIVE)
    assert np.any(waves[0]) and not np.any(waves[1:]) and not np.any(grid[1:]) and list(gains[1:]) == [1.0, 1.0]


# --------------------------------------------------------------------------- 2. never active, zero projection


def test_auralise_file_reports_never_active_and_zero_projections(tmp_path, music_files, music):
    model = elu_model(tmp_path / "elu.pt")
    result = auralise.auralise_file(model, music_files["wav"], layer=1, features=[0, 1], out_dir=tmp_path / "a",
                                    plot=False, device="cpu")  # fmt: skip
    dead, live = result.features
    assert dead.activation_max < 0 and dead.silent and dead.silent_reason == NEVER_ACTIVE
    assert not live.silent and live.silent_reason is None and live.activation_max > 0
    assert result.warnings == ["feature 0 of layer 1 is silent: never active on this song (activation max <= 0); "
                               "its WAV is silence"]  # fmt: skip
    assert not np.any(sf.read(dead.wav)[0]) and np.any(sf.read(live.wav)[0])

    result = auralise.auralise_file(model, music_files["wav"], layer=2, features=[0, 1], out_dir=tmp_path / "b",
                                    plot=True, device="cpu")  # fmt: skip
    zero = result.features[1]
    assert zero.activation_max > 0 and zero.silent and zero.silent_reason == NUMERICALLY_ZERO
    assert "feature 1 of layer 2 is silent: its projection is numerically zero" in result.warnings[-1]
    wav, sr = sf.read(zero.wav)
    assert sr == SR and len(wav) == len(music) and not np.any(wav)


def test_cli_warns_about_a_never_active_elu_feature(capsys, tmp_path, music_files):
    model = elu_model(tmp_path / "elu.pt")
    out_dir = tmp_path / "out"
    _, err = run_ok(capsys, model, music_files["wav"], "--layer", 1, "-f", 0, "-f", 1, "--out", out_dir, "--no-plot")
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "feature 0 of layer 1 is silent" in warnings[0], err
    assert not np.any(sf.read(out_dir / "layer1_feature0.wav")[0])
    _, err = run_ok(capsys, "figure", "grid", model, music_files["wav"], "--features", "1-0,1-1,2-1", "--out",
                    tmp_path / "grid.png")  # fmt: skip
    assert err.splitlines() == [
        "warning: feature 1-0 is silent: never active on this song (activation max <= 0)",
        "warning: feature 2-1 is silent: its projection is numerically zero",
    ]


@pytest.mark.parametrize("memory", ["1", "0.004"], ids=["in-memory", "streamed"])
def test_export_manifest_flags_silent_features_with_their_reason(capsys, tmp_path, music_files, memory):
    """The manifest's ``silent`` comes from the rendering (never active, or a numerically zero projection), on the
    whole-song path and the streamed one alike, and silent WAVs are silence."""
    model = elu_model(tmp_path / "elu.pt")
    out_dir = tmp_path / "out"
    run_ok(capsys, "export", model, music_files["wav"], "--out", out_dir, "--quiet", "--memory", memory)
    manifest = json.loads((out_dir / "manifest.json").read_text())
    items = {(i["layer"], i["feature"]): i for i in manifest["songs"][0]["items"]}
    assert items[(1, 0)]["silent"] and items[(1, 0)]["silent_reason"] == NEVER_ACTIVE
    assert items[(2, 1)]["silent"] and items[(2, 1)]["silent_reason"] == NUMERICALLY_ZERO
    for key, item in items.items():
        wave = sf.read(out_dir / item["wav"])[0]
        assert np.all(np.isfinite(wave))
        assert (not np.any(wave)) == item["silent"], key


# --------------------------------------------------------------------------- 3. filters of time x frequency models


def capture_figures(monkeypatch):
    from auralise.figures import paper

    figures = []
    original = paper._finish

    def capture(fig, path, command):
        figures.append(fig)
        return original(fig, path, command)

    monkeypatch.setattr(paper, "_finish", capture)
    return figures


def test_filters_of_a_time_by_frequency_model_put_time_on_x(capsys, monkeypatch, tmp_path):
    fe = dict(STFT_BCFT, layout="BCTF")
    model = auralise.save_model(TimeFirstNet().eval(), tmp_path / "bctf.pt", frontend=fe)
    figures = capture_figures(monkeypatch)
    run_ok(capsys, "figure", "filters", model, "--layer", "1", "--out", tmp_path / "l1.pdf")
    fig = figures[-1]
    shapes = [ax.get_images()[0].get_array().shape for ax in fig.axes[:-1]]
    assert shapes == [(1, 5), (1, 5)]  # k_t = 5 columns along x, k_f = 1 row
    assert fig.get_supxlabel() == "time →" and "frequency" not in fig.get_supylabel()

    run_ok(capsys, "figure", "filters", model, "--layer", "2", "--out", tmp_path / "l2.pdf")
    fig = figures[-1]
    assert [ax.get_images()[0].get_array().shape for ax in fig.axes[:-1]] == [(3, 5), (3, 5)]
    assert fig.get_supxlabel() == "time →" and fig.get_supylabel() == "frequency →"
    assert (tmp_path / "l1.pdf").read_bytes().startswith(b"%PDF")


def test_filters_of_1d_kernels_follow_the_layout():
    from auralise.figures.drawing import filters_figure

    W = np.arange(2 * 4 * 5, dtype=float).reshape(2, 4, 5) - 20  # Conv1d: 2 features, 4 inputs, k = 5
    along_time = filters_figure(W, layout="BFT", channels="all")
    assert along_time.axes[0].get_images()[0].get_array().shape == (4, 5)
    assert along_time.get_supxlabel() == "time →" and along_time.get_supylabel() == "input channel →"
    along_freq = filters_figure(W, layout="BTF")
    assert along_freq.axes[0].get_images()[0].get_array().shape == (5, 1)
    assert along_freq.get_supylabel() == "frequency →" and "time" not in along_freq.get_supxlabel()


# --------------------------------------------------------------------------- 4. notes are plain text, and checked


def write_notes(path, data):
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def test_grid_notes_with_tex_are_plain_text(capsys, monkeypatch, tmp_path, choi_model, music_files):
    tex = r"$\undefinedcommand{x}$ 50% & \textbf{y}"
    notes = write_notes(tmp_path / "notes.json", {"format": "auralise-notes", "model": file_sha256(choi_model),
                                                  "features": {"1-0": tex, "1-1": "a\nb"}})  # fmt: skip
    figures = capture_figures(monkeypatch)
    pdf = tmp_path / "grid.pdf"
    out, err = run_ok(capsys, "figure", "grid", choi_model, music_files["wav"], "--features", "1-0,1-1", "--notes",
                      notes, "--out", pdf)  # fmt: skip
    assert out.strip() == f"wrote {pdf}" and "warning" not in err
    assert pdf.stat().st_size > 1000 and pdf.read_bytes().startswith(b"%PDF")
    titles = [ax.get_title() for ax in figures[-1].axes if ax.get_title()]
    assert titles == [f"Feature 1-0 · {tex}", "Feature 1-1 · a b"]


def test_a_long_note_is_cut_to_its_panel_as_the_one_character_search_cuts_it(
    capsys, monkeypatch, tmp_path, choi_model, music_files
):
    """A note of 3,000 characters: the grid's title is cut with an ellipsis to the widest prefix that fits its
    panel, the one a search dropping one character at a time finds (the code bisects: such a note took minutes)."""
    from auralise.figures.panels import _shortened

    note = " ".join(f"word{i}" for i in range(500))[:3000]
    notes = write_notes(tmp_path / "notes.json", {"format": "auralise-notes", "features": {"1-0": note}})
    figures = capture_figures(monkeypatch)
    run_ok(capsys, "figure", "grid", choi_model, music_files["wav"], "--features", "1-0", "--notes", notes, "--out",
           tmp_path / "grid.png")  # fmt: skip
    fig = figures[-1]
    ax = next(a for a in fig.axes if a.get_title())
    title = ax.get_title()
    renderer = fig.canvas.get_renderer()
    assert title.endswith("…") and title.startswith("1-0\nword0 word1") and len(title) < 400  # broken at " · "
    assert ax.title.get_window_extent(renderer).width <= ax.get_window_extent(renderer).width

    def one_at_a_time(line: str) -> str:  # the search it replaced
        def fits(text: str) -> bool:
            ax.title.set_text(text)
            return ax.title.get_window_extent(renderer).width <= ax.get_window_extent(renderer).width

        while len(line) > 1 and not fits(line):
            line = (line[:-2] if line.endswith("…") else line[:-1]).rstrip() + "…"
        return line

    line = note[:400]
    assert _shortened(fig, ax, line) == one_at_a_time(line)


@pytest.mark.parametrize(
    "data,phrase",
    [
        ({"format": "auralise-notes", "features": {"1-0": 5}}, "must be a string"),
        ({"format": "auralise-notes", "features": {"1-0": ["kick"]}}, "must be a string"),
        ({"format": "auralise-notes", "features": {"1-0": None}}, "must be a string"),
        ({"format": "auralise-notes", "model": 5, "features": {"1-0": "kick"}}, "'model'"),
        ({"format": "auralise-notes", "features": ["1-0", "kick"]}, "not an auralise notes file"),
        ({"format": "other", "features": {"1-0": "kick"}}, "not an auralise notes file"),
        ({"format": "auralise-notes", "features": {"1-0": "a\ud800b"}}, "not Unicode text"),  # a lone surrogate
        ({"format": "auralise-notes", "features": {"1\udfff-0": "kick"}}, "not Unicode text"),
        pytest.param("[" * 100_000, "cannot read notes file", id="nested-too-deeply"),
    ],
)
def test_grid_rejects_notes_of_the_wrong_types(capsys, tmp_path, choi_model, music_files, data, phrase):
    notes = write_notes(tmp_path / "notes.json", data)
    out = tmp_path / "out" / "grid.pdf"
    code, _, err = run_cli(capsys, "figure", "grid", choi_model, music_files["wav"], "--features", "1-0", "--notes",
                           notes, "--out", out)  # fmt: skip
    assert_error(code, err, 2, phrase, str(notes))
    assert_nothing_written(tmp_path / "out")
