"""The feature atlas: what excites each feature across a corpus, with the excerpts to listen to.

Layout of ``DIR``::

    DIR/atlas.json                                    the atlas (schema below), written last
    DIR/layer{L}_feature{F}/top{k}.wav, .png          the k-th strongest occurrence, auralised, and its thumbnail
    DIR/layer{L}_feature{F}/top{k}_original.wav, .png the original excerpt
    DIR/.atlas/state.json                             the merged scan state (AtlasState); a shard's whole output
    DIR/.atlas/songs/<song>.json                      one song's scan state: the basis of --resume

``atlas.json``::

    {"format": "auralise-atlas", "version": 1, "model": {"path", "sha256"}, "options": {...},
     "songs": [{"id", "path", "seconds"}], "skipped": [{"path", "reason"}],
     "features": [{"layer", "feature", "stats": {"mean", "max", "active_fraction"},
                   "excerpts": [{"song", "time", "start", "end", "activation", "wav", "original_wav", "png"}]}]}

Scan: one forward pass per song up to the deepest requested layer (chunked for long songs) keeps, per feature, the
song's strongest units (:mod:`auralise.studies.atlas_scan`); song states merge exactly in any order, so the
``local`` and ``ray`` engines, shards (``--shard i/N``, then :func:`merge`) and resumed runs give the same atlas.
Render: each kept occurrence becomes an excerpt auralised by seeding that unit (:mod:`.atlas_render`).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.choices import ENGINES
from auralise.errors import BadAudioError, BadParameterError, OutputError, check_choice
from auralise.io.files import parse_json

if TYPE_CHECKING:
    from auralise.studies.atlas_scan import AtlasState

FORMAT, VERSION = "auralise-atlas", 1
STATE_DIR = ".atlas"
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".mp3", ".aif", ".aiff", ".opus", ".au", ".w64")
LIST_EXTENSIONS = (".txt", ".lst", ".list", ".m3u")

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass(frozen=True)
class AtlasOptions:
    """What decides the content of an atlas (equal options and inputs give equal atlases)."""

    layers: str = "all"
    features: str = "all"
    top: int = 9
    per_song: int = 1
    excerpt: float | None = None  # seconds; None: receptive field + context, at least 3 s
    method: str = "deconvnet"
    resynth: str = "mask"  # ATLAS_RESYNTH_MODES
    tap: str = "block"
    offset: float = 0.0  # seconds: the part of every song scanned and rendered starts here (--offset)
    duration: float | None = None  # seconds of every song from offset (--duration); None: to the end

    def check(self) -> None:
        from auralise.choices import ATLAS_RESYNTH_MODES, LAYER_RELATIVE_MODES, METHODS, TAPS
        from auralise.errors import check_choice

        check_choice(self.method, METHODS, "method")
        if self.resynth in LAYER_RELATIVE_MODES:
            raise BadParameterError(
                f"the atlas renders single units in short excerpts; the {self.resynth} resynthesis needs the whole "
                "layer's projections over a whole song: use --resynth mask or magnitude"
            )
        check_choice(self.resynth, ATLAS_RESYNTH_MODES, "resynthesis mode")
        check_choice(self.tap, TAPS, "tap point")
        for name, value in (("--top", self.top), ("--per-song", self.per_song)):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1000:
                raise BadParameterError(f"{name} must be an integer from 1 to 1000, got {value!r}")
        if self.excerpt is not None and not (np.isfinite(self.excerpt) and 0.5 <= self.excerpt <= 600):
            raise BadParameterError(f"--excerpt must be 0.5 to 600 seconds, got {self.excerpt!r}")
        from auralise.io.audio import check_region

        check_region(self.offset, self.duration)


def expand_inputs(inputs: Sequence[str | os.PathLike]) -> tuple[list[Path], list[dict]]:
    """Audio files from files, folders (recursive, by extension) and text files listing paths (one per line,
    relative to the list; ``#`` comments); (files in order, once each; skipped entries with a reason)."""
    files: list[Path] = []
    skipped: list[dict] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.suffix.lower() in AUDIO_EXTENSIONS and q.is_file())
            files += found
        elif p.suffix.lower() in LIST_EXTENSIONS and p.is_file():
            for line in p.read_text(encoding="utf-8", errors="replace").splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line) if Path(line).is_absolute() else p.parent / line
                    (files.append(q) if q.is_file() else skipped.append({"path": str(q), "reason": "not found"}))
        elif p.is_file():
            files.append(p)
        else:
            skipped.append({"path": str(p), "reason": "not found"})
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(f)
    return unique, skipped


