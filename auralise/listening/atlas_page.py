"""The atlas page: per layer a grid of features; per feature its K strongest excerpts side by side.

Each excerpt shows its thumbnail, the auralised and the original player (lazy, one sound at a time), the song and
the time of the unit. Each feature card has the notes field of the listening page: notes are per model feature
(``"L-F"``), kept in the browser under the model's key and downloadable as the same ``auralise-notes`` JSON, so one
notes file serves an export and an atlas of one model. The page's script and style are the listening page's
(``assets/page.js``, ``page.css``) plus a few rules of its own; it is self-contained and works from ``file://``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auralise.choices import PAGE_NAME
from auralise.listening.page import esc, html_document, num, page_data, url_of

_STYLE = """
.atlas-layer { padding: 0 1rem; }
.atlas-layer h2 { margin: 1.2em 0 .4em; }
.features { display: grid; grid-template-columns: 1fr; gap: .8em; }
.feature.card { padding: .6em; }
.excerpts { display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: .5em; }
.excerpt { margin: 0; border: 1px solid #ddd; border-radius: 6px; padding: .3em; background: #fafafa; }
.excerpt img { width: 100%; height: 72px; object-fit: fill; image-rendering: pixelated; display: block; }
.excerpt audio { width: 100%; height: 28px; }
.excerpt figcaption { font-size: .78em; color: #444; }
.tags { font-size: .85em; color: #235; }
"""


def _excerpt(x: Mapping[str, Any], k: int) -> str:
    song, time = esc(x.get("song", "")), num(x.get("time"))
    return "\n".join(
        [
            '<figure class="excerpt">',
            f'<img loading="lazy" src="{url_of(x["original_png"])}" alt="top {k}: {song} around {time} s">',
            f'<img loading="lazy" src="{url_of(x["png"])}" alt="top {k}: the feature in that excerpt">',
            f'<audio class="feat" controls preload="none" src="{url_of(x["wav"])}" title="auralised"></audio>',
            f'<audio class="orig" controls preload="none" src="{url_of(x["original_wav"])}" title="original"></audio>',
            f"<figcaption>#{k} {song} · {time} s · activation {num(x.get('activation'))}</figcaption>",
            "</figure>",
        ]
    )


def _feature(entry: Mapping[str, Any]) -> str:
    layer, feature = entry["layer"], entry["feature"]
    key = f"{layer}-{feature}"
    stats = entry.get("stats") or {}
    excerpts = entry.get("excerpts") or []
    lines = [
        f'<article class="card feature" tabindex="0" data-key="{esc(key)}" data-feature="{esc(feature)}">',
        f"<h3>{esc(key)}</h3>",
        f'<div class="meta">mean {num(stats.get("mean"))} · max {num(stats.get("max"))} · active in '
        f"{num(100 * float(stats.get('active_fraction') or 0))} % of the songs</div>",
    ]
    tags = entry.get("tags")
    if tags:
        n = len(excerpts)
        lines.append('<div class="tags">' + " · ".join(f"{esc(t)}: {c} of {n}" for t, c in tags.items()) + "</div>")
    lines.append(f'<input class="note" data-key="{esc(key)}" placeholder="note for {esc(key)}" '
                 f'aria-label="note for feature {esc(key)}">')  # fmt: skip
    lines.append('<div class="excerpts">')
    dead = '<p class="meta">never active on this corpus</p>'
    lines += [_excerpt(x, k) for k, x in enumerate(excerpts, start=1)] or [dead]
    lines += ["</div>", "</article>"]
    return "\n".join(lines)


def render_atlas_page(atlas: Mapping[str, Any]) -> str:
    """The atlas page (a complete, self-contained HTML document) for an ``auralise-atlas`` JSON."""
    model = atlas.get("model") or {}
    name = Path(str(model.get("path") or "model")).stem
    by_layer: dict[Any, list] = {}
    for entry in atlas.get("features") or []:
        by_layer.setdefault(entry["layer"], []).append(entry)
    sections = []
    for layer, entries in sorted(by_layer.items()):
        n = esc(layer)
        sections.append(f'<section class="atlas-layer" id="layer{n}" data-layer="{n}">')
        sections.append(f"<h2>Layer {esc(layer)}</h2>")
        sections.append('<div class="features">' + "\n".join(_feature(e) for e in entries) + "</div></section>")
    songs, skipped = atlas.get("songs") or [], atlas.get("skipped") or []
    head = [
        f"<h1>{esc(name)} — feature atlas</h1>",
        f'<div class="meta">{len(songs)} songs · {len(skipped)} skipped · top '
        f"{esc((atlas.get('options') or {}).get('top'))} per feature · model sha256 "
        f"{esc(str(model.get('sha256') or '')[:12])}</div>",
        '<div class="meta">each excerpt: the song around the unit, the feature seeded at that unit, then two players: '
        "the auralised excerpt and the original</div>",
    ]
    if skipped:
        head.append('<details class="meta"><summary>skipped files</summary><ul>'
                    + "".join(f"<li>{esc(s['path'])}: {esc(s['reason'])}</li>" for s in skipped)
                    + "</ul></details>")  # fmt: skip
    data = page_data({"name": name, "sha256": model.get("sha256")})
    sections = sections or ['<p class="meta">This atlas has no features.</p>']
    return html_document(f"{name} — auralise feature atlas", head, sections, data, style=_STYLE)


def write_atlas_page(atlas: Mapping[str, Any], out_dir: str | os.PathLike) -> Path:
    """Write :func:`render_atlas_page` to ``out_dir/index.html`` atomically."""
    from auralise.io.files import atomic_path

    path = Path(out_dir) / PAGE_NAME
    with atomic_path(path) as tmp:
        tmp.write_text(render_atlas_page(atlas), encoding="utf-8")
    return path
