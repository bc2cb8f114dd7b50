"""`auralise evaluate` and `auralise figure faithfulness` (issue 13): the evaluation table, its JSON schema (as the
README documents it) and CSV, the constructed cases at the table/CLI level (the whole song keeps everything; a
hand-built band-pass model's features keep their bands and are specific), bad input, and the comparison figure."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from test_cli import assert_error, run_cli, run_ok
from test_faithfulness import BANDS, bandpass, demo_song_path  # noqa: F401 - fixtures (and the registered model)

from auralise.choices import METHODS, RESYNTH_MODES, SELECTIONS
from auralise.session import RenderOptions
from auralise.studies.evaluation import CSV_FIELDS, MEASURES, EvaluationEntry, EvaluationTable
from auralise.studies.faithfulness import evaluate_layer

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NUMBER = (int, float)
# The JSON schema of README "Faithfulness": key -> type (None allowed where a measure can be missing)
TOP = {"format": str, "schema": int, "model": dict, "region": dict, "measures": dict, "results": list}
RESULT = {"song": str, "options": dict, "layer": int, "layer_path": str, "median_distinguishability_db": NUMBER,
          "medians": dict, "features": list}  # fmt: skip
OPTIONS = ("method", "select", "tap", "resynth", "phase", "normalize")
FEATURE = {"feature": int, "silent": bool}


def check_schema(doc: dict) -> None:
    """``doc`` has exactly the documented keys, each of the documented type (measures: a number or null)."""
    assert set(doc) == set(TOP), set(doc) ^ set(TOP)
    for key, kind in TOP.items():
        assert isinstance(doc[key], kind), key
    assert doc["format"] == "auralise-evaluation" and doc["schema"] == 1
    assert set(doc["model"]) == {"path", "sha256"} and set(doc["region"]) == {"offset", "duration"}
    assert set(doc["measures"]) == set(MEASURES)
    for result in doc["results"]:
        assert set(result) == set(RESULT), set(result) ^ set(RESULT)
        for key, kind in RESULT.items():
            value = result[key]
            assert isinstance(value, kind) or (kind is NUMBER and value is None), key
        assert set(OPTIONS) <= set(result["options"]) and result["options"]["normalize"] == "none"
        assert set(result["medians"]) == set(MEASURES)
        assert all(v is None or isinstance(v, NUMBER) for v in result["medians"].values())
        for feature in result["features"]:
            assert set(feature) == set(FEATURE) | set(MEASURES)
            assert isinstance(feature["feature"], int) and isinstance(feature["silent"], bool)
            assert all(feature[m] is None or isinstance(feature[m], NUMBER) for m in MEASURES)


def test_the_readme_documents_every_key():
    text = README.read_text(encoding="utf-8")
    section = text[text.index("## Faithfulness") :]
    section = section[: section.index("\n## ", 4)] if "\n## " in section[4:] else section
    for key in [*TOP, *RESULT, *OPTIONS, *FEATURE, *MEASURES]:
        assert re.search(rf"\b{re.escape(key)}\b", section), key
    for word in ("retention", "specificity", "deletion", "tap", "normalize none"):
        assert word in section


def test_the_whole_song_keeps_everything_in_the_table(bandpass, demo_song_path, tmp_path):  # noqa: F811
    song = bandpass.song(demo_song_path, duration=4.0)
    result = evaluate_layer(bandpass, song, 1, waves=np.stack([song.y] * len(BANDS)))
    table = EvaluationTable([EvaluationEntry("whole", RenderOptions(normalize="none"), "conv", result)])
    doc = json.loads(table.to_json(tmp_path / "t.json"))
    check_schema(doc)
    assert json.loads((tmp_path / "t.json").read_text()) == doc
    (res,) = doc["results"]
    assert [f["retention"] for f in res["features"]] == pytest.approx([1.0] * 3, abs=1e-5)
    assert [f["specificity"] for f in res["features"]] == pytest.approx([1.0] * 3, abs=1e-5)
    assert [f["distance_to_song_db"] for f in res["features"]] == pytest.approx([0.0] * 3, abs=1e-4)
    assert res["median_distinguishability_db"] == pytest.approx(0.0, abs=1e-4)  # three copies of one song
    table.to_csv(tmp_path / "t.csv")
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert tuple(rows[0]) == CSV_FIELDS and len(rows) == 3
    assert [float(r["retention"]) for r in rows] == pytest.approx([1.0] * 3, abs=1e-5)


def test_evaluate_json_of_a_band_pass_model(capsys, bandpass, demo_song_path, tmp_path):  # noqa: F811
    out = tmp_path / "eval.json"
    stdout, err = run_ok(capsys, "evaluate", bandpass.model_path, demo_song_path, "--duration", "4", "--json",
                         "--out", out, "--device", "cpu", "--quiet")  # fmt: skip
    doc = json.loads(stdout)
    check_schema(doc)
    assert json.loads(out.read_text()) == doc and f"wrote {out}" in err
    (res,) = doc["results"]
    assert res["layer"] == 1 and res["song"] == demo_song_path and res["options"]["resynth"] == "distinct"
    assert [f["feature"] for f in res["features"]] == [0, 1, 2]  # default: all features
    assert all(f["specificity"] > 100 for f in res["features"])  # each band hardly excites the others
    assert all(0.1 < f["retention"] < 1.0 for f in res["features"])
    assert res["median_distinguishability_db"] > 10
    assert doc["region"] == {"offset": 0.0, "duration": 4.0}


def test_evaluate_prints_a_table_per_layer(capsys):
    stdout, err = run_ok(capsys, "evaluate", "models/choi2016-synth.pt", "demo_audio/dance.ogg", "-l", "1,2", "-f",
                         "0,9", "--duration", "3", "--device", "cpu", "--resynth", "magnitude")  # fmt: skip
    lines = stdout.strip().splitlines()
    assert "resynth magnitude" in lines[0] and "normalize none" in lines[0]
    assert lines[1].split()[:3] == ["layer", "features", "distinguish."]
    assert [line.split()[:2] for line in lines[2:]] == [["1", "2"], ["2", "2"]]
    assert "evaluate" in err  # progress lines on stderr


@pytest.mark.parametrize(
    ("extra", "phrases"),
    [
        (["-l", "9"], ["layer 9", "out of range"]),
        (["-f", "0-99"], ["feature 64", "out of range"]),
        (["-f", "x"], ["--feature"]),
        (["--out", "eval.txt"], ["--out", ".json"]),
        (["--select", "best"], ["selection"]),
        (["--duration", "-1"], ["duration"]),
    ],
)
def test_bad_evaluate_input_is_one_line_exit_2(capsys, tmp_path, monkeypatch, extra, phrases):
    monkeypatch.chdir(tmp_path)
    model, song = (ROOT / p for p in ("models/choi2016-synth.pt", "demo_audio/dance.ogg"))
    code, _, err = run_cli(capsys, "evaluate", model, song, "--quiet", *extra)
    assert_error(code, err, 2, *phrases)
    assert list(tmp_path.iterdir()) == []


def test_evaluate_refuses_to_overwrite_without_force(capsys, tmp_path):
    out = tmp_path / "e.json"
    out.write_text("{}")
    code, _, err = run_cli(capsys, "evaluate", "models/choi2016-synth.pt", "demo_audio/hiphop.ogg", "--out", out)
    assert_error(code, err, 2, "already exists", "--force")
    assert out.read_text() == "{}"


def test_faithfulness_figure_and_csv(capsys, tmp_path):
    from PIL import Image

    png, table = tmp_path / "faith.png", tmp_path / "faith.csv"
    stdout, _ = run_ok(capsys, "figure", "faithfulness", "models/choi2016-synth.pt", "demo_audio/dance.ogg",
                       "--out", png, "--csv", table, "-l", "1,3", "-f", "0,20,40", "--duration", "4",
                       "--width", "single", "--device", "cpu")  # fmt: skip
    assert f"wrote {png} and {table}" in stdout
    rows = list(csv.DictReader(table.open()))
    assert tuple(rows[0]) == CSV_FIELDS
    selects = [s for s in SELECTIONS if ":" not in s]
    assert len(rows) == 2 * len(METHODS) * len(RESYNTH_MODES) * len(selects) * 3
    combos = {(r["layer"], r["method"], r["resynth"], r["select"], r["feature"]) for r in rows}
    assert len(combos) == len(rows)  # one row per (song, layer, method, mode, select, feature)
    assert {r["feature"] for r in rows} == {"0", "20", "40"} and {r["layer"] for r in rows} == {"1", "3"}
    assert {r["resynth"] for r in rows} == set(RESYNTH_MODES) and {r["method"] for r in rows} == set(METHODS)
    image = np.asarray(Image.open(png).convert("RGB")).astype(float)
    assert image.std() > 10  # not blank
    colours = {tuple(c) for c in image.reshape(-1, 3)[::7].astype(int) // 32}
    assert len(colours) >= 6  # the modes' colours, greys, white


def test_figure_faithfulness_bad_output_is_one_line(capsys, tmp_path):
    code, _, err = run_cli(capsys, "figure", "faithfulness", "models/choi2016-synth.pt", "demo_audio/dance.ogg",
                           "--out", tmp_path / "f.txt")  # fmt: skip
    assert_error(code, err, 2, "--out")
    code, _, err = run_cli(capsys, "figure", "faithfulness", "models/choi2016-synth.pt", "demo_audio/dance.ogg",
                           "--out", tmp_path / "f.png", "--csv", tmp_path / "f.txt")  # fmt: skip
    assert_error(code, err, 2, "--csv")
    assert list(tmp_path.iterdir()) == []
