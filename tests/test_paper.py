"""`auralise figure ...`: the commands end to end (files, metadata, names from notes) and their bad input."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from test_cli import assert_error, assert_nothing_written, run_cli, run_ok

from auralise.figures.paper import parse_feature_pairs
from auralise.listening.export import file_sha256


def test_feature_pairs():
    assert parse_feature_pairs("1-9, 1-27,3-38,1-9") == [(1, 9), (1, 27), (3, 38)]


def notes_file(path, model_sha, features):
    path.write_text(json.dumps({"format": "auralise-notes", "version": 1, "model": model_sha, "features": features}))
    return path


def test_grid_png_and_pdf_with_names_from_notes(capsys, tmp_path, choi_model, music_files):
    notes = notes_file(tmp_path / "notes.json", file_sha256(choi_model), {"3-2": "kick onsets", "1-0": " "})
    png = tmp_path / "grid.png"
    out, err = run_ok(capsys, "figure", "grid", choi_model, music_files["wav"], "--features", "1-0,3-2,5-7",
                      "--notes", notes, "--original", "--out", png)  # fmt: skip
    assert out.strip() == f"wrote {png}" and "warning" not in err
    image = Image.open(png)
    assert image.size[0] == round(7.16 * 300)  # double-column width at 300 dpi
    assert "auralise figure grid" in image.text["Description"] and "--features 1-0,3-2,5-7" in image.text["Description"]
    from auralise.figures import paper

    titles = []
    original = paper._finish

    def capture(fig, path, command):
        titles.extend(ax.get_title() for ax in fig.axes if ax.get_title())
        return original(fig, path, command)

    pdf = tmp_path / "grid.pdf"
    try:
        paper._finish = capture
        run_ok(capsys, "figure", "grid", choi_model, music_files["wav"], "--features", "1-0,3-2,5-7", "--notes", notes,
               "--out", pdf, "--width", "single")  # fmt: skip
    finally:
        paper._finish = original
    assert titles == ["Feature 1-0", "Feature 3-2 · kick onsets", "Feature 5-7"]
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and b"/FontFile2" in data and b"auralise figure grid" in data


def test_grid_warns_about_another_models_notes(capsys, tmp_path, choi_model, music_files):
    notes = notes_file(tmp_path / "n.json", "0" * 64, {"1-0": "x"})
    _, err = run_ok(capsys, "figure", "grid", choi_model, music_files["wav"], "--features", "1-0", "--notes", notes,
                    "--out", tmp_path / "g.svg")  # fmt: skip
    assert err.startswith("warning: the notes") and "another model" in err
    assert (tmp_path / "g.svg").read_text().lstrip().startswith("<?xml")


def test_filters_and_receptive_field(capsys, tmp_path, choi_model):
    pdf = tmp_path / "filters.pdf"
    run_ok(capsys, "figure", "filters", choi_model, "--layer", "1", "--features", "0-5", "--out", pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    out, _ = run_ok(capsys, "figure", "receptive-field", choi_model, "--format", "csv")
    rows = out.strip().splitlines()
    assert len(rows) == 6 and rows[1].split(",")[:2] == ["1", "features.0"]
    md = tmp_path / "table.md"
    run_ok(capsys, "figure", "receptive-field", choi_model, "--out", md)
    assert "2205.9" in md.read_text()  # layer 5: 94 frames -> ((94 - 1) * 256 + 512) / 11025 s


@pytest.mark.parametrize(
    "args,phrases",
    [
        (["grid", "AUDIO", "--features", "3:38"], ["bad feature list", "LAYER-FEATURE"]),
        (["grid", "AUDIO", "--features", "3-99"], ["feature 99 is out of range"]),
        (["grid", "AUDIO", "--features", "9-0"], ["layer 9"]),
        (["grid", "AUDIO", "--features", "1-0", "--width", "huge"], ["width"]),
        (["grid", "AUDIO", "--features", "1-0", "--notes", "NOTES"], ["not an auralise notes file"]),
        (["filters", "--features", "top:3"], ["--features"]),
        (["filters", "--layer", "12"], ["layer 12"]),
    ],
)
def test_bad_input_is_a_usage_error(capsys, tmp_path, choi_model, music_files, args, phrases):
    bad_notes = tmp_path / "bad.json"
    bad_notes.write_text('{"hello": 1}')
    args = [{"AUDIO": str(music_files["wav"]), "NOTES": str(bad_notes)}.get(a, a) for a in args]
    out = tmp_path / "out" / "fig.png"
    code, _, err = run_cli(capsys, "figure", args[0], choi_model, *args[1:], "--out", out)
    assert_error(code, err, 2, *phrases)
    assert_nothing_written(tmp_path / "out")


def test_extension_and_existing_file(capsys, tmp_path, choi_model):
    code, _, err = run_cli(capsys, "figure", "filters", choi_model, "--out", tmp_path / "f.jpg")
    assert_error(code, err, 2, ".pdf, .svg, .png")
    target = tmp_path / "f.png"
    target.write_bytes(b"keep")
    code, _, err = run_cli(capsys, "figure", "filters", choi_model, "--out", target)
    assert_error(code, err, 2, "already exists", "--force")
    assert target.read_bytes() == b"keep"
    run_ok(capsys, "figure", "filters", choi_model, "--out", target, "--force")
    assert Image.open(target).size[0] > 1000


def test_attributes_command_writes_figure_and_csv(capsys, tmp_path, choi_model):
    from auralise.studies.attributes import AttributeTable

    pdf, csv_path = tmp_path / "fig10.pdf", tmp_path / "fig10.csv"
    out, _ = run_ok(capsys, "figure", "attributes", choi_model, "--instruments", "sine,piano", "--chords",
                    "major,minor", "--keys", "A3,G4", "--out", pdf, "--csv", csv_path, "--quiet")  # fmt: skip
    assert f"wrote {pdf} and {csv_path}" in out
    table = AttributeTable.from_csv(csv_path)
    assert sorted({(r.layer, r.attribute) for r in table.rows}) == sorted(
        (layer, attr) for layer in range(1, 6) for attr in ("instrument", "chord", "key")
    )
    assert all(r.n_pairs + r.n_skipped == 4 * 8 for r in table.rows)  # 4 pairs per attribute x 8 features
    assert pdf.read_bytes().startswith(b"%PDF") and b"auralise figure attributes" in pdf.read_bytes()
    code, _, err = run_cli(capsys, "figure", "attributes", choi_model, "--instruments", "kazoo", "--out",
                           tmp_path / "x.pdf", "--quiet")  # fmt: skip
    assert_error(code, err, 2, "kazoo")