def song_key(path: str | os.PathLike) -> str:
    """A stable id for a song: its file stem made safe, and 8 hex digits of its resolved path (the same in every
    shard and run; it also orders tied occurrences)."""
    p = Path(path)
    stem = re.sub(r"[^\w.\-]+", "_", p.stem).strip("._") or "song"
    return f"{stem[:40]}-{hashlib.sha256(str(p.resolve()).encode()).hexdigest()[:8]}"


def shard_of(paths: Sequence[Path], shard: tuple[int, int] | None) -> list[Path]:
    """Shard ``i`` of ``n`` (1-based): every n-th song by key order, so shards are disjoint and cover the corpus."""
    if shard is None:
        return list(paths)
    i, n = shard
    ordered = sorted(paths, key=song_key)
    return [p for k, p in enumerate(ordered) if k % n == i - 1]


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"i/N"`` -> (i, N) with 1 <= i <= N; None stays None."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise BadParameterError(f"--shard must be i/N with 1 <= i <= N, such as 1/4; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _write_json(path: Path, data: dict) -> None:
    from auralise.io.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")


def scan_corpus(model, paths: Sequence[Path], layers: Sequence[int], options: AtlasOptions, out: Path, *,
                engine: str = "local", workers: int = 1, address: str | None = None,
                progress: Progress | None = None):  # fmt: skip
    """Scan every song (skipping those whose state is already in ``out/.atlas/songs``); returns (merged state,
    songs [{id, path, seconds}], skipped [{path, reason}])."""
    from auralise.listening.atlas_engines import run_scan
    from auralise.studies.atlas_scan import AtlasState, merge_states

    songs_dir = out / STATE_DIR / "songs"
    songs_dir.mkdir(parents=True, exist_ok=True)
    keys = {song_key(p): p for p in paths}
    done: dict[str, dict] = {}
    for key in keys:
        f = songs_dir / f"{key}.json"
        if f.is_file() and not f.is_symlink():
            try:
                record = _song_record(parse_json(f.read_text(encoding="utf-8")), key)
            except ValueError:
                continue  # not a record this code wrote: the song is scanned again
            if (record.get("offset", 0.0), record.get("duration")) == (options.offset, options.duration):
                done[key] = record  # a scan of the same part of the song (--offset/--duration)
    todo = [(k, str(p)) for k, p in keys.items() if k not in done]
    for key, record in run_scan(model, todo, layers, options, engine=engine, workers=workers, address=address,
                                progress=progress):  # fmt: skip
        _write_json(songs_dir / f"{key}.json", record)
        done[key] = record
    states, songs, skipped = [], [], []
    for key, p in keys.items():
        record = done[key]
        if "skipped" in record:
            skipped.append({"path": str(p), "reason": record["skipped"]})
            continue
        states.append(AtlasState.from_json(record["state"]))
        songs.append({"id": key, "path": str(p), "seconds": record["seconds"]})
    songs.sort(key=lambda s: s["id"])
    return merge_states(states, options.top), songs, skipped


def _song_record(record: object, key: str) -> dict:
    """A song's scan record read back from ``.atlas/songs`` (a file that may come from someone else), checked:
    ``{"skipped": reason}``, or a state of this song alone with its length; ValueError for anything else."""
    from auralise.studies.atlas_scan import AtlasState

    if not isinstance(record, dict):
        raise ValueError("not a scan record")
    if "skipped" in record:
        if not isinstance(record["skipped"], str):
            raise ValueError("a skipped song without its reason")
        return record
    try:
        songs = AtlasState.from_json(record["state"]).songs
        seconds = float(record["seconds"])
    except (KeyError, TypeError) as exc:
        raise ValueError(f"not a scan record ({exc})") from None
    if songs != [key] or not seconds >= 0:
        raise ValueError("not this song's scan record")
    return record


def scan_record(scanner, key: str, path: str, options: AtlasOptions) -> dict:
    """One song's scan as a JSON-able record: {"state", "seconds"} or {"skipped": reason}."""
    from auralise.errors import AuraliseError
    from auralise.io.audio import load_audio

    fe = scanner.model.frontend
    region = {"offset": options.offset, "duration": options.duration}
    try:
        y, _ = load_audio(path, sr=fe.sr, min_samples=fe.n_fft, **region)
    except (BadAudioError, AuraliseError) as exc:
        return {"skipped": str(exc), **region}
    state = scanner.scan(y, song=key, top=options.top, per_song=options.per_song)
    return {"state": state.to_json(), "seconds": round(len(y) / fe.sr, 3), **region}


