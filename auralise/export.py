"""Listening sets: auralise many songs x layers x features into one folder with a manifest and an HTML page.

Layout of ``DIR``::

    DIR/index.html                      the listening page (self-contained, works from file://)
    DIR/manifest.json                   model hash, front-end, options, versions, every file and its statistics
    DIR/<song>/original.wav, .png       the song as the model hears it (mono, model rate) and its spectrogram
    DIR/<song>/layer{L}_feature{F}.wav  one per (layer, feature), with a .png thumbnail (and _figure.png on request)
    DIR/.auralise-journal.jsonl         what is finished: the basis of --resume

Work per song: one forward pass per chunk of the song (one chunk for songs up to about a minute) serves every
layer and feature group; features are projected in batches sized to the memory budget, resynthesised in batches,
and their files written by worker threads while the next batch is computed. Every file is written under a
temporary name and renamed, and a journal line is appended only once an item's files are in place, so an
interrupted export leaves only complete files and ``--resume`` redoes nothing that was finished.

Example
-------
>>> from auralise.export import export
>>> manifest = export("models/choi2016-synth.pt", ["demo_audio/dance.ogg"], "listening",
...                   layers="1,3", features="top:8")                        # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from importlib import metadata
from pathlib import Path

import numpy as np

from .errors import BadParameterError, OutputError, check_choice
from .render import output_name

JOURNAL = ".auralise-journal.jsonl"
MANIFEST = "manifest.json"
FORMAT = "auralise-export"
VERSION = 1
DEFAULT_MEMORY = 1 << 30
_SPEC_HELP = "use 'all', a list and ranges such as '0,5,38' or '0-15', or 'top:K'"


@dataclass(frozen=True)
class ExportOptions:
    """Everything that decides the content of an export (two runs with equal options give equal files)."""

    layers: str = "all"
    features: str = "all"
    method: str = "deconvnet"
    select: str = "map"
    tap: str = "block"
    resynth: str = "mask"
    phase: str = "original"
    normalize: str = "peak"
    figures: bool = False


def parse_feature_spec(spec: str) -> tuple[str, list[int] | int | None]:
    """``"all"`` → ("all", None); ``"top:K"`` → ("top", K); ``"0,5,10-12"`` → ("list", [0, 5, 10, 11, 12])."""
    text = str(spec).strip().lower()
    if text == "all":
        return "all", None
    head, _, count = text.partition(":")
    if head == "top":
        if count.isdigit() and int(count) > 0:
            return "top", int(count)
        raise BadParameterError(f"bad feature spec {spec!r}: top:K needs a positive integer K")
    return "list", _parse_list(spec, "feature")


def parse_layer_spec(spec: str) -> list[str] | None:
    """``"all"`` → None; otherwise the listed layers (numbers, ranges, or module paths), in order, once each."""
    text = str(spec).strip()
    if text.lower() == "all":
        return None
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise BadParameterError(f"bad layer spec {spec!r}: use 'all' or a list such as '1,3' or '2-4'")
    out: list[str] = []
    for p in parts:
        out += [str(n) for n in _parse_list(p, "layer")] if re.fullmatch(r"\d+(-\d+)?", p) else [p]
    return list(dict.fromkeys(out))


def _parse_list(spec: str, what: str) -> list[int]:
    numbers: list[int] = []
    for part in str(spec).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            hint = _SPEC_HELP if what == "feature" else "use 'all' or a list such as '1,3' or '2-4'"
            raise BadParameterError(f"bad {what} spec {spec!r}: {hint}")
        lo = int(m.group(1))
        numbers += list(range(lo, int(m.group(2) or lo) + 1))
    return list(dict.fromkeys(numbers))


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def software_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("auralise", "torch", "numpy", "librosa", "soundfile", "matplotlib"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def song_ids(paths: Sequence[str | os.PathLike]) -> list[str]:
    """Folder names for the songs: the file stem, made safe, with -2, -3 … for repeated stems."""
    ids: list[str] = []
    for p in paths:
        base = re.sub(r"[^\w.\- ]+", "_", Path(p).stem).strip(" .") or "song"
        name, n = base, 1
        while name.lower() in (i.lower() for i in ids):
            n += 1
            name = f"{base}-{n}"
        ids.append(name)
    return ids


class Journal:
    """Append-only record of finished items (one JSON object per line; a torn last line is ignored)."""

    def __init__(self, path: Path, header: dict):
        self.path, self.header = path, header

    def finished(self) -> dict[tuple[str, int, int], dict]:
        """Finished items of an export with this header, keyed by (song id, layer, feature); their files exist."""
        if not self.path.exists():
            return {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        if not records or records[0] != self.header:
            raise OutputError(
                f"{self.path.parent} holds an export of another model or with other options; "
                "use the same ones to --resume, or pass --force to start over"
            )
        out = {}
        for r in records[1:]:
            files = [r["wav"], r["png"], r.get("figure")]
            if all((self.path.parent / f).exists() for f in files if f):
                out[(r["song"], r["layer"], r["feature"])] = r
        return out

    def start(self) -> None:
        with open(self.path, "w", encoding="utf-8") as f:
            f.write(json.dumps(self.header) + "\n")

    def append(self, records: list[dict]) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in records))
            f.flush()
            os.fsync(f.fileno())


Progress = Callable[[str, int, int], None]  # (song id, items done in this song, items in this song)


def export(
    model,
    audio: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    options: ExportOptions = ExportOptions(),
    force: bool = False,
    resume: bool = False,
    workers: int = 2,
    device: str | None = "auto",
    memory_budget: int = DEFAULT_MEMORY,
    trust: bool = False,
    frontend: dict | str | None = None,
    progress: Progress | None = None,
) -> dict:
    """Export a listening set (see the module docstring); returns the manifest that was written.

    Every check (model, layers, features, options, audio files, output folder) happens before anything is
    written. ``progress`` is called after each batch of items.
    """
    from .audio import check_output_dir, load_audio
    from .layers import discover, layer_table
    from .modelfile import LoadedModel, load_model
    from .render import min_audio_samples, resolve_device
    from .resynth import MODES, NORMALIZE, PHASES

    o = options
    for value, choices, what in (
        (o.resynth, MODES, "resynthesis mode"),
        (o.phase, PHASES, "phase"),
        (o.normalize, NORMALIZE, "normalisation"),
        (o.method, ("deconvnet", "guided", "gradient"), "method"),
        (o.tap, ("block", "activation", "conv"), "tap point"),
    ):
        check_choice(value, choices, what)
    from .deconv import parse_selection

    parse_selection(o.select)
    if force and resume:
        raise BadParameterError("--force and --resume exclude each other: --resume finishes, --force starts over")
    if not audio:
        raise BadParameterError("no audio files given; pass one or more AUDIO files")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BadParameterError(f"--workers must be a positive integer, got {workers!r}")
    feature_kind, feature_arg = parse_feature_spec(o.features)
    layer_specs = parse_layer_spec(o.layers)
    dev = resolve_device(device)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, frontend=frontend, trust=trust)
    loaded.to(dev)
    fe = loaded.frontend
    example = loaded.example_input()
    graph = discover(loaded.module, example)
    lays = list(graph.layers) if layer_specs is None else [graph.layer(s) for s in layer_specs]
    lays = list({lay.number: lay for lay in lays}.values())
    if feature_kind == "list":
        from .deconv import check_features

        for lay in lays:
            check_features(feature_arg, lay)
    table = {row["layer"]: row for row in layer_table(loaded.module, example, fe, tap=o.tap)}
    rf_frames = max(table[lay.number]["rf_frames"] for lay in lays)
    for p in audio:
        if not Path(p).is_file():
            raise BadParameterError(f"audio file not found: {p}")
    ids = song_ids(audio)
    model_path = loaded.meta.get("path") if isinstance(model, LoadedModel) else model
    model_info = {
        "path": str(model_path),
        "sha256": file_sha256(model_path) if model_path and Path(model_path).is_file() else None,
        "name": loaded.meta.get("architecture"),
        "labels": loaded.labels,
    }
    header = {"format": "auralise-journal", "model": model_info["sha256"], "frontend": fe.to_dict(), **asdict(o)}
    out = Path(out_dir)
    journal = Journal(out / JOURNAL, header)
    existing = out.exists() and any(out.iterdir())
    if existing and not (force or resume) and ((out / JOURNAL).exists() or (out / MANIFEST).exists()):
        raise OutputError(f"{out} already holds an export; pass --resume to finish it or --force to start over")
    clashes = [out / i for i in ids if (out / i).exists()] if existing and not (force or resume) else []
    if clashes:
        raise OutputError(f"{clashes[0]} already exists; pass --force to overwrite or choose another --out")
    done = journal.finished() if resume else {}
    min_samples = min_audio_samples(fe, rf_frames)
    for p in audio:  # decode every song once before writing anything (each is decoded again when its turn comes)
        load_audio(p, sr=fe.sr, min_samples=min_samples)

    if force:
        remove_export(out)
    for stale in out.glob("*/.*.part.*") if resume else ():  # temporary files of a run that was killed
        stale.unlink(missing_ok=True)
    check_output_dir(out)
    if not (resume and (out / JOURNAL).exists()):
        journal.start()
    songs = []
    from .memory import reuse_freed_memory

    with reuse_freed_memory(), ThreadPoolExecutor(max_workers=workers) as pool:
        for song_id, path in zip(ids, audio):
            y, info = load_audio(path, sr=fe.sr, min_samples=min_samples)
            song = _SongExport(loaded, lays, o, out, song_id, y, dev, memory_budget, pool, journal, done, progress)
            items = song.run(feature_kind, feature_arg)
            songs.append(
                {
                    "id": song_id,
                    "source": str(path),
                    "sha256": file_sha256(path),
                    "duration": round(len(y) / fe.sr, 3),
                    "sr": fe.sr,
                    "original": {"wav": f"{song_id}/original.wav", "png": f"{song_id}/original.png"},
                    "notes": list(info.notes),
                    "items": items,
                }
            )
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "software": software_versions(),
        "model": model_info,
        "frontend": fe.to_dict(),
        "options": {**asdict(o), "layers": [lay.number for lay in lays]},
        "layers": [
            {
                "number": lay.number,
                "path": lay.path,
                "kind": lay.kind,
                "channels": lay.channels,
                "kernel": list(lay.kernel),
                "rf_ms": table[lay.number]["rf_ms"],
                "rf_hz": table[lay.number]["rf_hz"],
            }
            for lay in lays
        ],
        "songs": songs,
    }
    _write_json(out / MANIFEST, manifest)
    from .page import write_page

    write_page(manifest, out)
    return manifest


def _write_json(path: Path, data: dict) -> None:
    from .audio import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


class _SongExport:
    """The export of one song: original, statistics, feature choice, projection, resynthesis, files."""

    def __init__(self, loaded, lays, options, out, song_id, y, device, memory_budget, pool, journal, done, progress):
        self.loaded, self.lays, self.o, self.y = loaded, lays, options, y
        self.dir, self.song, self.device, self.budget = out / song_id, song_id, device, memory_budget
        self.pool, self.journal, self.done, self.progress = pool, journal, done, progress
        self.lock = threading.Lock()

    def run(self, feature_kind: str, feature_arg) -> list[dict]:
        import torch

        from .audio import atomic_path, write_audio
        from .deconv import make_projector
        from .thumbnail import write_thumbnail

        fe, o = self.loaded.frontend, self.o
        self.dir.mkdir(parents=True, exist_ok=True)
        X = fe.stft(self.y)
        self.X, self.mag = X, np.abs(X)
        with atomic_path(self.dir / "original.wav") as tmp:
            write_audio(tmp, np.clip(self.y, -1.0, 1.0), fe.sr, subtype="PCM_16")
        with atomic_path(self.dir / "original.png") as tmp:
            write_thumbnail(self.mag, tmp)
        S = fe.model_input(X, y=self.y).to(self.device)
        projector = make_projector(
            self.loaded.module,
            S,
            [lay.number for lay in self.lays],
            method=o.method,
            select=o.select,
            tap=o.tap,
            example=self.loaded.example_input(),
            memory_budget=self.budget // 2,
            layout=fe.layout,
        )
        stats = projector.statistics()
        chosen = {lay.number: _choose(feature_kind, feature_arg, lay.channels, stats[lay.number]) for lay in self.lays}
        wanted = [(n, f) for n, fs in chosen.items() for f in fs]
        records = {(n, f): self.done[(self.song, n, f)] for n, f in wanted if (self.song, n, f) in self.done}
        todo = [item for item in wanted if item not in records]
        total = len(wanted)
        self._report(len(records), total)
        per_feature = self.mag.size * 4 * 6  # D, its grid copy, the complex spectrum, the wave, temporaries
        group_size = max(1, int(self.budget // 2 // per_feature))
        pending: list[Future] = []
        for start in range(0, len(todo), group_size):
            group = todo[start : start + group_size]
            by_layer: dict[int, list[int]] = {}
            for n, f in group:
                by_layer.setdefault(n, []).append(f)
            with torch.inference_mode():
                projected = list(projector.project(list(by_layer.items())))
            for number, feats, D in projected:
                while len(pending) >= 2:  # bound what waits to be written; surfaces a writer's error early
                    pending.pop(0).result()
                pending.append(self._write_batch(number, feats, D.cpu(), stats[number], records, total))
                del D
            del projected
        for p in pending:
            p.result()
        return [records[item] for item in wanted]

    def _write_batch(self, number, feats, D, stats, records, total) -> Future:
        from .resynth import render_waves

        fe, o = self.loaded.frontend, self.o
        waves, gains, grid = render_waves(
            self.X, D, frontend=fe, mode=o.resynth, phase=o.phase, length=len(self.y), normalize=o.normalize
        )
        ranks = stats.ranks()
        batch = []
        for k, f in enumerate(feats):
            rel = f"{self.song}/{output_name(number, f, 'wav')}"
            batch.append(
                {
                    "song": self.song,
                    "layer": number,
                    "feature": f,
                    "wav": rel,
                    "png": rel[:-3] + "png",
                    "figure": rel[:-4] + "_figure.png" if o.figures else None,
                    "activation_max": float(stats.maximum[f]),
                    "activation_energy": float(stats.energy[f]),
                    "rank": ranks[f],
                    "silent": bool(stats.nonzero[f] == 0),
                    "gain": float(gains[k]),
                }
            )
        return self.pool.submit(self._write_files, batch, grid, waves, records, total)

    def _write_files(self, batch: list[dict], grid: np.ndarray, waves: np.ndarray, records: dict, total: int) -> None:
        from .audio import atomic_path, write_audio
        from .thumbnail import write_thumbnail

        fe, out = self.loaded.frontend, self.dir.parent
        subtype = "FLOAT" if self.o.normalize == "none" else "PCM_16"
        for k, r in enumerate(batch):
            with atomic_path(out / r["wav"]) as tmp:
                write_audio(tmp, waves[k], fe.sr, subtype=subtype)
            with atomic_path(out / r["png"]) as tmp:
                write_thumbnail(np.maximum(grid[k], 0.0), tmp, range_db=60.0)
            if r["figure"]:
                from .display import feature_figure, save_figure

                title = f"Feature {r['layer']}-{r['feature']}"
                save_figure(feature_figure(self.mag, grid[k], frontend=fe, title=title, method=self.o.method),
                            out / r["figure"])  # fmt: skip
        with self.lock:
            self.journal.append(batch)
            for r in batch:
                records[(r["layer"], r["feature"])] = r
            self._report(len(records), total)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(self.song, done, total)


def _choose(kind: str, arg, channels: int, stats) -> list[int]:
    """The features to export for one layer: all, the given list, or the top K by activation energy."""
    if kind == "all":
        return list(range(channels))
    if kind == "list":
        return list(arg)
    ranks = stats.ranks()  # the ranking of `auralise rank`
    return [f for f in range(channels) if ranks[f] <= arg]


def remove_export(out: Path) -> None:
    """Delete a previous export's files (journal, manifest, page, song folders it listed)."""
    manifest = out / MANIFEST
    if manifest.exists():
        for song in json.loads(manifest.read_text(encoding="utf-8")).get("songs", []):
            shutil.rmtree(out / song["id"], ignore_errors=True)
    for name in (JOURNAL, MANIFEST, "index.html"):
        (out / name).unlink(missing_ok=True)
