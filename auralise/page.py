"""The listening page: one self-contained ``index.html`` for an exported listening set.

:func:`render_page` turns an export manifest (``DIR/manifest.json``, see :mod:`auralise.export`) into an HTML
document that works straight from ``file://``: CSS and JavaScript are inline, nothing is fetched, no fonts or
scripts come from the network. Per song it shows the original (spectrogram and player, kept in view for A/B
listening) and, per layer, a grid of feature cards (spectrogram thumbnail, player, activation statistics, a
"silent" badge, a link to the full figure, a note field).

Feature notes are per model feature (``"L-F"``, shared by every song's card of that feature), kept in the
browser's ``localStorage`` under a key that includes the model's sha256, and can be downloaded or loaded as a
JSON file::

    {"format": "auralise-notes", "version": 1, "model": "<sha256>", "features": {"3-38": "kick onsets"}}

Every string from the manifest is HTML-escaped; every file path is URL-quoted (``/`` kept) so song names with
spaces, ``#``, ``?``, ``&``, quotes or non-ASCII letters resolve from ``file://``.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["render_page", "write_page", "NOTES_FORMAT", "NOTES_VERSION", "PAGE_NAME"]

PAGE_NAME = "index.html"
NOTES_FORMAT = "auralise-notes"
NOTES_VERSION = 1

# Front-end keys shown first, in this order, by the header's summary; the rest follow as key=value.
_FRONTEND_FIRST = ("kind", "sr", "n_fft", "hop_length")
# Export options shown in the header, in this order; unknown keys follow.
_OPTION_ORDER = ("layers", "features", "method", "select", "tap", "resynth", "phase", "normalize")


def _e(value: object) -> str:
    """HTML-escape ``value`` (quotes included) for text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def _url(path: object) -> str:
    """A manifest path (relative, POSIX) as an escaped, URL-quoted attribute value; ``/`` is kept."""
    return _e(quote(str(path), safe="/"))


def _num(value: object) -> str:
    """A statistic for display: 3 significant digits, an en dash when missing."""
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:.3g}"
    return _e(value)


def _compact(value: object, limit: int = 48) -> str:
    """A short text form of a manifest value (lists joined by commas, long values cut)."""
    if isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _slugs(ids: Iterable[str]) -> list[str]:
    """Unique, whitespace-free element ids (``song-<id>``) for the songs, in order."""
    out: list[str] = []
    seen: set[str] = set()
    for song_id in ids:
        base = "song-" + (re.sub(r"[^\w-]+", "-", song_id).strip("-") or "x")
        slug, n = base, 2
        while slug in seen:
            slug, n = f"{base}-{n}", n + 1
        seen.add(slug)
        out.append(slug)
    return out


def _json_script(data: object, element_id: str) -> str:
    """``data`` as an inert ``<script type="application/json">``; ``<``, ``>`` and ``&`` are \\u-escaped."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _frontend_summary(frontend: Mapping[str, Any]) -> str:
    """``stft · 22050 Hz · n_fft 512 · hop 256 (11.6 ms) · compression=log1p …`` (escaped)."""
    parts = []
    if "kind" in frontend:
        parts.append(_e(frontend["kind"]))
    sr = frontend.get("sr")
    if sr is not None:
        parts.append(f"{_e(sr)} Hz")
    if frontend.get("n_fft") is not None:
        parts.append(f"n_fft {_e(frontend['n_fft'])}")
    hop = frontend.get("hop_length")
    if hop is not None:
        ms = f" ({1000.0 * hop / sr:.1f} ms)" if _is_num(hop) and _is_num(sr) and sr else ""
        parts.append(f"hop {_e(hop)}{ms}")
    for key, value in frontend.items():
        if key not in _FRONTEND_FIRST and value is not None:
            parts.append(f"{_e(key)}={_e(_compact(value))}")
    return " · ".join(parts)


def _options_summary(options: Mapping[str, Any]) -> str:
    """``layers 1,3 · features all · method deconvnet …`` (escaped)."""
    keys = [k for k in _OPTION_ORDER if k in options] + [k for k in options if k not in _OPTION_ORDER]
    return " · ".join(f"{_e(k)} <b>{_e(_compact(options[k]))}</b>" for k in keys)


def _layer_heading(number: object, layer: Mapping[str, Any] | None) -> str:
    """``Layer 3 — features.6 · conv2d · 64 features · kernel 3×3 · RF 116.1 ms × 86.1 Hz`` (escaped)."""
    head = f"Layer {_e(number)}"
    if not layer:
        return head
    parts = []
    for key in ("path", "kind"):
        if layer.get(key):
            parts.append(_e(layer[key]))
    if layer.get("channels") is not None:
        parts.append(f"{_e(layer['channels'])} features")
    kernel = layer.get("kernel")
    if kernel is not None:
        kernel_text = "×".join(str(k) for k in kernel) if isinstance(kernel, list | tuple) else str(kernel)
        parts.append(f"kernel {_e(kernel_text)}")
    rf = [f"{layer[k]:g} {unit}" for k, unit in (("rf_ms", "ms"), ("rf_hz", "Hz")) if _is_num(layer.get(k))]
    if rf:
        parts.append("RF " + _e(" × ".join(rf)))
    return head + (' <span class="sub">— ' + " · ".join(parts) + "</span>" if parts else "")


def _is_num(value: object) -> bool:
    """A real number (bools excluded)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def _order(value: object) -> tuple[int, float, str]:
    """Sort key: numbers in numeric order first, anything else after them by its text."""
    return (0, float(value), "") if _is_num(value) else (1, 0.0, str(value))