def atlas(
    model_path: str | os.PathLike,
    inputs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    options: AtlasOptions = AtlasOptions(),
    engine: str = "local",
    workers: int = 1,
    address: str | None = None,
    shard: str | None = None,
    resume: bool = False,
    force: bool = False,
    metadata: str | os.PathLike | None = None,
    trust: bool = False,
    progress: Progress | None = None,
) -> dict:
    """Build the atlas of ``model_path`` over ``inputs`` in ``out_dir`` (see the module docstring); returns
    atlas.json's content. With ``shard`` only the scan runs (``out/.atlas/state.json``); :func:`merge` finishes."""
    from auralise.io.files import folder_lock
    from auralise.io.modelfile import load_model
    from auralise.listening.export import file_sha256

    options.check()
    shard_spec = parse_shard(shard)
    check_choice(engine, ENGINES, "engine")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BadParameterError(f"--workers must be a positive integer, got {workers!r}")
    model = load_model(model_path, trust=trust)
    layers, features = _selection(model, options)
    paths, skipped = expand_inputs(inputs)
    paths = shard_of(paths, shard_spec)
    if not paths:
        raise BadParameterError("no audio files found in the inputs; pass audio files, folders or a list file")
    tags = read_metadata(metadata) if metadata else None
    out = Path(out_dir)
    _check_out(out, resume=resume, force=force)
    out.mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        state, songs, more = scan_corpus(model, paths, layers, options, out, engine=engine, workers=workers,
                                         address=address, progress=progress)  # fmt: skip
        header = _header(model_path, file_sha256(model_path), options, songs, sorted(skipped + more, key=str))
        _write_json(out / STATE_DIR / "state.json", {**header, "state": state.to_json()})
        if shard_spec is not None:
            return header
        return finish(model, state, header, layers, features, out, tags=tags, progress=progress)


def merge(shard_dirs: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, metadata=None, trust: bool = False,
          progress: Progress | None = None) -> dict:  # fmt: skip
    """Combine the scans of shards (``--shard i/N`` runs of one model and options) and render the atlas."""
    from auralise.io.files import folder_lock
    from auralise.io.modelfile import load_model
    from auralise.listening.export import file_sha256
    from auralise.studies.atlas_scan import merge_states

    parts, states = zip(*(_read_shard(d) for d in shard_dirs), strict=True)
    first = parts[0]
    for p in parts[1:]:
        if p["model"]["sha256"] != first["model"]["sha256"] or p["options"] != first["options"]:
            raise BadParameterError("the shards were made with different models or options; merge shards of one run")
    options = AtlasOptions(**first["options"])
    model = load_model(first["model"]["path"], trust=trust)
    if file_sha256(first["model"]["path"]) != first["model"]["sha256"]:
        raise BadParameterError(
            f"{first['model']['path']} is not the model the shards were scanned with (its sha256 differs); "
            "merge with that model file in place"
        )
    layers, features = _selection(model, options)
    state = merge_states(states, options.top)
    songs = sorted((s for p in parts for s in p["songs"]), key=lambda s: s["id"])
    skipped = sorted((s for p in parts for s in p["skipped"]), key=str)
    header = _header(first["model"]["path"], first["model"]["sha256"], options, songs, skipped)
    out = Path(out_dir)
    (out / STATE_DIR).mkdir(parents=True, exist_ok=True)
    with folder_lock(out):
        _write_json(out / STATE_DIR / "state.json", {**header, "state": state.to_json()})
        tags = read_metadata(metadata) if metadata else None
        return finish(model, state, header, layers, features, out, tags=tags, progress=progress)


