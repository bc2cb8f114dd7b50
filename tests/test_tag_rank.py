"""`auralise tag` as musicnn users know it (--length, --overlap, --taggram, per-patch JSON), and near-dead kernels in
`auralise inspect` and `auralise rank`.

Real models on real audio files: the shipped demo model (labels ballad, dance, hiphop) on a demo song, a small
choi2016 with planted near-dead kernels, and, where the musicnn 0.1.0 wheel can be had (cache, $AURALISE_MUSICNN_WHEEL
or `pip download`), the imported MTT_musicnn and MTT_vgg; those tests are skipped with the reason otherwise.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FRONTEND, build_choi_small
from test_cli import assert_error, run_cli, run_ok

from auralise import load_audio, load_model, save_model
from auralise.engine.layers import NEAR_DEAD_RATIO, near_dead_kernels

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "models" / "choi2016-synth.pt"
DANCE = ROOT / "demo_audio" / "dance.ogg"
SONG_FRAMES = 1 + 20 * 11025 // 256  # the 20-s dance demo through the shipped model's centred STFT: 862 frames


def tag_json(capsys, *args) -> dict:
    out, _ = run_ok(capsys, "tag", *args, "--json")
    return json.loads(out)


def reference_patches(model_path, audio, starts_frames, frames) -> np.ndarray:
    """The model's softmax on the model input cut by hand: (patches, classes)."""
    loaded = load_model(model_path)
    fe = loaded.frontend
    y, _ = load_audio(audio, sr=fe.sr)
    S = fe.model_input(fe.stft(y))  # BCFT: time is the last axis
    with torch.inference_mode():
        batch = torch.cat([S[..., s : s + frames] for s in starts_frames])
        return torch.softmax(loaded.module.eval()(batch), dim=1).numpy()


# ---------------------------------------------------------------------------------------------------- tag


def test_default_patches_are_the_models_own_and_length_reaches_them(capsys) -> None:
    default = tag_json(capsys, SHIPPED, DANCE, "--top", "3")
    assert default["patch_seconds"] == 4.0 and default["overlap_seconds"] == 0.0
    frames = 173  # 4 s at 11025 Hz, hop 256 (centred STFT): 1 + 44100 // 256
    n = len(default["patches"])
    assert n == SONG_FRAMES // frames == 4  # the remainder dropped
    assert [p["start"] for p in default["patches"]] == [round(i * frames * 256 / 11025, 3) for i in range(n)]
    probs = np.array([[p["probabilities"][k] for k in ("ballad", "dance", "hiphop")] for p in default["patches"]])
    ref = reference_patches(SHIPPED, DANCE, [i * frames for i in range(n)], frames)
    np.testing.assert_allclose(probs, ref, rtol=1e-5, atol=1e-6)
    assert list(default["mean"]) == ["dance", "hiphop", "ballad"] or max(default["mean"].values()) > 0.5
    explicit = tag_json(capsys, SHIPPED, DANCE, "--top", "3", "--length", "4")
    assert explicit["patches"] == default["patches"]