def _card(song_id: str, item: Mapping[str, Any], channels: object) -> str:
    """One feature card (``<article class="card">``)."""
    layer, feature = item.get("layer"), item.get("feature")
    key = f"{layer}-{feature}"
    silent = bool(item.get("silent"))
    rank = item.get("rank")
    rank_attr = f' data-rank="{int(rank)}"' if _is_num(rank) else ""
    label = f"feature {key} on {song_id}"
    rank_text = _num(rank) if not _is_num(rank) else f"{int(rank)}" + (f"/{_e(channels)}" if channels else "")
    figure = item.get("figure")
    lines = [
        f'<article class="card{" silent" if silent else ""}" tabindex="0" data-key="{_e(key)}" '
        f'data-layer="{_e(layer)}" data-feature="{_e(feature)}"{rank_attr} aria-label="{_e(label)}">',
        '<div class="card-head">',
        f'<span class="fid">{_e(key)}</span>',
    ]
    if silent:
        why = item.get("silent_reason") or "never active"
        lines.append(f'<span class="badge" title="silent: {_e(why)} on this song">silent</span>')
    if figure:
        lines.append(f'<a class="fig" href="{_url(figure)}" target="_blank" rel="noopener" tabindex="-1">figure</a>')
    lines.append("</div>")
    if item.get("png"):
        lines.append(
            f'<img class="thumb" src="{_url(item["png"])}" loading="lazy" '
            f'alt="{_e("deconvolved spectrogram of " + label)}">'
        )
    if item.get("wav"):
        lines.append(f'<audio class="feat" controls preload="none" src="{_url(item["wav"])}" tabindex="-1"></audio>')
    lines.append(
        f'<div class="stats">max {_num(item.get("activation_max"))} · energy {_num(item.get("activation_energy"))}'
        f" · rank {rank_text}</div>"
    )
    lines.append(
        f'<input class="note" type="text" data-key="{_e(key)}" placeholder="note on {_e(key)}…" '
        f'aria-label="{_e("note on feature " + key)}" autocomplete="off" spellcheck="false">'
    )
    lines.append("</article>")
    return "\n".join(lines)


