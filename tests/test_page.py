"""The listening page (auralise.listening.page): HTML checks without a browser, then the page itself in headless
Chromium.

The browser tests load a small fake export (real WAVs and PNGs, two songs, one named with a space, non-ASCII and
URL-special characters) from ``file://`` through Playwright driving the system Chromium (no browser download).
They skip when Chromium or the ``playwright`` package is missing.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from conftest import open_page

from auralise.listening.page import NOTES_FORMAT, NOTES_VERSION, render_page, write_page

SR = 22050
SHA = "0123456789abcdef" * 4
# Song ids double as folder names: the second has a space, non-ASCII, and characters URLs treat specially.
SONGS = ("dance", "café mix #1 & 'b'?")
# (layer, features); feature 12 of layer 1 is silent on the first song; 3-38 has a full figure.
LAYERS = {1: (0, 5, 12), 3: (2, 7, 38)}
HOSTILE = '</script><script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">'


def _png(path: Path, seed: int, size: tuple[int, int] = (160, 64)) -> None:
    """A small spectrogram-looking RGB PNG."""
    from PIL import Image

    w, h = size
    rng = np.random.default_rng(seed)
    level = rng.random((h, w)) * 0.35
    for k in range(1, 4):  # a few "harmonics", bright bands that wander
        rows = (h - 1 - (k * (8 + seed % 7) + 3 * np.sin(np.arange(w) / (5 + k)))).astype(int) % h
        level[rows, np.arange(w)] += 0.65 / k
    level = np.clip(level, 0, 1)
    rgb = np.stack([255 * level**0.5, 200 * level, 90 + 110 * (1 - level)], axis=-1).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb, "RGB").save(path)


def _wav(path: Path, freq: float, *, silent: bool = False, seconds: float = 0.5) -> None:
    """A short mono PCM_16 sine (or silence)."""
    import soundfile as sf

    t = np.arange(int(seconds * SR)) / SR
    y = np.zeros_like(t) if silent else 0.3 * np.sin(2 * np.pi * freq * t)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, y, SR, subtype="PCM_16")


def make_export(root: Path, *, hostile: bool = False) -> dict:
    """Write a fake listening set (WAVs, PNGs, manifest.json, index.html) under ``root``; return the manifest.

    With ``hostile``, manifest strings (model name, labels, song notes) carry HTML/script injection attempts.
    """
    songs = []
    for s, song_id in enumerate(SONGS):
        _wav(root / song_id / "original.wav", 220.0 * (s + 1))
        _png(root / song_id / "original.png", 100 + s, size=(320, 96))
        items = []
        for layer, features in LAYERS.items():
            energies = {f: float(10 + (f * 7 + s * 3) % 17) for f in features}
            order = sorted(features, key=lambda f: -energies[f])
            for f in features:
                silent = s == 0 and layer == 1 and f == 12
                stem = f"{song_id}/layer{layer}_feature{f}"
                _wav(root / f"{stem}.wav", 300.0 + 40 * f, silent=silent)
                _png(root / f"{stem}.png", layer * 100 + f)
                figure = None
                if (layer, f) == (3, 38):
                    figure = f"{stem}_figure.png"
                    _png(root / figure, 7, size=(400, 300))
                items.append(
                    {
                        "layer": layer,
                        "feature": f,
                        "wav": f"{stem}.wav",
                        "png": f"{stem}.png",
                        "figure": figure,
                        "activation_max": 0.0 if silent else 1.0 + f / 10,
                        "activation_energy": 0.0 if silent else energies[f],
                        "rank": len(features) if silent else order.index(f) + 1,
                        "silent": silent,
                        "gain": 0.8,
                    }
                )
        songs.append(
            {
                "id": song_id,
                "source": f"demo_audio/{song_id}.ogg",
                "sha256": f"{s:02d}" * 32,
                "duration": 0.5,
                "sr": SR,
                "original": {"wav": f"{song_id}/original.wav", "png": f"{song_id}/original.png"},
                "notes": ["resampled from 44100 Hz"] + ([HOSTILE] if hostile else []),
                "items": items,
            }
        )
    manifest = {
        "format": "auralise-export",
        "version": 1,
        "software": {"auralise": "0.1.0", "torch": "2.13.0", "numpy": "2.3.0", "python": "3.11.9"},
        "model": {
            "path": "models/choi2016-synth.pt",
            "sha256": SHA,
            "name": "choi2016" + (HOSTILE if hostile else ""),
            "labels": ["ballad", "dance", "hiphop"] + ([HOSTILE] if hostile else []),
        },
        "frontend": {"kind": "stft", "sr": SR, "n_fft": 512, "hop_length": 256, "compression": "log1p"},
        "options": {
            "layers": [1, 3],
            "features": "all",
            "method": "deconvnet",
            "select": "map",
            "tap": "block",
            "resynth": "mask",
            "phase": "original",
            "normalize": "peak",
        },
        "layers": [
            {"number": 1, "path": "features.0", "kind": "conv2d", "channels": 32, "kernel": [3, 3], "rf_ms": 34.8},
            {"number": 3, "path": "features.8", "kind": "conv2d", "channels": 64, "kernel": [3, 3], "rf_ms": 116.1},
        ],
        "songs": songs,
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    write_page(manifest, root)
    return manifest


class _Collector(HTMLParser):
    """Start tags with their attributes, and the text of each <script>."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[tuple[dict[str, str | None], str]] = []
        self._script: dict[str, str | None] | None = None

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._script = dict(attrs)
            self.scripts.append((self._script, ""))

    def handle_data(self, data):
        if self._script is not None:
            attrs, text = self.scripts[-1]
            self.scripts[-1] = (attrs, text + data)

    def handle_endtag(self, tag):
        if tag == "script":
            self._script = None

    def find(self, tag: str, **attrs: str) -> list[dict[str, str | None]]:
        return [a for t, a in self.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def _parse(text: str) -> _Collector:
    parser = _Collector()
    parser.feed(text)
    parser.close()
    return parser


@pytest.fixture(scope="module")
def export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The fake listening set, hostile strings included (they must show as text and run nothing)."""
    root = tmp_path_factory.mktemp("export")
    return root, make_export(root, hostile=True)


# ---------------------------------------------------------------- without a browser


def test_page_lists_every_file_url_quoted(export):
    root, manifest = export
    page = _parse((root / "index.html").read_text(encoding="utf-8"))
    items = [item for song in manifest["songs"] for item in song["items"]]
    audio_src = [a["src"] for a in page.find("audio")]
    img_src = [a["src"] for a in page.find("img")]
    assert len(page.find("section")) == len(SONGS)
    assert len({a["id"] for a in page.find("section")}) == len(SONGS)
    assert all(" " not in a["id"] for a in page.find("section"))
    assert len(page.find("article")) == len(items)
    assert all(a["tabindex"] == "0" for a in page.find("article"))
    for item in items:
        assert quote(item["wav"]) in audio_src
        assert quote(item["png"]) in img_src
    for song in manifest["songs"]:
        assert quote(song["original"]["wav"]) in audio_src
        assert quote(song["original"]["png"]) in img_src
    # The odd song name is percent-encoded in every URL: no raw space, '#', '?', '&' or quote.
    for src in audio_src + img_src:
        assert not set(src) & set(" #?&'\"é"), src
    assert "caf%C3%A9%20mix%20%231%20%26%20%27b%27%3F/original.wav" in audio_src
    # Originals load their metadata at once; feature players only near the viewport (the page's script does it).
    assert all("controls" in a for a in page.find("audio"))
    assert [a["preload"] for a in page.find("audio", **{"class": "orig-audio"})] == ["metadata"] * len(SONGS)
    assert {a["preload"] for a in page.find("audio", **{"class": "feat"})} == {"none"}
    assert all(a["loading"] == "lazy" and a["alt"] for a in page.find("img", **{"class": "thumb"}))
    figures = page.find("a", **{"class": "fig"})
    assert [a["href"] for a in figures] == [quote(f"{s}/layer3_feature38_figure.png") for s in SONGS]
    assert len(page.find("input", **{"class": "note"})) == len(items)
    # Self-contained: nothing loads from the network.
    text = (root / "index.html").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "fetch(" not in text


def test_page_escapes_manifest_strings(export):
    root, _ = export
    text = (root / "index.html").read_text(encoding="utf-8")
    page = _parse(text)
    assert "window.pwned" not in "".join(s for a, s in page.scripts if a.get("type") != "application/json")
    assert len(page.scripts) == 2  # the data block and the page's own script, nothing injected
    assert not [a for t, a in page.tags if t == "img" and "onerror" in a]
    assert "&lt;/script&gt;&lt;script&gt;window.pwned = 1" in text
    data_attrs, data_text = page.scripts[0]
    assert data_attrs == {"type": "application/json", "id": "auralise-data"}
    assert "</" not in data_text
    data = json.loads(data_text)
    assert data["model"] == SHA and data["name"].endswith(HOSTILE)
    assert SHA in data["storageKey"]


def test_write_page_replaces_atomically(tmp_path):
    manifest = {"model": {"name": "m", "sha256": SHA}, "songs": []}
    (tmp_path / "index.html").write_text("old", encoding="utf-8")
    path = write_page(manifest, tmp_path)
    assert path == tmp_path / "index.html"
    assert path.read_text(encoding="utf-8") == render_page(manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.html"]  # no .part file left


def test_page_inlines_the_packaged_css_and_js():
    from importlib.resources import files

    text = render_page({"model": {"name": "m", "sha256": SHA}, "songs": []})
    for name, tag in (("page.css", "style"), ("page.js", "script")):
        asset = (files("auralise.listening") / "assets" / name).read_text(encoding="utf-8")
        assert asset.strip() and f"<{tag}>\n{asset}</{tag}>" in text  # inline: the page fetches nothing


# ---------------------------------------------------------------- in headless Chromium


@pytest.fixture
def page(browser, export):
    """A fresh context (empty localStorage) with the export's page open; fails the test on any JS error."""
    root, _ = export
    with open_page(browser, root / "index.html") as page:
        yield page
        assert page.evaluate("window.pwned") is None


_WAIT_FOR_MEDIA = """
async () => {
  const start = performance.now();
  for (const img of document.images) img.loading = "eager";
  let kicked = false;
  for (;;) {
    const audios = Array.from(document.querySelectorAll("audio"));
    const badImgs = Array.from(document.images).filter((i) => !(i.complete && i.naturalWidth > 0));
    const badAudio = audios.filter((a) => !(a.readyState >= 1 && a.duration > 0));
    if (!badImgs.length && !badAudio.length) return { ok: true, images: document.images.length, audio: audios.length };
    const waited = performance.now() - start;
    if (waited > 20000) {
      return { ok: false, images: badImgs.map((i) => i.src),
               audio: badAudio.map((a) => [a.src, a.readyState, a.networkState, a.error && a.error.code]) };
    }
    if (!kicked && waited > 4000) {  // Chromium may defer some preload=metadata loads: ask again
      for (const a of badAudio) if (a.readyState === 0) a.load();
      kicked = true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
"""


def test_browser_loads_every_image_and_audio(page, export, tmp_path):
    root, manifest = export
    result = page.evaluate(_WAIT_FOR_MEDIA)
    assert result["ok"], result
    n_items = sum(len(song["items"]) for song in manifest["songs"])
    assert result["audio"] == n_items + len(SONGS)
    assert result["images"] == n_items + len(SONGS)  # thumbnails and original spectrograms, none else
    # The full-figure links resolve to the files (including the odd song name).
    hrefs = page.eval_on_selector_all("a.fig", "els => els.map(a => a.href)")
    assert hrefs == [(root / s / "layer3_feature38_figure.png").as_uri() for s in SONGS]
    loaded = page.evaluate(
        """hrefs => Promise.all(hrefs.map(h => new Promise(ok => {
             const i = new Image(); i.onload = () => ok(i.naturalWidth); i.onerror = () => ok(0); i.src = h; })))""",
        hrefs,
    )
    assert all(w == 400 for w in loaded)
    assert page.locator(".card.silent .badge").count() == 1
    assert page.locator(".card.silent").get_attribute("data-key") == "1-12"
    shot = tmp_path / "page.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 1000


def _note(page, song: int, key: str):
    return page.locator("section.song").nth(song).locator(f'input.note[data-key="{key}"]')


def test_browser_notes_are_shared_kept_downloaded_and_loaded(page, tmp_path):
    field = _note(page, 0, "3-38")
    field.click()
    field.press_sequentially("kick onsets")  # 'n' and 'o' inside the field are text, not shortcuts
    assert field.evaluate("el => el === document.activeElement")
    assert page.evaluate("Array.from(document.querySelectorAll('audio')).every(a => a.paused)")
    assert _note(page, 1, "3-38").input_value() == "kick onsets"
    assert _note(page, 1, "3-7").input_value() == ""

    page.reload()
    assert _note(page, 0, "3-38").input_value() == "kick onsets"
    assert _note(page, 1, "3-38").input_value() == "kick onsets"

    with page.expect_download() as info:
        page.click("#download-notes")
    download = info.value
    assert download.suggested_filename.endswith(".json")
    notes = json.loads(Path(download.path()).read_text(encoding="utf-8"))
    assert notes == {
        "format": NOTES_FORMAT,
        "version": NOTES_VERSION,
        "model": SHA,
        "features": {"3-38": "kick onsets"},
    }

    # Loading merges: new keys arrive, existing ones stay.
    mine = tmp_path / "notes.json"
    mine.write_text(json.dumps({**notes, "features": {"1-5": "hi-hat"}}), encoding="utf-8")
    page.set_input_files("#notes-file", str(mine))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('loaded 1 notes')")
    assert _note(page, 0, "1-5").input_value() == "hi-hat"
    assert _note(page, 1, "1-5").input_value() == "hi-hat"
    assert _note(page, 1, "3-38").input_value() == "kick onsets"

    # Notes of another model are refused with a message.
    other = tmp_path / "other.json"
    other.write_text(json.dumps({**notes, "model": "f" * 64, "features": {"1-0": "x"}}), encoding="utf-8")
    page.set_input_files("#notes-file", str(other))
    page.wait_for_function("document.getElementById('status').textContent.startsWith('could not load')")
    assert _note(page, 0, "1-0").input_value() == ""


def _active(page) -> dict:
    return page.evaluate(
        """() => { const el = document.activeElement;
                   return { tag: el.tagName, key: el.dataset.key || null, card: el.classList.contains("card"),
                            song: el.closest("section") ? el.closest("section").dataset.song : null,
                            top: el.getBoundingClientRect().top }; }"""
    )


def test_browser_keyboard(page):
    first = page.locator("section.song").nth(0).locator(".card").first
    first.focus()
    assert _active(page)["key"] == "1-0"
    page.keyboard.press("ArrowRight")
    here = _active(page)
    assert here["card"] and (here["key"], here["song"]) == ("1-5", SONGS[0])

    page.keyboard.press(" ")
    page.wait_for_function("!document.activeElement.querySelector('audio').paused")
    assert page.evaluate("document.querySelectorAll('.card.playing').length") == 1
    page.keyboard.press("o")  # the song's original takes over: one player at a time
    page.wait_for_function("!document.querySelector('section.song audio.orig-audio').paused")
    assert page.evaluate("document.activeElement.querySelector('audio').paused")
    assert page.evaluate("Array.from(document.querySelectorAll('audio')).filter(a => !a.paused).length") == 1
    page.keyboard.press("o")
    page.wait_for_function("Array.from(document.querySelectorAll('audio')).every(a => a.paused)")

    page.keyboard.press("ArrowDown")  # to the next layer's grid, below
    below = _active(page)
    assert below["card"] and below["key"].startswith("3-") and below["top"] > here["top"]
    page.keyboard.press("ArrowUp")
    assert _active(page)["key"] == "1-5"

    page.keyboard.press("n")
    field = _active(page)
    assert (field["tag"], field["key"]) == ("INPUT", "1-5")
    page.keyboard.press("n")  # typed into the note, focus stays
    page.keyboard.press("ArrowLeft")
    assert _active(page)["tag"] == "INPUT"
    assert _note(page, 0, "1-5").input_value() == "n"
    page.keyboard.press("Escape")
    back = _active(page)
    assert back["card"] and back["key"] == "1-5"
    page.keyboard.press("Enter")
    page.wait_for_function("!document.activeElement.querySelector('audio').paused")

    # Rank order: each grid's cards follow their rank; the focused card keeps focus.
    page.select_option("#sort", "rank")
    ranks = page.eval_on_selector_all(".grid", "gs => gs.map(g => Array.from(g.children, c => +c.dataset.rank))")
    assert all(r == sorted(r) for r in ranks)
    page.select_option("#sort", "feature")
    features = page.eval_on_selector_all(".grid", "gs => gs.map(g => Array.from(g.children, c => +c.dataset.feature))")
    assert features == [sorted(f) for f in features] and features[0] == [0, 5, 12]


def test_browser_large_set_stays_within_chromium_player_limit(browser, export):
    """Chromium refuses more than ~1000 media players on a page: 1,200 cards must still all be playable."""
    root, manifest = export
    songs = []
    for s in range(4):  # 4 songs x 5 layers x 60 features, reusing the export's files
        base = manifest["songs"][s % 2]
        items = [
            {**base["items"][f % 6], "layer": layer, "feature": f, "rank": f + 1, "silent": False}
            for layer in range(1, 6)
            for f in range(60)
        ]
        songs.append({**base, "id": f"{base['id']} {s}", "items": items})
    (root / "large.html").write_text(render_page({**manifest, "songs": songs}), encoding="utf-8")
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((root / "large.html").as_uri())
    assert page.locator(".card").count() == 1200
    warm = "document.querySelectorAll('audio.feat[preload=metadata]').length"
    page.wait_for_function(f"{warm} > 0")
    assert page.evaluate(warm) < 200
    page.locator(".card").last.focus()
    page.keyboard.press(" ")
    page.wait_for_function("!document.activeElement.querySelector('audio').paused")
    assert page.evaluate(warm) < 200
    assert errors == []
    context.close()
