"""The listening page: one self-contained ``index.html`` for an exported listening set.

:func:`render_page` turns an export manifest (``DIR/manifest.json``, see :mod:`auralise.listening.export`) into an HTML
document that works straight from ``file://``: CSS and JavaScript are inline, nothing is fetched, no fonts or
scripts come from the network. The style and the script are package files (``assets/page.css``,
``assets/page.js``, read with :mod:`importlib.resources`) copied into every page when it is written. Per song the
page shows the original (spectrogram and player, kept in view for A/B listening) and, per layer, a grid of feature
cards (spectrogram thumbnail, player, activation statistics, a "silent" badge, a link to the full figure, a note
field).

Feature notes are per model feature (``"L-F"``, shared by every song's card of that feature), kept in the
browser's ``localStorage`` under a key that includes the model's sha256, and can be downloaded or loaded as a
JSON file::

    {"format": "auralise-notes", "version": 1, "model": "<sha256>", "features": {"3-38": "kick onsets"}}

Every string from the manifest is HTML-escaped; every file path is URL-quoted (``/`` kept) so song names with
spaces, ``#``, ``?``, ``&``, quotes or non-ASCII letters resolve from ``file://``.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

from auralise.choices import PAGE_NAME

__all__ = ["render_page", "write_page", "NOTES_FORMAT", "NOTES_VERSION", "PAGE_NAME"]

NOTES_FORMAT = "auralise-notes"
NOTES_VERSION = 1

# Front-end keys shown first, in this order, by the header's summary; the rest follow as key=value.
_FRONTEND_FIRST = ("kind", "sr", "n_fft", "hop_length")
MAX_SEEDS = 8  # "play from" buttons per card (--select topk:K records K seeds)
# Export options shown in the header, in this order; unknown keys follow.
_OPTION_ORDER = ("layers", "features", "method", "select", "tap", "resynth", "phase", "normalize")
# The faithfulness measures an export with --evaluate adds to each item (auralise.studies.evaluation.ITEM_MEASURES)
MEASURES = ("retention", "specificity", "deletion", "distance_to_song_db")
MEASURES_TITLE = (
    "fed back through the model (levels kept): retention = the feature's activation energy on this auralisation "
    "over that on the song; specificity = its retention over the median of the layer's other features'; deletion = "
    "its energy left on the song minus the auralisation; to song = dB distance of the long-term spectra"
)


def esc(value: object) -> str:
    """HTML-escape ``value`` (quotes included) for text or a quoted attribute."""
    return html.escape(str(value), quote=True)


def url_of(path: object) -> str:
    """A manifest path (relative, POSIX) as an escaped, URL-quoted attribute value; ``/`` is kept."""
    return esc(quote(str(path), safe="/"))


def num(value: object) -> str:
    """A statistic for display: 3 significant digits, an en dash when missing."""
    if isinstance(value, bool) or value is None:
        return "–"
    if isinstance(value, int | float):
        return f"{value:.3g}"
    return esc(value)


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


def json_script(data: object, element_id: str) -> str:
    """``data`` as an inert ``<script type="application/json">``; ``<``, ``>`` and ``&`` are \\u-escaped."""
    text = json.dumps(data, ensure_ascii=False, sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return f'<script type="application/json" id="{element_id}">{text}</script>'


def _frontend_summary(frontend: Mapping[str, Any]) -> str:
    """``stft · 22050 Hz · n_fft 512 · hop 256 (11.6 ms) · compression=log1p …`` (escaped)."""
    parts = []
    if "kind" in frontend:
        parts.append(esc(frontend["kind"]))
    sr = frontend.get("sr")
    if sr is not None:
        parts.append(f"{esc(sr)} Hz")
    if frontend.get("n_fft") is not None:
        parts.append(f"n_fft {esc(frontend['n_fft'])}")
    hop = frontend.get("hop_length")
    if hop is not None:
        ms = f" ({1000.0 * hop / sr:.1f} ms)" if _is_num(hop) and _is_num(sr) and sr else ""
        parts.append(f"hop {esc(hop)}{ms}")
    for key, value in frontend.items():
        if key not in _FRONTEND_FIRST and value is not None:
            parts.append(f"{esc(key)}={esc(_compact(value))}")
    return " · ".join(parts)


def _options_summary(options: Mapping[str, Any]) -> str:
    """``layers 1,3 · features all · method deconvnet …`` (escaped)."""
    keys = [k for k in _OPTION_ORDER if k in options] + [k for k in options if k not in _OPTION_ORDER]
    return " · ".join(f"{esc(k)} <b>{esc(_compact(options[k]))}</b>" for k in keys)


def _layer_heading(number: object, layer: Mapping[str, Any] | None) -> str:
    """``Layer 3 — features.6 · conv2d · 64 features · kernel 3×3 · RF 116.1 ms × 86.1 Hz`` (escaped)."""
    head = f"Layer {esc(number)}"
    if not layer:
        return head
    parts = []
    for key in ("path", "kind"):
        if layer.get(key):
            parts.append(esc(layer[key]))
    if layer.get("channels") is not None:
        parts.append(f"{esc(layer['channels'])} features")
    kernel = layer.get("kernel")
    if kernel is not None:
        kernel_text = "×".join(str(k) for k in kernel) if isinstance(kernel, list | tuple) else str(kernel)
        parts.append(f"kernel {esc(kernel_text)}")
    rf = [f"{layer[k]:g} {unit}" for k, unit in (("rf_ms", "ms"), ("rf_hz", "Hz")) if _is_num(layer.get(k))]
    if rf:
        parts.append("RF " + esc(" × ".join(rf)))
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
    rank_text = num(rank) if not _is_num(rank) else f"{int(rank)}" + (f"/{esc(channels)}" if channels else "")
    figure = item.get("figure")
    measure_attrs = "".join(f' data-{k}="{float(item[k])!r}"' for k in MEASURES if _is_num(item.get(k)))
    lines = [
        f'<article class="card{" silent" if silent else ""}" tabindex="0" data-key="{esc(key)}" '
        f'data-layer="{esc(layer)}" data-feature="{esc(feature)}"{rank_attr}{measure_attrs} aria-label="{esc(label)}">',
        '<div class="card-head">',
        f'<span class="fid">{esc(key)}</span>',
    ]
    if silent:
        why = item.get("silent_reason") or "never active"
        lines.append(f'<span class="badge" title="silent: {esc(why)} on this song">silent</span>')
    if figure:
        lines.append(f'<a class="fig" href="{url_of(figure)}" target="_blank" rel="noopener" tabindex="-1">figure</a>')
    lines.append("</div>")
    if item.get("png"):
        lines.append(
            f'<img class="thumb" src="{url_of(item["png"])}" loading="lazy" '
            f'alt="{esc("deconvolved spectrogram of " + label)}">'
        )
    if item.get("wav"):
        lines.append(f'<audio class="feat" controls preload="none" src="{url_of(item["wav"])}" tabindex="-1"></audio>')
    lines.append(
        f'<div class="stats">max {num(item.get("activation_max"))} · energy {num(item.get("activation_energy"))}'
        f" · rank {rank_text}</div>"
    )
    if any(k in item for k in MEASURES):  # export --evaluate
        lines.append(_measures(item))
    if isinstance(item.get("seeds"), list) and item.get("wav"):  # --select max/topk:K
        lines.append(_seeds(item["seeds"]))
    lines.append(
        f'<input class="note" type="text" data-key="{esc(key)}" placeholder="note on {esc(key)}…" '
        f'aria-label="{esc("note on feature " + key)}" autocomplete="off" spellcheck="false">'
    )
    lines.append("</article>")
    return "\n".join(lines)


def _seeds(seeds: list) -> str:
    """The "play from" buttons, one per seeded unit with a time (``time`` in the WAV; the label says where in the song
    and at what frequency). Values come from a manifest: only numbers are used."""
    buttons = []
    for seed in seeds[:MAX_SEEDS]:
        if not isinstance(seed, Mapping) or not _is_num(seed.get("time")):
            continue
        where = f"{float(seed['time']):.2f} s"
        if _is_num(seed.get("hz")):
            where += f" · {float(seed['hz']):.0f} Hz"
        buttons.append(f'<button type="button" class="seek" data-time="{float(seed["time"]):.6f}" '
                       f'title="play from this seeded unit">▶ {esc(where)}</button>')  # fmt: skip
    return f'<div class="seeds">play from {"".join(buttons)}</div>' if buttons else ""


def _measures(item: Mapping[str, Any]) -> str:
    """The faithfulness line of a card (``export --evaluate``): retention, specificity, deletion, distance to song."""
    to_song = item.get("distance_to_song_db")
    return (
        f'<div class="measures" title="{esc(MEASURES_TITLE)}">retention {num(item.get("retention"))} · '
        f"specificity {num(item.get('specificity'))} · deletion {num(item.get('deletion'))} · "
        f"to song {num(to_song)}{' dB' if _is_num(to_song) else ''}</div>"
    )


def _song(song: Mapping[str, Any], slug: str, layers: Mapping[Any, Mapping[str, Any]]) -> str:
    """One song's ``<section>``: the original (sticky) and a grid of cards per layer."""
    song_id = str(song.get("id", ""))
    original = song.get("original") or {}
    facts = []
    if _is_num(song.get("duration")):
        facts.append(f"{song['duration']:.1f} s")
    if song.get("sr") is not None:
        facts.append(f"{esc(song['sr'])} Hz")
    if song.get("sha256"):
        facts.append(f'<span title="sha256 {esc(song["sha256"])}">sha {esc(str(song["sha256"])[:12])}</span>')
    aside = [
        '<aside class="original">',
        f'<h2><a href="#{esc(slug)}">{esc(song_id)}</a></h2>',
    ]
    if song.get("source"):
        aside.append(f'<div class="meta" title="{esc(song["source"])}">{esc(song["source"])}</div>')
    if facts:
        aside.append(f'<div class="meta">{" · ".join(facts)}</div>')
    if original.get("png"):
        aside.append(f'<img class="orig-img" src="{url_of(original["png"])}" alt="{esc("spectrogram of " + song_id)}">')
    if original.get("wav"):
        aside.append(
            f'<audio class="orig-audio" controls preload="metadata" src="{url_of(original["wav"])}" '
            f'aria-label="{esc("original of " + song_id)}"></audio>'
        )
    notes = [str(n) for n in song.get("notes") or []]
    if notes:
        aside.append('<ul class="song-notes">' + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>")
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
        body.append(f'<div class="grid" data-layer="{esc(number)}">')
        body.extend(_card(song_id, item, channels) for item in items)
        body.append("</div>")
    if not by_layer:
        body.append('<p class="meta">No features were exported for this song.</p>')
    body.append("</div>")
    return "\n".join(
        [
            f'<section class="song" id="{esc(slug)}" data-song="{esc(song_id)}">',
            *aside,
            *body,
            "</section>",
        ]
    )


@functools.cache
def asset_text(name: str) -> str:
    """The text of ``auralise/listening/assets/<name>``: package data, read once and written inline into pages."""
    return (files("auralise.listening") / "assets" / name).read_text(encoding="utf-8")


TOOLBAR = """<div class="bar" role="toolbar" aria-label="listening page controls">
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


# With export --evaluate: sort by and filter on the faithfulness measures (assets/measures.js, measures.css)
MEASURED_TOOLBAR = TOOLBAR.replace(
    "</select></label>",
    '<option value="specificity">by specificity (highest first)</option>\n'
    '<option value="retention">by retention (highest first)</option></select></label>\n'
    '<label>min specificity <input type="number" id="min-specificity" min="0" step="any" placeholder="any" '
    'inputmode="decimal"></label>\n'
    '<label>min retention <input type="number" id="min-retention" min="0" step="any" placeholder="any" '
    'inputmode="decimal"></label>',
    1,
)


def _model_name(model: Mapping[str, Any]) -> str:
    """The model's name: the manifest's, else the stem of its file name, else ``model``."""
    return str(model.get("name") or Path(str(model.get("path") or "model")).stem)


def _header(manifest: Mapping[str, Any], songs: list, slugs: list[str]) -> list[str]:
    """The page header's lines: model name and sha, file, front-end, options, labels, software, song links."""
    model = manifest.get("model") or {}
    name, sha = _model_name(model), str(model.get("sha256") or "")
    frontend = manifest.get("frontend") or {}
    options = manifest.get("options") or {}
    software = manifest.get("software") or {}
    head_lines = [
        f'<h1>{esc(name)} <span class="sha" title="sha256 {esc(sha)}">{esc(sha[:12])}</span></h1>',
    ]
    if model.get("path"):
        head_lines.append(f'<div class="meta">model file {esc(model["path"])}</div>')
    if frontend:
        head_lines.append(f'<div class="meta">front-end: {_frontend_summary(frontend)}</div>')
    if options:
        head_lines.append(f'<div class="meta">{_options_summary(options)}</div>')
    labels = model.get("labels")
    if labels:
        head_lines.append(f'<div class="meta">labels: {esc(", ".join(str(x) for x in labels))}</div>')
    if software:
        head_lines.append(
            '<div class="software">' + " · ".join(f"{esc(k)} {esc(v)}" for k, v in software.items()) + "</div>"
        )
    if len(songs) > 1:
        links = "".join(
            f'<a href="#{esc(slug)}">{esc(song.get("id", ""))}</a>' for slug, song in zip(slugs, songs, strict=True)
        )
        head_lines.append(f'<nav class="songs" aria-label="songs">{links}</nav>')
    return head_lines


def page_data(model: Mapping[str, Any]) -> dict[str, Any]:
    """What the page's script reads (``#auralise-data``): the model's sha and name, where and how notes are kept."""
    name, sha = _model_name(model), str(model.get("sha256") or "")
    return {
        "model": sha,
        "name": name,
        "storageKey": f"auralise-notes:{sha or name}",
        "notesFormat": NOTES_FORMAT,
        "notesVersion": NOTES_VERSION,
        "notesFile": f"auralise-notes-{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}-{sha[:12] or 'model'}.json",
    }


def render_page(manifest: Mapping[str, Any]) -> str:
    """The listening page for an export manifest, as a complete HTML document.

    The page's style and script are the package files ``auralise/listening/assets/page.css`` and ``page.js``,
    written inline so the page needs nothing else.

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
    songs = list(manifest.get("songs") or [])
    layers = {layer.get("number"): layer for layer in manifest.get("layers") or [] if isinstance(layer, Mapping)}
    slugs = _slugs(str(song.get("id", "")) for song in songs)
    sections = [_song(song, slug, layers) for song, slug in zip(songs, slugs, strict=True)]
    if not sections:
        sections = ['<p class="meta">This listening set has no songs.</p>']
    title = f"{_model_name(model)} — auralise listening set"
    if not any(k in item for song in songs for item in song.get("items") or [] for k in MEASURES):
        return html_document(title, _header(manifest, songs, slugs), sections, page_data(model))
    return html_document(title, _header(manifest, songs, slugs), sections, page_data(model),
                         style=asset_text("measures.css"), toolbar=MEASURED_TOOLBAR,
                         script=asset_text("measures.js"))  # fmt: skip


def html_document(
    title: str,
    header: list[str],
    sections: list[str],
    data: dict,
    *,
    style: str = "",
    toolbar: str = TOOLBAR,
    script: str = "",
) -> str:
    """A self-contained page: the listening page's CSS (plus ``style``) and script (plus ``script``) inline,
    ``header`` lines in the top bar, the ``toolbar``, ``sections`` in ``<main>``, ``data`` for the script
    (:func:`page_data`)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            '<meta name="generator" content="auralise">',
            '<link rel="icon" href="data:,">',
            f"<title>{esc(title)}</title>",
            f"<style>\n{asset_text('page.css')}{style}</style>",
            "</head>",
            "<body>",
            '<header class="top">',
            *header,
            "</header>",
            toolbar,
            "<main>",
            *sections,
            "</main>",
            json_script(data, "auralise-data"),
            f"<script>\n{asset_text('page.js')}</script>",
            *([f"<script>\n{script}</script>"] if script else []),
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
    from auralise.io.files import atomic_path

    path = Path(out_dir) / PAGE_NAME
    text = render_page(manifest)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return path
