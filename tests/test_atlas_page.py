"""The atlas page in headless Chromium: every thumbnail and player loads, players start lazy, no console errors,
notes are the listening page's (kept across reloads, downloaded as the same auralise-notes JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import open_page
from test_page import _WAIT_FOR_MEDIA

from auralise.listening.atlas import AtlasOptions, atlas
from auralise.listening.page import NOTES_FORMAT, NOTES_VERSION

MODEL = "models/choi2016-synth.pt"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("atlas") / "atlas"
    songs = ["demo_audio/dance.ogg", "demo_audio/hiphop.ogg", "demo_audio/ballad.ogg"]
    return atlas(MODEL, songs, out, options=AtlasOptions(layers="2", features="22,52,60", top=3)), out


@pytest.fixture
def page(browser, built):
    _, out = built
    with open_page(browser, out / "index.html", width=1300) as page:
        yield page


def test_atlas_page_loads_lazily_then_every_picture_and_player(page, built, tmp_path):
    result, _ = built
    excerpts = sum(len(f["excerpts"]) for f in result["features"])
    assert excerpts == 6  # 2-22 and 2-52: 3 each; 2-60 is never active on these songs
    assert page.locator(".feature.card").count() == 3
    assert "never active on this corpus" in page.locator('.feature.card[data-key="2-60"]').inner_text()
    lazy = page.evaluate("Array.from(document.querySelectorAll('audio')).filter(a => a.preload === 'none').length")
    assert lazy >= excerpts  # the originals stay unloaded until played
    media = page.evaluate(_WAIT_FOR_MEDIA)
    assert media["ok"], media
    assert media["audio"] == 2 * excerpts and media["images"] == 2 * excerpts
    shot = tmp_path / "atlas.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000


def test_atlas_notes_are_the_listening_page_notes(page, built):
    result, _ = built
    field = page.locator('input.note[data-key="2-22"]')
    field.click()
    field.press_sequentially("kick")
    page.reload()
    assert page.locator('input.note[data-key="2-22"]').input_value() == "kick"
    with page.expect_download() as info:
        page.click("#download-notes")
    notes = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert notes == {
        "format": NOTES_FORMAT,
        "version": NOTES_VERSION,
        "model": result["model"]["sha256"],
        "features": {"2-22": "kick"},
    }
