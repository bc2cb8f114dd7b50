"""The atlas's excerpt files: render every kept occurrence once, song by song (each song decoded once).

An excerpt already rendered by an earlier run of the same atlas (recorded in ``.atlas/render.jsonl`` with the same
song, unit and activation, its four files in place) is kept: that is ``--resume``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from auralise.io.files import parse_json

RENDER_JOURNAL = "render.jsonl"
NAMES = ("wav", "original_wav", "png", "original_png")


def excerpt_files(layer: int, feature: int, k: int) -> dict[str, str]:
    """The four files of the k-th occurrence (1-based), relative to the atlas folder."""
    base = f"layer{layer}_feature{feature}/top{k}"
    return {"wav": f"{base}.wav", "original_wav": f"{base}_original.wav", "png": f"{base}.png",
            "original_png": f"{base}_original.png"}  # fmt: skip


def _journal(out: Path) -> dict[tuple, dict]:
    """Finished excerpts of an earlier run, keyed by (layer, feature, k, song, unit, activation); files exist."""
    path = out / ".atlas" / RENDER_JOURNAL
    if not path.is_file() or path.is_symlink():
        return {}
    done = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            r = parse_json(line)
            key = (
                int(r["layer"]),
                int(r["feature"]),
                int(r["k"]),
                str(r["song"]),
                int(r["unit"]),
                float(r["activation"]),
            )
            times = {n: float(r[n]) for n in ("time", "start", "end", "excerpt_activation")}
        except (ValueError, KeyError, TypeError):
            continue
        if not all(map(math.isfinite, times.values())):
            continue
        files = excerpt_files(key[0], key[1], key[2])
        if all(
            r.get(n) == files[n] and (out / files[n]).is_file() and not (out / files[n]).is_symlink() for n in NAMES
        ):  # the record again from its checked fields only (the journal may come from someone else)
            done[key] = dict(zip(("layer", "feature", "k", "song", "unit", "activation"), key, strict=True)) | times
            done[key] |= files
    return done


def render_features(model, state, header: dict, features: dict[int, list[int]], out: Path, *, progress=None) -> list:
    """Render the occurrences of ``features`` ({layer: [features]}) kept in ``state``; the atlas.json entries."""
    from auralise.engine.layers import discover, time_geometry
    from auralise.io.audio import load_audio
    from auralise.listening.atlas import AtlasOptions
    from auralise.listening.atlas_render import excerpt_window, render_occurrence

    options = AtlasOptions(**header["options"])
    fe, example = model.frontend, model.example_input()
    graph = discover(model.module, example)
    lays = {n: graph.layer(str(n)) for n in features}
    geometry = {
        n: time_geometry(model.module, example, lay, tap=options.tap, layout=fe.layout) for n, lay in lays.items()
    }
    paths = {s["id"]: s["path"] for s in header["songs"]}
    wanted = [(n, f, k, occ) for n, fs in features.items() for f in fs for k, occ in enumerate(_active(state, n, f), 1)]
    done = _journal(out)
    records: dict[tuple, dict] = {}
    todo_by_song: dict[str, list] = {}
    for n, f, k, occ in wanted:
        key = (n, f, k, occ.song, occ.unit, occ.activation)
        if key in done:
            records[(n, f, k)] = done[key]
        else:
            todo_by_song.setdefault(occ.song, []).append((n, f, k, occ, key))
    total, finished = len(wanted), len(records)
    journal = out / ".atlas" / RENDER_JOURNAL
    journal.parent.mkdir(parents=True, exist_ok=True)
    for song in sorted(todo_by_song):
        y, info = load_audio(paths[song], sr=fe.sr, offset=options.offset, duration=options.duration)
        shift = info.offset  # times are the file's: the part read starts at --offset
        for n, f, k, occ, _ in todo_by_song[song]:
            window = excerpt_window(fe, geometry[n], occ.unit, len(y), options.excerpt)
            excerpt, wave, grid, mag, activation = render_occurrence(
                model, y, layer=lays[n], feature=f, unit_position=occ.position, time_axis=geometry[n].tap_axis,
                window=window, tap=options.tap, method=options.method, resynth=options.resynth,
            )  # fmt: skip
            files = excerpt_files(n, f, k)
            _write_excerpt(out, files, excerpt, wave, grid, mag, fe.sr)
            r = {"layer": n, "feature": f, "k": k, "song": occ.song, "unit": occ.unit, "activation": occ.activation,
                 "time": round(shift + occ.seconds, 4), "start": round(shift + window.start / fe.sr, 4),
                 "end": round(shift + window.stop / fe.sr, 4), "excerpt_activation": activation, **files}  # fmt: skip
            with open(journal, "a", encoding="utf-8") as j:
                j.write(json.dumps(r) + "\n")
            records[(n, f, k)] = r
            finished += 1
            if progress is not None:
                progress("render", finished, total)
    return _entries(state, features, records)


def _write_excerpt(out: Path, files: dict, excerpt, wave, grid, mag, sr: int) -> None:
    from auralise.io.audio import write_audio
    from auralise.io.files import atomic_path
    from auralise.render.thumbnail import write_thumbnail

    (out / files["wav"]).parent.mkdir(parents=True, exist_ok=True)
    write_audio(out / files["wav"], wave, sr, subtype="PCM_16")
    write_audio(out / files["original_wav"], np.clip(excerpt, -1.0, 1.0), sr, subtype="PCM_16")
    with atomic_path(out / files["png"]) as tmp:
        write_thumbnail(np.maximum(grid, 0.0), tmp, range_db=60.0)
    with atomic_path(out / files["original_png"]) as tmp:
        write_thumbnail(mag, tmp)


def _active(state, layer: int, feature: int) -> list:
    """The kept occurrences of a feature where it is active (activation > 0): a unit that never fired is not an
    occurrence, so a feature dead across the corpus has none."""
    top = state.features.get((layer, feature))
    return [o for o in top.occurrences if o.activation > 0] if top is not None else []


def _entries(state, features: dict[int, list[int]], records: dict) -> list[dict]:
    keys = ("song", "time", "start", "end", "activation", "unit", "excerpt_activation", *NAMES)
    entries = []
    for n, fs in sorted(features.items()):
        for f in fs:
            ft = state.features.get((n, f))
            stats = ft.stats() if ft is not None else {"mean": 0.0, "max": 0.0, "active_fraction": 0.0}
            excerpts = [{key: records[(n, f, k)][key] for key in keys} for k in range(1, len(_active(state, n, f)) + 1)]
            entries.append({"layer": n, "feature": f, "stats": stats, "excerpts": excerpts})
    return entries
