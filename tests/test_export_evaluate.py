"""`auralise export --evaluate` (issue 13): the faithfulness measures in each feature's manifest record, equal to
`auralise evaluate`'s; the page shows them, sorts the cards by them and hides those below a minimum (headless
Chromium); without --evaluate the manifest and the page carry none of it."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import soundfile as sf
from conftest import SR, open_page
from test_cli import run_ok

from auralise.listening.page import MEASURES, render_page

LAYERS, FEATURES = "1,3", "0-5"


@pytest.fixture(scope="module")
def song(tmp_path_factory) -> Path:
    from auralise.demo import synth

    path = tmp_path_factory.mktemp("song") / "dance.wav"
    sf.write(path, synth.generate("dance", seconds=4.0, sr=SR, seed=1).mix, SR, subtype="PCM_16")
    return path


def _export(out: Path, model, song, *extra) -> dict:
    from auralise.cli import main

    with pytest.raises(SystemExit) as info:
        main([str(a) for a in ("export", model, song, "--out", out, "--layers", LAYERS, "--features", FEATURES,
                               "--quiet", *extra)])  # fmt: skip
    assert info.value.code in (0, None)
    return json.loads((out / "manifest.json").read_text())


@pytest.fixture(scope="module")
def exports(tmp_path_factory, choi_model, song) -> dict[str, tuple[Path, dict]]:
    root = tmp_path_factory.mktemp("exports")
    return {name: (root / name, _export(root / name, choi_model, song, *extra))
            for name, extra in (("plain", ()), ("measured", ("--evaluate",)))}  # fmt: skip


def test_records_carry_the_measures_of_auralise_evaluate(capsys, exports, choi_model, song):
    _, manifest = exports["measured"]
    assert manifest["options"]["evaluate"] is True
    items = manifest["songs"][0]["items"]
    assert len(items) == 2 * 6
    for item in items:
        for key in MEASURES:
            assert item[key] is None or isinstance(item[key], float), (key, item)
        if not item["silent"]:
            assert item["retention"] > 0 and item["specificity"] > 0
    stdout, _ = run_ok(capsys, "evaluate", choi_model, song, "-l", LAYERS, "-f", FEATURES, "--json", "--quiet",
                       "--device", "cpu")  # fmt: skip
    doc = json.loads(stdout)
    expected = {(r["layer"], f["feature"]): f for r in doc["results"] for f in r["features"]}
    for item in items:
        want = expected[(item["layer"], item["feature"])]
        for key in MEASURES:
            if want[key] is None:
                assert item[key] is None
            else:
                assert math.isclose(item[key], want[key], rel_tol=1e-4), (key, item[key], want[key])


def test_without_evaluate_nothing_changes(exports):
    (plain_dir, plain), (_, measured) = exports["plain"], exports["measured"]
    assert "evaluate" not in plain["options"]
    for a, b in zip(plain["songs"][0]["items"], measured["songs"][0]["items"]):
        assert not set(MEASURES) & set(a)
        assert {k: v for k, v in b.items() if k not in MEASURES} == a
    page = (plain_dir / "index.html").read_text()
    assert page == render_page(plain)
    for marker in ("min-specificity", "by specificity", 'class="measures"', "data-specificity"):
        assert marker not in page


def _order(page) -> list[list[int]]:
    return page.eval_on_selector_all(
        ".grid", "gs => gs.map(g => Array.from(g.children).map(c => Number(c.dataset.feature)))"
    )


def _visible(page) -> int:
    return page.eval_on_selector_all(".card", "cs => cs.filter(c => c.offsetParent !== null).length")


def test_page_sorts_and_filters_by_the_measures(browser, exports, tmp_path):
    folder, manifest = exports["measured"]
    items = manifest["songs"][0]["items"]
    spec = {(it["layer"], it["feature"]): it["specificity"] for it in items}
    with open_page(browser, folder / "index.html") as page:
        assert page.locator(".card .measures").count() == len(items)
        assert "specificity" in page.locator(".card .measures").first.inner_text()
        before = _order(page)
        assert before == [[0, 1, 2, 3, 4, 5]] * 2
        page.select_option("#sort", "specificity")
        after = _order(page)
        for number, order in zip((1, 3), after):
            values = [spec[(number, f)] if spec[(number, f)] is not None else -math.inf for f in order]
            assert values == sorted(values, reverse=True)
        assert after != before  # the specificities are not in feature order
        page.select_option("#sort", "retention")
        assert _order(page) != after or len({it["retention"] for it in items}) == 1
        page.select_option("#sort", "feature")
        assert _order(page) == before
        finite = sorted(v for v in spec.values() if v is not None)
        threshold = finite[len(finite) // 2]
        page.fill("#min-specificity", repr(threshold))
        shown = _visible(page)
        assert shown == sum(1 for v in finite if v >= threshold) < len(items)
        assert "hidden" in page.locator("#status").inner_text()
        page.fill("#min-specificity", "")
        assert _visible(page) == len(items)
        page.screenshot(path=str(tmp_path / "measured_page.png"), full_page=True)
    assert (tmp_path / "measured_page.png").stat().st_size > 10_000
