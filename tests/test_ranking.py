"""`auralise rank`: features ordered by activation energy, checked against a plain forward pass; dead features."""

from __future__ import annotations

import json

import numpy as np
import torch
from conftest import SR, build_choi_small
from test_cli import assert_error, run_cli, run_ok

from auralise import load_model
from auralise.studies.ranking import rank_features


def reference_energies(model_path, y: np.ndarray, layer: int) -> np.ndarray:
    """Sum of squares per channel of the block output of layer L, by slicing the Sequential conv stack."""
    loaded = load_model(model_path)
    fe = loaded.frontend
    S = fe.model_input(fe.stft(y))
    with torch.no_grad():
        out = loaded.module.features[: 4 * layer](S)  # conv, relu, pool, dropout per block
    return (out[0] ** 2).sum(dim=(1, 2)).numpy()


def test_ranks_match_a_plain_forward_pass(choi_model, music_files):
    from auralise.io.audio import load_audio

    ranked = rank_features(choi_model, music_files["wav"], layers=[1, 3, 5])
    assert list(ranked) == [1, 3, 5]
    y, _ = load_audio(music_files["wav"], sr=SR)
    for layer, rows in ranked.items():
        ref = reference_energies(choi_model, y, layer)
        assert [r.rank for r in rows] == list(range(1, len(ref) + 1))
        assert [r.feature for r in rows] == [int(i) for i in np.argsort(-ref, kind="stable")]
        np.testing.assert_allclose([r.energy for r in rows], np.sort(ref)[::-1], rtol=1e-4)
        assert [r.dead for r in rows] == [bool(ref[r.feature] == 0) for r in rows]
        assert abs(sum(r.share for r in rows) - 1.0) < 1e-6


def test_dead_features_are_reported(tmp_path, music_files):
    """Kill two features of layer 2 (bias -100): they are ranked last and listed as dead."""
    from conftest import FRONTEND

    from auralise import save_model

    net = build_choi_small()
    with torch.no_grad():
        net.features[4].bias[[1, 6]] = -100.0
    path = save_model(net, tmp_path / "dead.pt", frontend=FRONTEND, labels=[f"c{i}" for i in range(10)])
    rows = rank_features(path, music_files["wav"], layers=[2])[2]
    assert {r.feature for r in rows if r.dead} >= {1, 6}
    assert all(r.energy == 0 and r.rank > 6 for r in rows if r.feature in (1, 6))


def test_cli_table_json_and_top(capsys, choi_model, music_files):
    out, _ = run_ok(capsys, "rank", choi_model, music_files["wav"], "--layer", "2", "--top", "3")
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.strip().startswith("rank")))
    assert len([line for line in lines[header + 1 :] if line.strip()[:1].isdigit()]) == 3
    assert "dead" in out
    out, _ = run_ok(capsys, "rank", choi_model, music_files["wav"], "--json")
    payload = json.loads(out)
    assert [entry["layer"] for entry in payload["layers"]] == [1, 2, 3, 4, 5]
    assert all(len(entry["features"]) == 8 for entry in payload["layers"])
    energies = [f["energy"] for f in payload["layers"][0]["features"]]
    assert energies == sorted(energies, reverse=True)


def test_export_top_k_is_the_ranking(capsys, tmp_path, choi_model, music_files):
    top = [r.feature for r in rank_features(choi_model, music_files["wav"], layers=[3])[3][:3]]
    run_ok(capsys, "export", choi_model, music_files["wav"], "--out", tmp_path / "s", "--layers", "3",
           "--features", "top:3", "--quiet")  # fmt: skip
    items = json.loads((tmp_path / "s" / "manifest.json").read_text())["songs"][0]["items"]
    assert [i["feature"] for i in items] == sorted(top)


def test_bad_input(capsys, tmp_path, choi_model, music_files):
    code, _, err = run_cli(capsys, "rank", choi_model, music_files["wav"], "--layer", "9")
    assert_error(code, err, 2, "layer 9")
    code, _, err = run_cli(capsys, "rank", choi_model, tmp_path / "none.wav")
    assert_error(code, err, 2, "none.wav")
    code, _, err = run_cli(capsys, "rank", choi_model, music_files["wav"], "--top", "0")
    assert_error(code, err, 2, "--top")