def _read_shard(folder: str | os.PathLike) -> tuple[dict, AtlasState]:
    """A shard's ``.atlas/state.json`` and its :class:`~auralise.studies.atlas_scan.AtlasState`, every field checked
    (the folder may come from someone else); BadParameterError, in one line, for anything that is not one."""
    from auralise.studies.atlas_scan import AtlasState

    f = Path(folder) / STATE_DIR / "state.json"

    def refused(why: str) -> BadParameterError:
        return BadParameterError(f"{folder} holds no atlas shard ({f.name} {why}); pass the --out of a --shard run")

    try:
        part = parse_json(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise refused("unreadable") from exc
    try:
        if part.get("format") != FORMAT or not all(isinstance(part["model"][k], str) for k in ("path", "sha256")):
            raise ValueError("not an auralise atlas's state file")
        AtlasOptions(**part["options"]).check()
        state = AtlasState.from_json(part["state"])
        songs = part["songs"]
        if not all(isinstance(s["id"], str) and isinstance(s["path"], str) and float(s["seconds"]) >= 0 for s in songs):
            raise ValueError("a song without its id, path and length")
        if not all(isinstance(s["path"], str) and isinstance(s["reason"], str) for s in part["skipped"]):
            raise ValueError("a skipped song without its path and reason")
    except (AttributeError, KeyError, TypeError, ValueError, BadParameterError) as exc:
        raise refused(f"malformed: {exc}") from None
    if sorted(s["id"] for s in songs) != sorted(state.songs):
        raise refused("malformed: its songs are not those of its scan")
    return part, state


def _header(model_path, sha256: str, options: AtlasOptions, songs: list, skipped: list) -> dict:
    return {
        "format": FORMAT,
        "version": VERSION,
        "model": {"path": str(model_path), "sha256": sha256},
        "options": asdict(options),
        "songs": songs,
        "skipped": skipped,
    }


def _selection(model, options: AtlasOptions) -> tuple[list[int], dict[int, list[int]]]:
    """The layer numbers to scan and, per layer, the features to show."""
    from auralise.engine.layers import discover
    from auralise.engine.selection import check_features, parse_feature_spec, parse_layer_spec

    graph = discover(model.module, model.example_input())
    specs = parse_layer_spec(options.layers)
    lays = list(graph.layers) if specs is None else [graph.layer(s) for s in specs]
    kind, arg = parse_feature_spec(options.features)
    if kind == "top":
        raise BadParameterError("--features top:K is not an atlas selection; use 'all' or a list such as 0-15")
    features = {}
    for lay in lays:
        feats = list(range(lay.channels)) if kind == "all" else list(arg)
        if kind == "list":
            check_features(feats, lay)
        features[lay.number] = feats
    return sorted(features), features


def _check_out(out: Path, *, resume: bool, force: bool) -> None:
    if force and resume:
        raise BadParameterError("--force and --resume exclude each other: --resume finishes, --force starts over")
    if out.exists() and not out.is_dir():
        raise OutputError(f"cannot write to output folder {out}: it exists and is not a folder; choose another --out")
    if out.is_dir() and (out / "atlas.json").exists() and not (resume or force):
        raise OutputError(f"{out} already holds an atlas; pass --resume to finish it or --force to start over")
    if force and out.is_dir():
        for f in (out / STATE_DIR / "songs").glob("*.json"):
            f.unlink()


def read_metadata(path: str | os.PathLike) -> dict[str, list[str]]:
    """A CSV of ``path,tags`` (header row; tags separated by ``;`` or ``|``) -> {resolved path: [tags]}."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise BadParameterError(
            f"cannot read the metadata file {path}: {exc}; give a CSV with columns path,tags"
        ) from exc
    if not rows or "path" not in rows[0]:
        raise BadParameterError(f"the metadata file {path} needs a header with a 'path' column (and 'tags' or 'genre')")
    base = Path(path).parent
    out = {}
    for r in rows:
        p = Path(r.get("path") or "")
        text = r.get("tags") or r.get("genre") or ""
        out[str((p if p.is_absolute() else base / p).resolve())] = [
            t.strip() for t in re.split(r"[;|]", text) if t.strip()
        ]
    return out


def finish(model, state, header: dict, layers, features, out: Path, *, tags=None, progress=None) -> dict:
    """Render every kept occurrence, then write atlas.json and index.html (both last)."""
    from auralise.listening.atlas_files import render_features
    from auralise.listening.atlas_page import write_atlas_page

    entries = render_features(model, state, header, features, out, progress=progress)
    if tags is not None:
        by_id = {s["id"]: str(Path(s["path"]).resolve()) for s in header["songs"]}
        for e in entries:
            counts: dict[str, int] = {}
            for x in e["excerpts"]:
                for t in tags.get(by_id.get(x["song"], ""), []):
                    counts[t] = counts.get(t, 0) + 1
            e["tags"] = dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    atlas_json = {**header, "features": entries}
    _write_json(out / "atlas.json", atlas_json)
    write_atlas_page(atlas_json, out)
    return atlas_json