def test_overlap_cuts_patches_every_step_and_each_is_the_models_answer(capsys) -> None:
    result = tag_json(capsys, SHIPPED, DANCE, "--length", "4.2", "--overlap", "3", "--top", "3")
    frames = 1 + round(4.2 * 11025) // 256  # 181 frames
    step = frames - round(3 * 11025 / 256)  # 181 - 129 = 52 frames
    n = (SONG_FRAMES - frames) // step + 1
    assert len(result["patches"]) == n
    assert result["step_seconds"] == pytest.approx(step * 256 / 11025)
    starts = [p["start"] for p in result["patches"]]
    assert starts == [round(i * step * 256 / 11025, 3) for i in range(n)]
    probs = np.array([[p["probabilities"][k] for k in ("ballad", "dance", "hiphop")] for p in result["patches"]])
    np.testing.assert_allclose(probs, reference_patches(SHIPPED, DANCE, [i * step for i in range(n)], frames),
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    means = dict(zip(("ballad", "dance", "hiphop"), probs.mean(axis=0)))
    assert result["mean"] == pytest.approx(means, rel=1e-6)


def test_offset_moves_the_patch_starts_into_the_file(capsys) -> None:
    code, out, err = run_cli(capsys, "tag", SHIPPED, DANCE, "--offset", "6", "--duration", "9", "--json")
    if code != 0 and "--offset" in err:
        pytest.skip("tag has no --offset here")
    assert code == 0, err
    starts = [p["start"] for p in json.loads(out)["patches"]]
    assert starts[0] == pytest.approx(6.0) and len(starts) == 2


def test_text_output_names_the_patch_grid(capsys) -> None:
    out, _ = run_ok(capsys, "tag", SHIPPED, DANCE, "--overlap", "2", "--top", "2")
    lines = out.strip().splitlines()
    assert "patch(es) of 4 s every" in lines[0] and len(lines) == 3


@pytest.mark.parametrize(
    ("args", "phrases"),
    [
        (["--length", "30"], ["--length 30 s is longer than the song", "pass at most 20"]),
        (["--length", "0"], ["--length must be a positive number of seconds"]),
        (["--length", "-2"], ["--length must be a positive number of seconds"]),
        (["--length", "nan"], ["--length must be a positive number of seconds"]),
        (["--overlap", "4"], ["--overlap must be at least 0 s and shorter than the patch (4 s)"]),
        (["--overlap", "-1"], ["--overlap must be at least 0 s"]),
        (["--length", "1"], ["cannot take 1-s patches", "the shortest it takes is 3.69", "(160 frames)"]),
        (["--length", "10"], ["cannot take 10-s patches", "the longest it takes is 4.41", "(191 frames)"]),
        (["--length", "x"], ["--length"]),
    ],
)
def test_bad_lengths_are_one_line_and_write_nothing(capsys, tmp_path, args, phrases) -> None:
    fig = tmp_path / "taggram.png"
    code, out, err = run_cli(capsys, "tag", SHIPPED, DANCE, *args, "--taggram", fig)
    assert_error(code, err, 2, *phrases)
    assert not fig.exists() and out == ""


def test_taggram_file_and_figure(capsys, tmp_path) -> None:
    from auralise.figures.taggram import patch_edges, taggram_figure
    from auralise.studies.tagging import tag_song

    fig_path = tmp_path / "taggram.pdf"
    out, err = run_ok(capsys, "tag", SHIPPED, DANCE, "--overlap", "2", "--taggram", fig_path, "--json")
    assert json.loads(out)["patches"]  # stdout stays pure JSON; the "wrote" line goes to stderr
    assert f"wrote {fig_path}" in err
    data = fig_path.read_bytes()
    assert data.startswith(b"%PDF") and b"--taggram" in data  # the command line in the metadata
    code, _, err = run_cli(capsys, "tag", SHIPPED, DANCE, "--taggram", fig_path)
    assert_error(code, err, 2, "already exists", "--force")
    run_ok(capsys, "tag", SHIPPED, DANCE, "--taggram", fig_path, "--force")
    code, _, err = run_cli(capsys, "tag", SHIPPED, DANCE, "--taggram", tmp_path / "t.jpg")
    assert_error(code, err, 2, "--taggram must end in .pdf, .svg, .png")

    result = tag_song(SHIPPED, DANCE, overlap=2.0)
    fig = taggram_figure(result, top=2)
    ax = fig.axes[0]
    shown = ax.collections[0].get_array().reshape(2, -1)
    order = [result.labels.index(name) for name, _ in result.top(2)]
    np.testing.assert_allclose(shown, result.probabilities[:, order].T)  # rows: the top tags, most probable first
    assert [t.get_text() for t in ax.get_yticklabels()] == [name for name, _ in result.top(2)]
    assert ax.get_xlim() == pytest.approx(tuple(patch_edges(result.starts, 4.0)[[0, -1]]))
    assert fig.axes[-1].get_ylabel() == "probability"


# ---------------------------------------------------------------------------------------------------- near-dead


def test_near_dead_rule() -> None:
    assert NEAR_DEAD_RATIO == 1e-3
    assert near_dead_kernels([2.0, 2.1e-3, 1.9e-3, 0.0, 0.5]) == [2, 3]
    assert near_dead_kernels([0.0, 0.0]) == [0, 1]  # a layer of zeros is all near-dead
    assert near_dead_kernels([]) == []


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """The small choi2016 with features 2 and 5 of layer 2 scaled to 1e-4 of their weights and feature 7 of layer 1
    zeroed, each with a positive bias: active on every song (a constant), dead by their weights."""
    net = build_choi_small()
    with torch.no_grad():
        net.features[4].weight[[2, 5]] *= 1e-4
        net.features[4].bias[[2, 5]] = 0.5
        net.features[0].weight[7] = 0.0
        net.features[0].bias[7] = 0.5
    return save_model(net, tmp_path_factory.mktemp("m") / "planted.pt", frontend=FRONTEND)


def test_inspect_counts_near_dead_kernels(capsys, planted) -> None:
    out, _ = run_ok(capsys, "inspect", planted)
    lines = out.strip().splitlines()
    assert lines[1].split()[-1] == "near-dead"
    assert [line.split()[-1] for line in lines[2:]] == ["1", "2", "0", "0", "0"]
    doc = json.loads(run_ok(capsys, "inspect", planted, "--json")[0])
    assert [r["near_dead"] for r in doc["layers"]] == [[7], [2, 5], [], [], []]
    out, _ = run_ok(capsys, "inspect", SHIPPED)  # none in the shipped model: no column
    assert "near-dead" not in out
    assert all(r["near_dead"] == [] for r in json.loads(run_ok(capsys, "inspect", SHIPPED, "--json")[0])["layers"])


def test_rank_lists_near_dead_kernels_that_are_not_dead(capsys, planted, music_files) -> None:
    out, _ = run_ok(capsys, "rank", planted, music_files["wav"], "--layer", "2")
    assert "layer 2: 8 features, " in out and " dead, 2 near-dead" in out
    assert "near-dead (kernel L2 norm <= 1e-3 x the layer's largest; respond to no song): 2, 5" in out
    rows = [line.split() for line in out.splitlines() if line.strip()[:1].isdigit()]
    assert {int(r[1]) for r in rows if r[-1] == "near-dead"} == {2, 5}
    payload = json.loads(run_ok(capsys, "rank", planted, music_files["wav"], "--json")[0])
    weights = torch.load(planted, weights_only=True)["state_dict"]
    for entry, name in zip(payload["layers"], ("features.0", "features.4", "features.8")):
        norms = weights[f"{name}.weight"].flatten(1).double().norm(dim=1)
        by_feature = {f["feature"]: f for f in entry["features"]}
        for f, norm in enumerate(norms.tolist()):
            assert by_feature[f]["kernel_norm"] == pytest.approx(norm, rel=1e-12)
            assert by_feature[f]["near_dead"] == (norm <= 1e-3 * norms.max().item())
    assert [e["near_dead"] for e in payload["layers"]] == [[7], [2, 5], [], [], []]
    # active (their bias), so never "dead": rank said nothing about them before
    assert 7 not in payload["layers"][0]["dead"] and not {2, 5} & set(payload["layers"][1]["dead"])


# ---------------------------------------------------------------------------------------------------- musicnn


@pytest.fixture(scope="module")
def musicnn(imported) -> Path:
    return imported["dir"]


def test_musicnn_lengths_overlaps_and_taggram(capsys, tmp_path, musicnn) -> None:
    model = musicnn / "MTT_musicnn.pt"
    three = tag_json(capsys, model, DANCE, "--length", "3", "--top", "50")
    assert three["step_seconds"] == pytest.approx(188 * 256 / 16000)  # 3 s of a centred STFT: 188 frames
    assert len(three["patches"]) == (1251 - 188) // 188 + 1  # 20 s at 16 kHz: 1251 frames
    over = tag_json(capsys, model, DANCE, "--overlap", "2", "--top", "3")
    step = 187 - round(2 * 16000 / 256)
    assert over["step_seconds"] == pytest.approx(step * 256 / 16000)
    assert len(over["patches"]) == (1251 - 187) // step + 1
    assert list(over["mean"])[:2] == ["techno", "electronic"]
    short = tag_json(capsys, model, DANCE, "--length", "1", "--top", "3")  # musicnn models take any length
    assert len(short["patches"]) == (1251 - 63) // 63 + 1
    run_ok(capsys, "tag", model, DANCE, "--overlap", "2", "--taggram", tmp_path / "t.png")
    assert (tmp_path / "t.png").stat().st_size > 10_000
    vgg = musicnn / "MTT_vgg.pt"
    code, _, err = run_cli(capsys, "tag", vgg, DANCE, "--length", "1")
    assert_error(code, err, 2, "the shortest it takes is 2.064 s (130 frames)")
    code, _, err = run_cli(capsys, "tag", vgg, DANCE, "--length", "5")
    assert_error(code, err, 2, "the longest it takes is 3.072 s (193 frames)")


def test_musicnn_near_dead_kernels_match_the_checkpoint(capsys, musicnn) -> None:
    model = musicnn / "MTT_musicnn.pt"
    doc = json.loads(run_ok(capsys, "inspect", model, "--json")[0])
    state = torch.load(model, weights_only=True)["state_dict"]
    for row in doc["layers"]:
        norms = state[f"{row['path']}.weight"].flatten(1).double().norm(dim=1)
        assert row["near_dead"] == [f for f, v in enumerate(norms.tolist()) if v <= 1e-3 * norms.max().item()]
    counts = [len(r["near_dead"]) for r in doc["layers"]]
    assert counts == [126, 135, 23, 28, 6, 43, 1, 0]  # as the README says
    out, _ = run_ok(capsys, "rank", model, DANCE, "--layer", "1", "--top", "3")
    assert "layer 1: 204 features, 0 dead, 126 near-dead" in out