def _song(song: Mapping[str, Any], slug: str, layers: Mapping[Any, Mapping[str, Any]]) -> str:
    """One song's ``<section>``: the original (sticky) and a grid of cards per layer."""
    song_id = str(song.get("id", ""))
    original = song.get("original") or {}
    facts = []
    if _is_num(song.get("duration")):
        facts.append(f"{song['duration']:.1f} s")
    if song.get("sr") is not None:
        facts.append(f"{_e(song['sr'])} Hz")
    if song.get("sha256"):
        facts.append(f'<span title="sha256 {_e(song["sha256"])}">sha {_e(str(song["sha256"])[:12])}</span>')
    aside = [
        '<aside class="original">',
        f'<h2><a href="#{_e(slug)}">{_e(song_id)}</a></h2>',
    ]
    if song.get("source"):
        aside.append(f'<div class="meta" title="{_e(song["source"])}">{_e(song["source"])}</div>')
    if facts:
        aside.append(f'<div class="meta">{" · ".join(facts)}</div>')
    if original.get("png"):
        aside.append(f'<img class="orig-img" src="{_url(original["png"])}" alt="{_e("spectrogram of " + song_id)}">')
    if original.get("wav"):
        aside.append(
            f'<audio class="orig-audio" controls preload="metadata" src="{_url(original["wav"])}" '
            f'aria-label="{_e("original of " + song_id)}"></audio>'
        )
    notes = [str(n) for n in song.get("notes") or []]
    if notes:
        aside.append('<ul class="song-notes">' + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
    aside.append("</aside>")

    by_layer: dict[Any, list[Mapping[str, Any]]] = {}
    for item in song.get("items") or []:
        by_layer.setdefault(item.get("layer"), []).append(item)
    body = ['<div class="layers">']
    for number in sorted(by_layer, key=_order):
        items = sorted(by_layer[number], key=lambda it: _order(it.get("feature")))
        layer = layers.get(number)
        channels = (layer or {}).get("channels")
        body.append(f'<h3 class="layer">{_layer_heading(number, layer)}</h3>')
        body.append(f'<div class="grid" data-layer="{_e(number)}">')
        body.extend(_card(song_id, item, channels) for item in items)
        body.append("</div>")
    if not by_layer:
        body.append('<p class="meta">No features were exported for this song.</p>')
    body.append("</div>")
    return "\n".join([f'<section class="song" id="{_e(slug)}" data-song="{_e(song_id)}">', *aside, *body, "</section>"])


_CSS = """
:root { --bar: 2.75rem; --fg: #1d1d1f; --muted: #5f6368; --line: #d9dce1; --bg: #f6f7f9; --card: #fff;
  --accent: #1a5fb4; --play: #e8f0fb; color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); }
header.top { padding: .75rem 1rem .25rem; }
h1 { font-size: 1.25rem; margin: 0 0 .25rem; }
h1 .sha { font: 500 .8rem ui-monospace, monospace; color: var(--muted); }
.meta, .software, .sub, .stats, .song-notes { color: var(--muted); font-size: .8rem; }
.software { font-size: .72rem; }
nav.songs { font-size: .85rem; margin-top: .25rem; }
nav.songs a { margin-right: .75rem; }
.bar { position: sticky; top: 0; z-index: 5; display: flex; flex-wrap: wrap; align-items: center; gap: .4rem 1rem;
  min-height: var(--bar); padding: .4rem 1rem; background: rgba(246, 247, 249, .96);
  border-bottom: 1px solid var(--line); }
.bar button, .bar select { font: inherit; font-size: .85rem; padding: .15rem .5rem; }
.help { color: var(--muted); font-size: .78rem; }
kbd { font: .75rem ui-monospace, monospace; border: 1px solid var(--line); border-bottom-width: 2px;
  border-radius: 3px; padding: 0 .25rem; background: #fff; }
#status { font-size: .8rem; color: var(--accent); }
main { padding: 0 1rem 2rem; }
section.song { display: grid; grid-template-columns: minmax(220px, 21rem) minmax(0, 1fr); gap: 1rem;
  padding: 1rem 0; border-bottom: 2px solid var(--line); }
aside.original { position: sticky; top: calc(var(--bar) + .75rem); align-self: start;
  max-height: calc(100vh - var(--bar) - 1.5rem); overflow: auto; background: var(--card);
  border: 1px solid var(--line); border-radius: 6px; padding: .6rem; }
aside.original h2 { font-size: 1.05rem; margin: 0 0 .2rem; overflow-wrap: anywhere; }
aside.original h2 a { color: inherit; text-decoration: none; }
aside.original .meta { overflow-wrap: anywhere; }
.orig-img { display: block; width: 100%; height: auto; margin: .4rem 0; background: #eee; }
audio { display: block; width: 100%; height: 32px; }
.song-notes { margin: .4rem 0 0; padding-left: 1.1rem; }
h3.layer { font-size: .95rem; margin: .9rem 0 .4rem; }
h3.layer:first-child { margin-top: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(200px, 1fr)); gap: .6rem; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: .45rem;
  display: flex; flex-direction: column; gap: .3rem; scroll-margin: calc(var(--bar) + 1rem) 0 1rem; }
.card:focus { outline: 3px solid var(--accent); outline-offset: 1px; }
.card:focus-within { border-color: var(--accent); }
.card.playing, aside.original.playing { background: var(--play); border-color: var(--accent); }
.card.silent { opacity: .62; }
.hide-silent .card.silent { display: none; }
.card-head { display: flex; align-items: center; gap: .4rem; }
.fid { font-weight: 600; font-variant-numeric: tabular-nums; }
.badge { font-size: .68rem; text-transform: uppercase; letter-spacing: .04em; padding: 0 .35rem;
  border-radius: 3px; background: #f3d9a4; color: #6b4300; }
.fig { margin-left: auto; font-size: .78rem; }
.thumb { display: block; width: 100%; height: 96px; object-fit: fill; background: #eee; border-radius: 3px; }
.stats { font-variant-numeric: tabular-nums; }
input.note { width: 100%; font: inherit; font-size: .82rem; padding: .15rem .3rem; border: 1px solid var(--line);
  border-radius: 3px; }
input.note:focus { outline: 2px solid var(--accent); outline-offset: 0; }
@media (max-width: 820px) {
  .bar { position: static; }
  section.song { display: block; }
  aside.original { top: 0; z-index: 3; max-height: none; margin-bottom: .6rem; }
  aside.original .meta, .song-notes { display: none; }
  .orig-img { max-height: 72px; }
  .card { scroll-margin: 12rem 0 1rem; }
}
"""

_JS = r"""
(() => {
  "use strict";
  const data = JSON.parse(document.getElementById("auralise-data").textContent);
  const statusEl = document.getElementById("status");
  const say = (msg) => { statusEl.textContent = msg; };
  const KEY_RE = /^\d+-\d+$/;

  // ---- notes: per model feature "L-F", shared by every song's card, kept in localStorage ----
  let store = null;
  try { store = window.localStorage; store.getItem(data.storageKey); } catch (e) { store = null; }
  if (!store) say("notes cannot be kept by this browser here: use Download notes");
  let notes = {};
  const readStore = () => {
    if (!store) return {};
    try {
      const v = JSON.parse(store.getItem(data.storageKey) || "{}");
      return v && typeof v === "object" && !Array.isArray(v) ? v : {};
    } catch (e) { return {}; }
  };
  const save = () => {
    if (!store) return;
    try {
      store.setItem(data.storageKey, JSON.stringify(notes));
    } catch (e) {
      say("could not save notes: " + e.message);
    }
  };
  const fieldsByKey = new Map();
  for (const f of document.querySelectorAll("input.note")) {
    if (!fieldsByKey.has(f.dataset.key)) fieldsByKey.set(f.dataset.key, []);
    fieldsByKey.get(f.dataset.key).push(f);
  }
  const fill = () => {
    for (const [k, fields] of fieldsByKey) {
      const v = typeof notes[k] === "string" ? notes[k] : "";
      for (const f of fields) if (f.value !== v && f !== document.activeElement) f.value = v;
    }
  };
  notes = readStore();
  fill();
  window.addEventListener("storage", (e) => { if (e.key === data.storageKey) { notes = readStore(); fill(); } });
  document.addEventListener("input", (e) => {
    const f = e.target;
    if (!f.classList || !f.classList.contains("note")) return;
    const k = f.dataset.key;
    if (f.value.trim()) notes[k] = f.value; else delete notes[k];
    for (const g of fieldsByKey.get(k) || []) if (g !== f) g.value = f.value;
    save();
  });
  const byFeature = (a, b) => {
    const [la, fa] = a.split("-").map(Number), [lb, fb] = b.split("-").map(Number);
    return la - lb || fa - fb || (a < b ? -1 : a > b ? 1 : 0);
  };
  document.getElementById("download-notes").addEventListener("click", () => {
    const features = {};
    for (const k of Object.keys(notes).sort(byFeature)) features[k] = notes[k];
    const doc = { format: data.notesFormat, version: data.notesVersion, model: data.model, features: features };
    const blob = new Blob([JSON.stringify(doc, null, 2) + "\n"], { type: "application/json" });
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = data.notesFile;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 60000);
    say(Object.keys(features).length + " notes downloaded");
  });
  const fileInput = document.getElementById("notes-file");
  document.getElementById("load-notes").addEventListener("click", () => fileInput.click());
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    try {
      const doc = JSON.parse(await file.text());
      if (!doc || doc.format !== data.notesFormat || !doc.features || typeof doc.features !== "object") {
        throw new Error("not an auralise notes file");
      }
      if (doc.version !== data.notesVersion) throw new Error("unsupported notes version " + doc.version);
      if (doc.model && data.model && doc.model !== data.model) {
        throw new Error("they are for model " + String(doc.model).slice(0, 12) + ", this page shows "
          + data.model.slice(0, 12));
      }
      let n = 0;
      for (const [k, v] of Object.entries(doc.features)) {
        if (KEY_RE.test(k) && typeof v === "string" && v.trim()) { notes[k] = v; n += 1; }
      }
      save();
      fill();
      say("loaded " + n + " notes from " + file.name);
    } catch (e) {
      say("could not load notes: " + e.message);
    } finally {
      fileInput.value = "";
    }
  });

  // ---- feature players: Chromium refuses more than ~1000 media players on a page, so a card's player is
  // written preload="none" and loads its metadata only while near the viewport; a paused one is released
  // (back to preload="none", which holds no player) when it scrolls far away ----
  const warm = (a) => {
    if (a.preload === "metadata") return;
    a.preload = "metadata";  // Chromium resumes the deferred load by itself
  };
  const cool = (a) => {
    if (a.preload !== "metadata" || !a.paused) return;
    const src = a.getAttribute("src");
    a.preload = "none";
    a.removeAttribute("src");
    a.load();
    if (src !== null) a.setAttribute("src", src);
  };
  const feats = document.querySelectorAll("audio.feat");
  if ("IntersectionObserver" in window) {
    const io = new IntersectionObserver((entries) => {
      for (const en of entries) (en.isIntersecting ? warm : cool)(en.target);
    }, { rootMargin: "1000px 0px" });
    for (const a of feats) io.observe(a);
  }

  // ---- one player at a time, everywhere on the page ----
  const holder = (el) => el.closest(".card, aside.original");
  document.addEventListener("play", (e) => {
    for (const a of document.querySelectorAll("audio")) if (a !== e.target && !a.paused) a.pause();
    const h = holder(e.target);
    if (h) h.classList.add("playing");
  }, true);
  for (const type of ["pause", "ended", "emptied"]) {
    document.addEventListener(type, (e) => {
      const h = e.target.closest && holder(e.target);
      if (h) h.classList.remove("playing");
    }, true);
  }
  const toggle = (audio) => {
    if (!audio) return;
    if (audio.paused) {
      const p = audio.play();
      if (p && p.catch) p.catch((err) => say("cannot play: " + err.message));
    } else {
      audio.pause();
    }
  };

  // ---- sorting and filtering ----
  const rankOf = (c) => (c.dataset.rank ? Number(c.dataset.rank) : Infinity);
  const sortCards = (mode) => {
    const active = document.activeElement;
    for (const grid of document.querySelectorAll(".grid")) {
      const cards = Array.from(grid.children);
      cards.sort((a, b) => (mode === "rank" ? rankOf(a) - rankOf(b) || 0 : 0)
        || Number(a.dataset.feature) - Number(b.dataset.feature));
      grid.append(...cards);
    }
    if (active && active !== document.activeElement && active.focus) active.focus({ preventScroll: true });
  };
  const sortSel = document.getElementById("sort");
  sortSel.addEventListener("change", () => sortCards(sortSel.value));
  const hideSilent = document.getElementById("hide-silent");
  hideSilent.addEventListener("change", () => document.body.classList.toggle("hide-silent", hideSilent.checked));

  // ---- keyboard ----
  // Moves look at the focused card's grid, then at the neighbouring grids (other layers, other songs).
  const shown = (el) => el.offsetParent !== null;
  const gridCards = (grid) => Array.from(grid.children).filter(shown);
  const otherGrids = function* (grid, dir) {
    const all = Array.from(document.querySelectorAll(".grid"));
    for (let i = all.indexOf(grid) + dir; i >= 0 && i < all.length; i += dir) yield all[i];
  };
  const beside = (card, dir) => {
    const own = gridCards(card.parentElement);
    const next = own[own.indexOf(card) + dir];
    if (next) return next;
    for (const g of otherGrids(card.parentElement, dir)) {
      const list = gridCards(g);
      if (list.length) return dir > 0 ? list[0] : list[list.length - 1];
    }
    return null;
  };
  const vertical = (card, dir) => {
    const r0 = card.getBoundingClientRect();
    const x0 = r0.left + r0.width / 2;
    const pick = (list) => {  // nearest row in direction dir, then nearest column
      let best = null, bestDy = Infinity, bestDx = Infinity;
      for (const c of list) {
        const r = c.getBoundingClientRect();
        const dy = dir > 0 ? r.top - r0.top : r0.top - r.top;
        if (dy < 4) continue;
        const dx = Math.abs(r.left + r.width / 2 - x0);
        if (dy < bestDy - 4 || (Math.abs(dy - bestDy) <= 4 && dx < bestDx)) { best = c; bestDy = dy; bestDx = dx; }
      }
      return best;
    };
    const inGrid = pick(gridCards(card.parentElement));
    if (inGrid) return inGrid;
    for (const g of otherGrids(card.parentElement, dir)) {
      const list = gridCards(g);
      if (list.length) return pick(list);
    }
    return null;
  };
  const go = (card) => { if (card) { card.focus(); card.scrollIntoView({ block: "nearest" }); } };
  const originalFor = (el) => {
    let section = el && el.closest ? el.closest("section.song") : null;
    if (!section) {
      for (const s of document.querySelectorAll("section.song")) {
        if (s.getBoundingClientRect().bottom > 0) { section = s; break; }
      }
    }
    return section ? section.querySelector("audio.orig-audio") : null;
  };
  const typing = (el) => el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName));
  document.addEventListener("keydown", (e) => {
    if (e.defaultPrevented || e.altKey || e.ctrlKey || e.metaKey) return;
    const t = e.target;
    if (t.classList && t.classList.contains("note")) {
      if (e.key === "Escape" || e.key === "Enter") { e.preventDefault(); t.closest(".card").focus(); }
      return;
    }
    if (typing(t)) return;
    if (e.key === "o") { e.preventDefault(); toggle(originalFor(t)); return; }
    const isCard = t.classList && t.classList.contains("card");
    if (!isCard) {
      const onPage = t === document.body || t === document.documentElement;
      if ((e.key === "ArrowDown" || e.key === "ArrowRight") && onPage) {
        const first = Array.from(document.querySelectorAll(".card")).find(
          (c) => shown(c) && c.getBoundingClientRect().top >= 0);
        if (first) { e.preventDefault(); go(first); }
      }
      return;
    }
    switch (e.key) {
      case "ArrowRight": e.preventDefault(); go(beside(t, 1)); break;
      case "ArrowLeft": e.preventDefault(); go(beside(t, -1)); break;
      case "ArrowDown": e.preventDefault(); go(vertical(t, 1)); break;
      case "ArrowUp": e.preventDefault(); go(vertical(t, -1)); break;
      case " ": case "Enter": e.preventDefault(); toggle(t.querySelector("audio")); break;
      case "n": e.preventDefault(); t.querySelector("input.note").focus(); break;
      default: break;
    }
  });
})();
"""


def render_page(manifest: Mapping[str, Any]) -> str:
    """The listening page for an export manifest, as a complete HTML document.

    Parameters
    ----------
    manifest : dict
        An ``auralise-export`` manifest (``DIR/manifest.json``); paths in it are relative to ``DIR``, where the
        page is meant to be written (:func:`write_page`).

    Returns
    -------
    str
        The HTML, self-contained (inline CSS and JavaScript, no network access).

    Examples
    --------
    >>> html = render_page({"model": {"name": "m", "sha256": "ab" * 32}, "songs": []})
    >>> html.startswith("<!DOCTYPE html>")
    True
    """
    model = manifest.get("model") or {}
    name = str(model.get("name") or Path(str(model.get("path") or "model")).stem)
    sha = str(model.get("sha256") or "")
    frontend = manifest.get("frontend") or {}
    options = manifest.get("options") or {}
    software = manifest.get("software") or {}
    songs = list(manifest.get("songs") or [])
    layers = {layer.get("number"): layer for layer in manifest.get("layers") or [] if isinstance(layer, Mapping)}
    slugs = _slugs(str(song.get("id", "")) for song in songs)

    data = {
        "model": sha,
        "name": name,
        "storageKey": f"auralise-notes:{sha or name}",
        "notesFormat": NOTES_FORMAT,
        "notesVersion": NOTES_VERSION,
        "notesFile": f"auralise-notes-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{sha[:12] or 'model'}.json",
    }
    head_lines = [
        f'<h1>{_e(name)} <span class="sha" title="sha256 {_e(sha)}">{_e(sha[:12])}</span></h1>',
    ]
    if model.get("path"):
        head_lines.append(f'<div class="meta">model file {_e(model["path"])}</div>')
    if frontend:
        head_lines.append(f'<div class="meta">front-end: {_frontend_summary(frontend)}</div>')
    if options:
        head_lines.append(f'<div class="meta">{_options_summary(options)}</div>')
    labels = model.get("labels")
    if labels:
        head_lines.append(f'<div class="meta">labels: {_e(", ".join(str(x) for x in labels))}</div>')
    if software:
        head_lines.append(
            '<div class="software">' + " · ".join(f"{_e(k)} {_e(v)}" for k, v in software.items()) + "</div>"
        )
    if len(songs) > 1:
        links = "".join(
            f'<a href="#{_e(slug)}">{_e(song.get("id", ""))}</a>' for slug, song in zip(slugs, songs, strict=True)
        )
        head_lines.append(f'<nav class="songs" aria-label="songs">{links}</nav>')

    bar = """<div class="bar" role="toolbar" aria-label="listening page controls">
<label>order <select id="sort"><option value="feature">by feature number</option>
<option value="rank">by rank (activation energy)</option></select></label>
<label><input type="checkbox" id="hide-silent"> hide silent</label>
<button type="button" id="download-notes">Download notes</button>
<button type="button" id="load-notes">Load notes</button>
<input type="file" id="notes-file" accept=".json,application/json" hidden>
<span id="status" role="status" aria-live="polite"></span>
<span class="help">keys: <kbd>←</kbd><kbd>→</kbd><kbd>↑</kbd><kbd>↓</kbd> move · <kbd>Space</kbd>/<kbd>Enter</kbd>
play/pause · <kbd>o</kbd> original · <kbd>n</kbd> note · <kbd>Esc</kbd> back to card</span>
</div>"""

    sections = [_song(song, slug, layers) for song, slug in zip(songs, slugs, strict=True)]
    if not sections:
        sections = ['<p class="meta">This listening set has no songs.</p>']
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="auralise">',
            '<link rel="icon" href="data:,">',
            f"<title>{_e(name)} — auralise listening set</title>",
            f"<style>{_CSS}</style>",
            "</head>",
            "<body>",
            '<header class="top">',
            *head_lines,
            "</header>",
            bar,
            "<main>",
            *sections,
            "</main>",
            _json_script(data, "auralise-data"),
            f"<script>{_JS}</script>",
            "</body>",
            "</html>",
            "",
        ]
    )


def write_page(manifest: Mapping[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write :func:`render_page`'s HTML to ``out_dir/index.html`` atomically (replacing an older page).

    Parameters
    ----------
    manifest : dict
        The export manifest; its paths are relative to ``out_dir``.
    out_dir : str or PathLike
        The export folder (must exist).

    Returns
    -------
    Path
        The page's path.
    """
    from auralise.audio import atomic_path

    path = Path(out_dir) / PAGE_NAME
    text = render_page(manifest)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
