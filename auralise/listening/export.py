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

Here: the options (:class:`ExportOptions`), the specs of layers and features, and :func:`export`, which checks
everything, opens a :class:`~auralise.session.Session` and claims the folder; the journal and the folder's
bookkeeping are in :mod:`auralise.listening.journal`, one song's work in :mod:`auralise.listening.song_export`.

Example
-------
>>> from auralise.listening.export import ExportOptions, export
>>> manifest = export("models/choi2016-synth.pt", ["demo_audio/dance.ogg"], "listening",
...                   options=ExportOptions(layers="1,3", features="top:8"))       # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import platform
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

from auralise.engine.selection import parse_feature_spec, parse_layer_spec
from auralise.errors import BadParameterError
from auralise.io.digest import file_sha256
from auralise.listening.journal import (
    JOURNAL,
    MANIFEST,
    Journal,
    check_folder,
    check_out_path,
    claim_folder,
    remove_export,
)
from auralise.listening.song_export import ExportContext, Progress, SongExport, SongPlan, song_plan
from auralise.session import RenderOptions

if TYPE_CHECKING:
    from auralise.engine.layers import Layer
    from auralise.session import Session, Song

__all__ = [
    "ExportOptions",
    "export",
    "parse_feature_spec",
    "parse_layer_spec",
    "song_ids",
    "software_versions",
    "file_sha256",
    "Journal",
    "JOURNAL",
    "MANIFEST",
    "remove_export",
    "SongPlan",
    "song_plan",
]

FORMAT = "auralise-export"
VERSION = 1
DEFAULT_MEMORY = 1 << 30


@dataclass(frozen=True)
class ExportOptions:
    """Everything that decides the content of an export (two runs with equal options give equal files).

    ``layers`` and ``features`` as :func:`parse_layer_spec` and :func:`parse_feature_spec` read them; ``render``
    how each feature is projected and heard; ``figures`` also a full figure per feature; ``offset`` and
    ``duration`` the part of every song used, in seconds (:func:`auralise.io.audio.load_audio`; default all of it).
    """

    layers: str = "all"
    features: str = "all"
    render: RenderOptions = field(default_factory=RenderOptions)
    figures: bool = False
    offset: float = 0.0
    duration: float | None = None
    evaluate: bool = False  # add the faithfulness measures to each feature's record (auralise.studies.evaluation)

    def __post_init__(self) -> None:
        from auralise.io.audio import check_region

        if not isinstance(self.render, RenderOptions):
            raise BadParameterError(f"render must be RenderOptions, got {type(self.render).__name__}")
        check_region(self.offset, self.duration)

    def to_dict(self) -> dict:
        """The options as the journal header and the manifest record them: layers, features, the six rendering
        options, figures; offset and duration when a part of the songs is used; ``output_sr`` and ``above_band``
        when not the model's rate (so the headers of default exports stay as they were)."""
        region = {"offset": self.offset, "duration": self.duration} if self.offset or self.duration else {}
        measured = {"evaluate": True} if self.evaluate else {}
        render = self.render.to_dict()
        if render["output_sr"] == "model":
            del render["output_sr"], render["above_band"]
        return {"layers": self.layers, "features": self.features, **render, "figures": self.figures, **region,
                **measured}  # fmt: skip


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


