"""Listening sets: auralise many songs x layers x features into one folder with a manifest and an HTML page.

Layout of ``DIR``::

    DIR/index.html                      the listening page (self-contained, works from file://)
    DIR/manifest.json                   model hash, front-end, options, versions, every file and its statistics
    DIR/<song>/original.wav, .png       the song as the model hears it (mono, model rate) and its spectrogram
    DIR/<song>/layer{L}_feature{F}.wav  one per (layer, feature), with a .png thumbnail (and _figure.png on request)
    DIR/.auralise-journal.jsonl         what is finished: the basis of --resume
    DIR/.auralise-lock                  while an export runs: {pid, host, started}; one export per folder at a time

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

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import platform
import re
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
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
PAGE = "index.html"
# What a song id (a folder name made by song_ids) may be: one plain path component, never "." or "..".
_SONG_ID = re.compile(r"[\w-](?:[\w.\- ]*[\w-])?")
# The files this layout puts in a song folder, and the temporary names they are written under (atomic_path's
# ".<stem>.<8 hex>.part.<ext>", nested twice by older versions).
_LAYOUT_FILE = re.compile(r"original\.(?:wav|png)|layer\d+_feature\d+(?:\.wav|\.png|_figure\.png)")
_TEMP_FILE = re.compile(r"\.+(?:original|layer\d+_feature\d+(?:_figure)?)(?:\.[0-9a-f]{8}\.part)+\.(?:wav|png|raw)")
_TOP_TEMP = re.compile(
    r"\.+(?:manifest|index|auralise-journal)(?:\.[0-9a-f]{8}\.part)+\.(?:json|html|jsonl)|\.auralise-write-test-\w+\.part"
)
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
    """Append-only record of finished items: a header line (model and options), then one JSON object per item;
    a torn last line is ignored. Nothing in it is trusted before it is checked (:meth:`finished`)."""

    def __init__(self, path: Path, header: dict):
        self.path, self.header = path, header
        self.appended = 0  # items this run recorded

    def read(self) -> tuple[dict | None, list]:
        """(header, records); (None, []) without a journal or when its first line is not a header."""
        try:
            st = os.lstat(self.path)
            if not stat.S_ISREG(st.st_mode):
                raise OutputError(
                    f"{self.path} is not a regular file (a symbolic link or a special file); remove it or pass "
                    "--force to start over"
                )
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return None, []
        except OSError as exc:
            reason = " ".join(str(exc.strerror or exc).split())
            raise OutputError(f"cannot read {self.path}: {reason}; pass --force to start over") from exc
        header = _json_or_none(lines[0]) if lines else None
        if not isinstance(header, dict):
            return None, []
        return header, [r for r in map(_json_or_none, lines[1:]) if r is not None]

    def finished(self) -> dict[tuple[str, int, int], dict]:
        """Finished items of an export with this header, keyed by (song id, layer, feature).

        Only records that are what this export writes count: a song id that is a plain folder name, integer layer
        and feature, exactly the file names of that item, statistics of the right types, and files that are
        regular files (not symbolic links) in a real song folder inside the export. Anything else is redone.
        """
        header, records = self.read()
        if header is None:
            return {}
        if header != self.header:
            raise OutputError(self._mismatch(header))
        out_dir = self.path.parent
        root = out_dir.resolve()
        figures = bool(self.header.get("figures"))
        done = {}
        for r in records:
            if _valid_record(r, out_dir, root, figures):
                done[(r["song"], r["layer"], r["feature"])] = r
        return done

    def _mismatch(self, header: dict) -> str:
        out = self.path.parent
        if header.get("format") != self.header.get("format"):
            return f"{self.path} is not a journal of this auralise version; pass --force to start over"
        what, details = [], []
        if header.get("model") != self.header.get("model"):
            what.append("another model")
            there, now = str(header.get("model"))[:12], str(self.header.get("model"))[:12]
            details.append(f"model sha256 {there}... there, {now}... now")
        if header.get("frontend") != self.header.get("frontend"):
            what.append("another front-end")
        changed = [k for k in dict.fromkeys([*self.header, *header]) if k not in ("format", "model", "frontend")]
        changed = [k for k in changed if header.get(k) != self.header.get(k)]
        if changed:
            what.append("other options")
            details += [f"--{k} {_short(header.get(k))} there, {_short(self.header.get(k))} now" for k in changed]
        detail = f" ({'; '.join(details)})" if details else ""
        return (
            f"{out} holds an export made with {' and '.join(what)}{detail}; use the same model and options to "
            "--resume, or pass --force to start over"
        )

    def start(self) -> None:
        from .audio import atomic_path

        with atomic_path(self.path) as tmp:  # complete or absent: never an empty or torn header
            tmp.write_text(json.dumps(self.header) + "\n", encoding="utf-8")
        self.appended = 0

    def append(self, records: list[dict]) -> None:
        from .audio import write_failure

        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in records))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise write_failure(self.path, exc) from exc
        self.appended += len(records)


def _json_or_none(line: str):
    try:
        return json.loads(line)
    except ValueError:
        return None


def _short(value) -> str:
    text = " ".join(json.dumps(value).split())
    return text if len(text) <= 40 else text[:37] + "..."


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _valid_record(r, out_dir: Path, root: Path, figures: bool) -> bool:
    """Whether a journal record is one this export wrote, for files that are still in place (see Journal)."""
    if not isinstance(r, dict):
        return False
    song, layer, feature = r.get("song"), r.get("layer"), r.get("feature")
    if not (isinstance(song, str) and _SONG_ID.fullmatch(song) and _is_int(layer) and _is_int(feature)):
        return False
    if layer < 1 or feature < 0:
        return False
    wav = f"{song}/{output_name(layer, feature, 'wav')}"
    expected = {"wav": wav, "png": wav[:-3] + "png", "figure": wav[:-4] + "_figure.png" if figures else None}
    if any(r.get(k) != v for k, v in expected.items()):
        return False
    if not all(_is_number(r.get(k)) for k in ("activation_max", "activation_energy", "gain")):
        return False
    if not (_is_int(r.get("rank")) and r["rank"] >= 1 and isinstance(r.get("silent"), bool)):
        return False
    if r.get("silent_reason") not in (None, "never active", "projection is numerically zero"):
        return False
    return all(_own_file(out_dir, root, rel) for rel in expected.values() if rel)


def _own_file(out_dir: Path, root: Path, rel: str) -> bool:
    """``out_dir/rel`` (``song/name``) is a regular file in a real (not linked) song folder inside the export."""
    song, name = rel.split("/")
    try:
        if not stat.S_ISDIR(os.lstat(out_dir / song).st_mode):
            return False
        if not stat.S_ISREG(os.lstat(out_dir / song / name).st_mode):
            return False
        return (out_dir / song / name).resolve().is_relative_to(root)
    except (OSError, ValueError):
        return False


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
    written; the folder is then locked for the run (a second export into it is refused). ``force`` removes only
    the files of this layout (see :func:`remove_export`); ``resume`` trusts only journal records that check out
    (see :meth:`Journal.finished`). A run that fails before finishing any item leaves nothing behind. Every
    failure to write (full disk, read-only folder) is a one-line :class:`OutputError` naming the file.
    ``progress`` is called after each batch of items.
    """
    from .audio import check_folder_lock, load_audio
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
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise BadParameterError(f"the memory budget must be a positive number of bytes, got {memory_budget!r}")
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
    _check_out_path(out)
    check_folder_lock(out)  # a live export there: say so, rather than what its half-made files look like
    _check_folder(out, ids, journal, force=force, resume=resume)
    min_samples = min_audio_samples(fe, rf_frames)
    for p in audio:  # decode every song once before writing anything (each is decoded again when its turn comes)
        load_audio(p, sr=fe.sr, min_samples=min_samples)

    # Nothing was written so far. From here on the folder is locked; a start that fails before any item is
    # finished leaves nothing behind (no journal, no song files, no folder it created).
    with _claim(out, ids, journal, force=force, resume=resume) as done:
        songs = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
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
        from .deconv import make_projector
        from .memory import reuse_freed_memory
        from .streaming import SegmentedInput, SongFrames

        fe, o = self.loaded.frontend, self.o
        plan = song_plan(fe, len(self.y), self.budget, o)
        self.dir.mkdir(parents=True, exist_ok=True)
        if plan.streamed:
            self.frames = SongFrames(self.y, fe)
            S = SegmentedInput(self.frames, self.device)
        else:
            self.X = fe.stft(self.y)
            self.mag = np.abs(self.X)
            S = fe.model_input(self.X, y=self.y).to(self.device)
        self._write_original()
        projector = make_projector(
            self.loaded.module,
            S,
            [lay.number for lay in self.lays],
            method=o.method,
            select=o.select,
            tap=o.tap,
            example=self.loaded.example_input(),
            memory_budget=plan.projector_bytes,
            layout=fe.layout,
        )
        stats = projector.statistics()
        chosen = {lay.number: _choose(feature_kind, feature_arg, lay.channels, stats[lay.number]) for lay in self.lays}
        wanted = [(n, f) for n, fs in chosen.items() for f in fs]
        records = {(n, f): self.done[(self.song, n, f)] for n, f in wanted if (self.song, n, f) in self.done}
        todo = [item for item in wanted if item not in records]
        self._report(len(records), len(wanted))
        if plan.streamed:
            widest = max(c.stop - c.start for c in projector.chunks)
            plan = dataclasses.replace(plan, group_size=plan.streamed_group_size(widest))
        render = self._stream_group if plan.streamed else self._render_group
        pending: list[Future] = []
        # Keeping freed memory in the heap saves page faults on whole-song temporaries, but fragments the heap
        # over the many chunk-sized ones of a streamed song (RSS grew 3x): streamed songs use plain malloc.
        with contextlib.nullcontext() if plan.streamed else reuse_freed_memory():
            for start in range(0, len(todo), plan.group_size):
                by_layer: dict[int, list[int]] = {}
                for n, f in todo[start : start + plan.group_size]:
                    by_layer.setdefault(n, []).append(f)
                for future in render(projector, list(by_layer.items()), stats, records, len(wanted)):
                    while len(pending) >= plan.in_flight - 1:  # bound what waits to be written; surfaces errors
                        pending.pop(0).result()
                    pending.append(future)
            for p in pending:
                p.result()
        return [records[item] for item in wanted]

    def _write_original(self) -> None:
        from .audio import atomic_path, write_audio
        from .thumbnail import write_thumbnail

        fe = self.loaded.frontend
        with atomic_path(self.dir / "original.wav") as tmp:
            write_audio(tmp, np.clip(self.y, -1.0, 1.0), fe.sr, subtype="PCM_16")
        if hasattr(self, "mag"):
            with atomic_path(self.dir / "original.png") as tmp:
                write_thumbnail(self.mag, tmp)
            return
        from .streaming import BlockMax

        frames, step = self.frames, 4096
        thumb = BlockMax(1, fe.n_freq, frames.n_frames)
        for a in range(0, frames.n_frames, step):
            thumb.add(np.abs(frames.stft(a, min(a + step, frames.n_frames)))[None])
        with atomic_path(self.dir / "original.png") as tmp:
            write_thumbnail(thumb.result()[0], tmp, reduced=True)

    def _render_group(self, projector, groups, stats, records, total) -> Iterator[Future]:
        """The whole song in memory: project the group, then hand each layer's batch to the writers."""
        import torch

        with torch.inference_mode():
            projected = list(projector.project(groups))
        for number, feats, D in projected:
            yield self._write_batch(number, feats, D.cpu(), stats[number], records, total)

    def _stream_group(self, projector, groups, stats, records, total) -> Iterator[Future]:
        """A song longer than memory: project and resynthesise the group chunk by chunk into raw files, then scale
        each wave into its final file (see :mod:`auralise.streaming`)."""
        import secrets

        import torch

        from .resynth import NEVER_ACTIVE, NUMERICALLY_ZERO, PEAK, numerically_zero
        from .streaming import stream_features

        o = self.o
        items = [(n, f) for n, feats in groups for f in feats]
        raw = [self.dir / f".{output_name(n, f, 'wav')[:-4]}.{secrets.token_hex(4)}.part.raw" for n, f in items]
        with torch.inference_mode():
            waves, peak, thumbs = stream_features(projector, self.frames, groups, mode=o.resynth, length=len(self.y),
                                                  raw_paths=raw)  # fmt: skip
        try:
            for number, feats in groups:
                k0 = items.index((number, feats[0]))
                gains, scales, reasons = [], [], []
                for k, f in enumerate(feats, start=k0):
                    scale = 0.0 if numerically_zero(peak[k]) else (1.0 / float(peak[k]) if o.resynth == "mask" else 1.0)
                    level = waves[k].peak * scale
                    never, zero = not stats[number].maximum[f] > 0, bool(numerically_zero(level))
                    gain = PEAK / level if o.normalize == "peak" and not (never or zero) else 1.0
                    scales.append(0.0 if never or zero else scale * gain)
                    gains.append(gain)
                    reasons.append(NEVER_ACTIVE if never else NUMERICALLY_ZERO if zero else None)
                batch = self._records(number, feats, stats[number], gains, reasons)
                yield self.pool.submit(self._write_streamed, batch, waves[k0 : k0 + len(feats)], scales,
                                       thumbs[k0 : k0 + len(feats)], records, total)  # fmt: skip
        except BaseException:
            for w in waves:
                w.discard()
            raise

    def _write_streamed(self, batch, waves, scales, thumbs, records, total) -> None:
        from .audio import atomic_path
        from .thumbnail import write_thumbnail

        out, subtype = self.dir.parent, "FLOAT" if self.o.normalize == "none" else "PCM_16"
        try:
            for r, wave, scale, thumb in zip(batch, waves, scales, thumbs):
                wave.write_scaled(out / r["wav"], self.loaded.frontend.sr, scale, subtype)
                with atomic_path(out / r["png"]) as tmp:
                    write_thumbnail(thumb if scale else np.zeros_like(thumb), tmp, range_db=60.0, reduced=True)
        finally:
            for wave in waves:
                wave.discard()
        self._finish(batch, records, total)

    def _write_batch(self, number, feats, D, stats, records, total) -> Future:
        from .resynth import render_waves

        fe, o = self.loaded.frontend, self.o
        rendered = render_waves(self.X, D, frontend=fe, mode=o.resynth, phase=o.phase, length=len(self.y),
                                normalize=o.normalize, activation_max=stats.maximum[feats])  # fmt: skip
        waves, gains, grid = rendered
        batch = self._records(number, feats, stats, gains, rendered.reasons)
        return self.pool.submit(self._write_files, batch, grid, waves, records, total)

    def _records(self, number: int, feats: list[int], stats, gains, reasons) -> list[dict]:
        """The journal and manifest records of one layer's batch of features; ``reasons`` per feature why it is
        silent (:data:`~auralise.resynth.NEVER_ACTIVE`, :data:`~auralise.resynth.NUMERICALLY_ZERO`) or None."""
        o, ranks = self.o, stats.ranks()
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
                    "silent": reasons[k] is not None,
                    "silent_reason": reasons[k],
                    "gain": float(gains[k]),
                }
            )
        return batch

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
        self._finish(batch, records, total)

    def _finish(self, batch: list[dict], records: dict, total: int) -> None:
        """Record a batch whose files are in place (journal first, then the progress report)."""
        with self.lock:
            self.journal.append(batch)
            for r in batch:
                records[(r["layer"], r["feature"])] = r
            self._report(len(records), total)

    def _report(self, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(self.song, done, total)


@dataclass(frozen=True)
class SongPlan:
    """How one song is exported within the memory budget (:func:`song_plan`)."""

    streamed: bool  # segment by segment (auralise.streaming) instead of whole-song arrays
    group_size: int  # features projected and resynthesised together
    projector_bytes: int  # the projector's share: a chunk's recorded forward pass and backward signals
    in_flight: int = 3  # groups alive at once: one being projected, the others being written
    render_bytes: int = 0  # the share of the song's buffers and the features being resynthesised
    bytes_per_frame_feature: int = 0  # streamed: what one feature costs per STFT frame of a chunk

    def streamed_group_size(self, chunk_frames: int) -> int:
        """Features per group when streaming chunks of at most ``chunk_frames`` frames."""
        return max(1, self.render_bytes // max(1, self.bytes_per_frame_feature * chunk_frames))


def song_plan(fe, n_samples: int, budget: int, options: ExportOptions) -> SongPlan:
    """Split ``budget`` bytes between the projector (half) and the song's buffers and renderings (half).

    In memory, the song costs its wave, STFT, magnitude and model input, and each feature its projection, grid,
    complex spectrum and wave, with up to three groups alive (one projected, two being written). When not even
    one feature fits, an ``stft`` or ``mel`` song with the original phase is streamed instead: only the wave is
    song-long, everything else lives for one chunk of frames (:mod:`auralise.streaming`).
    """
    from .streaming import STREAMABLE_KINDS, stft_frame_count

    F, F_in, n = fe.n_freq, fe.n_input_freq, n_samples
    T = n if fe.kind == "waveform" else stft_frame_count(fe, n)
    song = 4 * n + 12 * F * T + 4 * F_in * T
    per_feature = 4 * n + 16 * F * T + 4 * F_in * T
    half, in_flight = budget // 2, 3
    group = (half - song) // (in_flight * per_feature)
    streamable = fe.kind in STREAMABLE_KINDS and options.phase == "original" and not options.figures
    if group >= 1 or not streamable:
        return SongPlan(False, int(max(1, group)), half, in_flight)
    per_frame = 16 * F + 4 * F_in + 8 * fe.n_fft  # grid, mask, spectrum, model-shaped core; inverse FFT frames
    return SongPlan(True, 1, half, 2, render_bytes=max(0, half - 4 * n), bytes_per_frame_feature=per_frame)


def _choose(kind: str, arg, channels: int, stats) -> list[int]:
    """The features to export for one layer: all, the given list, or the top K by activation energy."""
    if kind == "all":
        return list(range(channels))
    if kind == "list":
        return list(arg)
    ranks = stats.ranks()  # the ranking of `auralise rank`
    return [f for f in range(channels) if ranks[f] <= arg]


def _check_out_path(out: Path) -> None:
    """--out is a folder or does not exist yet (a device or a file is not a place for an export)."""
    from .audio import _file_kind

    try:
        st = out.stat()
    except FileNotFoundError:
        return
    except OSError as exc:
        reason = " ".join(str(exc.strerror or exc).split())
        raise OutputError(f"cannot write to output folder {out}: {reason}; choose another --out") from exc
    if not stat.S_ISDIR(st.st_mode):
        kind = "file" if stat.S_ISREG(st.st_mode) else _file_kind(st.st_mode)
        raise OutputError(
            f"cannot write to output folder {out}: it exists and is a {kind}, not a folder; choose another --out"
        )


def _check_folder(out: Path, ids: Sequence[str], journal: Journal, *, force: bool, resume: bool) -> dict:
    """The checks of what --out already holds; returns the finished items under ``resume``. Writes nothing."""
    if not out.is_dir():
        return {}
    if not (force or resume):
        if os.path.lexists(out / JOURNAL) or os.path.lexists(out / MANIFEST):
            raise OutputError(f"{out} already holds an export; pass --resume to finish it or --force to start over")
        clashes = [out / i for i in ids if os.path.lexists(out / i)]
        if clashes:
            raise OutputError(f"{clashes[0]} already exists; pass --force to overwrite or choose another --out")
    for name in (MANIFEST, PAGE):
        _check_replaceable(out / name)
    for song in ids:
        d = out / song
        try:
            mode = os.lstat(d).st_mode
        except FileNotFoundError:
            continue
        if not stat.S_ISDIR(mode):
            what = "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"
            raise OutputError(f"{d} is {what}; the export writes only into folders it makes: remove it or choose "
                              "another --out")  # fmt: skip
        with os.scandir(d) as entries:
            for entry in entries:
                if _LAYOUT_FILE.fullmatch(entry.name):
                    _check_replaceable(Path(entry.path))
    return journal.finished() if resume else {}


def _check_replaceable(path: Path) -> None:
    """A file of the layout may be replaced if it is a regular file or a symbolic link (the link is removed)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OutputError(f"{path} is not a regular file; remove it or choose another --out")


@contextlib.contextmanager
def _claim(out: Path, ids: Sequence[str], journal: Journal, *, force: bool, resume: bool):
    """Create --out if needed and hold its lock for the block; check again under the lock, clear what --force
    or --resume clear, start the journal. If the block fails before this run finished any item, what the run
    wrote is removed: the journal, the song files, the folders it made (when empty)."""
    from .audio import check_output_dir, folder_lock, write_failure

    created = _missing_folders(out)
    try:
        check_output_dir(out)
        with folder_lock(out):
            done = _check_folder(out, ids, journal, force=force, resume=resume)  # nothing changes it from now
            if force:
                remove_export(out, ids)
            _clear_leftovers(out, ids)
            new_folders = [out / i for i in ids if not os.path.lexists(out / i)]
            started = not (resume and journal.read()[0] is not None)
            if started:
                journal.start()
            try:
                yield done
            except BaseException as exc:
                if started and not journal.appended:
                    _undo_start(out, ids, new_folders)
                if isinstance(exc, OSError):
                    raise write_failure(_visible_name(exc.filename) if exc.filename else out, exc) from exc
                raise
    except BaseException:
        for d in reversed(created):
            with contextlib.suppress(OSError):
                d.rmdir()
        raise


def _visible_name(path) -> Path:
    """The file a temporary file stands for (``.layer1_feature0.1a2b3c4d.part.raw`` -> ``layer1_feature0.wav``)."""
    p = Path(os.fsdecode(path))
    m = re.fullmatch(r"\.(.+?)(?:\.[0-9a-f]{8}\.part)+(\.\w+)?", p.name)
    if not m:
        return p
    ext = m.group(2) or ""
    return p.with_name(m.group(1) + (".wav" if ext == ".raw" else ext))


def _missing_folders(out: Path) -> list[Path]:
    """The folders that creating ``out`` creates, outermost first."""
    missing, p = [], Path(os.path.abspath(out))
    while not os.path.lexists(p) and p != p.parent:
        missing.append(p)
        p = p.parent
    return missing[::-1]


def _clear_leftovers(out: Path, ids: Sequence[str]) -> None:
    """Remove what a killed run leaves in this run's places: temporary files, and symbolic links standing where
    the layout's files go (only the links; what they point to is not touched)."""
    for name in (MANIFEST, PAGE):
        if os.path.islink(out / name):
            os.unlink(out / name)
    with os.scandir(out) as entries:
        for entry in entries:
            if _TOP_TEMP.fullmatch(entry.name):
                _unlink_own(Path(entry.path))
    for song in ids:
        d = out / song
        if not _SONG_ID.fullmatch(song) or not os.path.isdir(d) or os.path.islink(d):
            continue
        with os.scandir(d) as entries:
            for entry in entries:
                if _TEMP_FILE.fullmatch(entry.name) or (_LAYOUT_FILE.fullmatch(entry.name) and entry.is_symlink()):
                    _unlink_own(Path(entry.path))


def _undo_start(out: Path, ids: Sequence[str], new_folders: Sequence[Path]) -> None:
    """Remove what a run that finished no item wrote: its journal, its songs' files, and the song folders it
    made (when that leaves them empty)."""
    with contextlib.suppress(OSError):
        _unlink_own(out / JOURNAL)
        for song in ids:
            _remove_song_files(out, song)
    for d in new_folders:
        with contextlib.suppress(OSError):
            d.rmdir()


def remove_export(out: Path, song_ids: Sequence[str] = ()) -> None:
    """Delete a previous export's files in ``out``, and nothing else.

    Removed: the journal, the manifest, the page, their temporary files, and in each song folder (of the
    manifest, of the journal, or of ``song_ids``) the files this layout defines (``original.wav``/``.png``,
    ``layer{L}_feature{F}.wav``/``.png``/``_figure.png``) and their temporary files; a song folder goes only if
    that emptied it. A song id that is not a plain folder name (``../x``, ``/abs``) is ignored, a song folder
    that is a symbolic link is not followed, and other files (yours) stay. The lock file is never touched.
    """
    out = Path(out)
    if not out.is_dir():
        return
    ids = dict.fromkeys([*song_ids, *_manifest_songs(out), *_journal_songs(out)])
    for song in ids:
        _remove_song_files(out, song)
    for name in (JOURNAL, MANIFEST, PAGE):
        _unlink_own(out / name)
    with os.scandir(out) as entries:
        for entry in entries:
            if _TOP_TEMP.fullmatch(entry.name):
                _unlink_own(Path(entry.path))


def _unlink_own(path: Path) -> bool:
    """Unlink ``path`` if it is a regular file or a symbolic link (never what the link points to)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return False
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        return False
    path.unlink(missing_ok=True)
    return True


def _remove_song_files(out: Path, song) -> None:
    if not isinstance(song, str) or not _SONG_ID.fullmatch(song):
        return
    d = out / song
    try:
        if not stat.S_ISDIR(os.lstat(d).st_mode) or d.resolve().parent != out.resolve():
            return
    except OSError:
        return
    removed = False
    with os.scandir(d) as entries:
        for entry in entries:
            if _LAYOUT_FILE.fullmatch(entry.name) or _TEMP_FILE.fullmatch(entry.name):
                removed |= _unlink_own(Path(entry.path))
    if removed:
        with contextlib.suppress(OSError):
            d.rmdir()  # only if that emptied it


def _manifest_songs(out: Path) -> list[str]:
    """The song ids a previous manifest lists (nothing if it is missing, not a regular file, or not JSON)."""
    path = out / MANIFEST
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return []
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    songs = data.get("songs") if isinstance(data, dict) else None
    if not isinstance(songs, list):
        return []
    return [s["id"] for s in songs if isinstance(s, dict) and isinstance(s.get("id"), str)]


def _journal_songs(out: Path) -> list[str]:
    """The song ids a previous journal's records name."""
    try:
        _, records = Journal(out / JOURNAL, {}).read()
    except OutputError:
        return []
    return [r["song"] for r in records if isinstance(r, dict) and isinstance(r.get("song"), str)]