def export(
    model,
    audio: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    options: ExportOptions | None = None,
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

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        The model file (or a loaded model).
    audio : sequence of str or PathLike
        The songs, one folder each (:func:`song_ids`).
    out_dir : str or PathLike
        The export folder.
    options : ExportOptions, optional
        Layers, features, rendering options, figures (default ``ExportOptions()``).
    force, resume : bool
        Start over (removing a previous export's files) / finish an interrupted export.
    workers : int
        Threads writing files while the next group is computed.
    device, trust, frontend
        As for :class:`~auralise.session.Session`.
    memory_budget : int
        Working-memory budget in bytes (songs that do not fit are streamed).
    progress : callable, optional
        ``progress(song_id, work_done, work_in_song, stage)``: units of work of the song (0 while not yet known;
        see :class:`~auralise.listening.song_export.Work`) and what is being done ("loading", "forward pass",
        "projecting layer 3", "resynthesising layer 3", "writing", "done"). Called at every stage and after every
        layer (or chunk of the song) projected and every batch written; the work done reaches the total when the
        song is finished. Called from the writer threads too, one call at a time.

    Returns
    -------
    dict
        The manifest (``manifest.json``).
    """
    from auralise.engine.selection import check_features
    from auralise.io.files import check_folder_lock
    from auralise.listening.page import write_page
    from auralise.session import Session

    options = ExportOptions() if options is None else options
    _check_arguments(audio, force=force, resume=resume, workers=workers, memory_budget=memory_budget)
    feature_kind, feature_arg = parse_feature_spec(options.features)
    layer_specs = parse_layer_spec(options.layers)
    session = Session(model, device=device, trust=trust, frontend=frontend, options=options.render)
    lays = session.layers(layer_specs)
    if feature_kind == "list":
        for lay in lays:
            check_features(feature_arg, lay)
    table = {row["layer"]: row for row in session.layer_table()}
    for p in audio:
        if not Path(p).is_file():
            raise BadParameterError(f"audio file not found: {p}")
    ids = song_ids(audio)
    model_info = _model_info(session)
    header = {"format": "auralise-journal", "model": model_info["sha256"], "frontend": session.frontend.to_dict(),
              **options.to_dict()}  # fmt: skip
    out = Path(out_dir)
    journal = Journal(out / JOURNAL, header)
    check_out_path(out)
    check_folder_lock(out)  # a live export there: say so, rather than what its half-made files look like
    check_folder(out, ids, journal, force=force, resume=resume)
    min_samples = session.frontend.min_samples_for(max(table[lay.number]["rf_frames"] for lay in lays))
    region = {"offset": options.offset, "duration": options.duration}
    for p in audio:  # decode every song once before writing anything (each is decoded again when its turn comes)
        session.song(p, min_samples=min_samples, **region)

    # Nothing was written so far. From here on the folder is locked; a start that fails before any item is
    # finished leaves nothing behind (no journal, no song files, no folder it created).
    with claim_folder(out, ids, journal, force=force, resume=resume) as done:
        songs = []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            context = ExportContext(options, lays, out, pool, journal, done, memory_budget, progress)
            for song_id, path in zip(ids, audio):
                if progress is not None:
                    progress(song_id, 0, 0, "loading")
                song = session.song(path, min_samples=min_samples, **region)
                items = SongExport(session, song, song_id, context).run(feature_kind, feature_arg)
                if options.evaluate:
                    _add_measures(session, song, song_id, items, progress)
                songs.append(_song_entry(session, song, song_id, items))
        manifest = _manifest(session, model_info, options, lays, table, songs)
        _write_json(out / MANIFEST, manifest)
        write_page(manifest, out)
    return manifest


def _add_measures(session: Session, song: Song, song_id: str, items: list[dict], progress: Progress | None) -> None:
    """``--evaluate``: each item's retention, specificity, deletion and distance to the song (levels kept; see
    :func:`auralise.studies.evaluation.feature_measures`), added to its manifest record (not to the journal: a
    resumed export measures again)."""
    from auralise.studies.evaluation import feature_measures

    chosen: dict[int, list[int]] = {}
    for item in items:
        chosen.setdefault(item["layer"], []).append(item["feature"])

    def report(number: int, done: int, total: int) -> None:
        if progress is not None:
            progress(song_id, done, total, f"evaluating layer {number}")

    measures = feature_measures(session, song, chosen, progress=report)
    for item in items:
        item.update(measures[(item["layer"], item["feature"])])


def _check_arguments(audio, *, force: bool, resume: bool, workers, memory_budget) -> None:
    """The checks of export's arguments that need no model."""
    if force and resume:
        raise BadParameterError("--force and --resume exclude each other: --resume finishes, --force starts over")
    if not audio:
        raise BadParameterError("no audio files given; pass one or more AUDIO files")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise BadParameterError(f"--workers must be a positive integer, got {workers!r}")
    if isinstance(memory_budget, bool) or not isinstance(memory_budget, int) or memory_budget < 1:
        raise BadParameterError(f"the memory budget must be a positive number of bytes, got {memory_budget!r}")


def _model_info(session: Session) -> dict:
    """The manifest's record of the model: its path as given, SHA-256, architecture name and labels."""
    return {
        "path": str(session.model_path),
        "sha256": session.model_sha256,
        "name": session.loaded.meta.get("architecture"),
        "labels": session.loaded.labels,
    }


def _song_entry(session: Session, song: Song, song_id: str, items: list[dict]) -> dict:
    """The manifest's record of one song and its items."""
    sr = session.frontend.sr
    return {
        "id": song_id,
        "source": str(song.path),
        "sha256": file_sha256(song.path),
        "offset": round(song.info.offset, 6),  # where the part used starts in the file (--offset), in seconds
        "duration": round(song.n_samples / sr, 3),
        "sr": sr,
        "original": {"wav": f"{song_id}/original.wav", "png": f"{song_id}/original.png"},
        "notes": list(song.info.notes),
        "items": items,
    }


def _manifest(
    session: Session, model_info: dict, options: ExportOptions, lays: list[Layer], table: dict, songs: list
) -> dict:
    """The manifest of a finished export (``manifest.json``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "software": software_versions(),
        "model": model_info,
        "frontend": session.frontend.to_dict(),
        "options": {**options.to_dict(), "layers": [lay.number for lay in lays]},
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


def _write_json(path: Path, data: dict) -> None:
    from auralise.io.files import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
