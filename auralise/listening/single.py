"""Auralise features of songs to files: per feature a WAV (the feature heard through the song's own phase), a PNG
and a JSON record.

Layout: each song's files go into one folder, by default ``auralised/<model>/<song>/`` (``--out`` is a folder
template naming ``{model}`` and ``{song}``: :func:`auralise.io.naming.output_folder`), named by the one template of
:func:`auralise.io.naming.output_name` (``layer3_feature38.wav``; options other than the defaults add tags:
``layer3_feature38_guided_max.wav``). Beside each WAV, a JSON of the same name records how it was made::

    {"format": "auralise-feature", "version": 1, "software": {...},
     "model": {"path", "sha256", "name"},
     "audio": {"path", "sha256", "offset", "duration", "seconds", "sr", "wav_sr", "notes"},
     "options": {"method", "select", "tap", "resynth", "phase", "normalize", "output_sr", "above_band"},
     "layer", "layer_path", "feature", "activation_max", "activation_energy", "gain", "silent", "silent_reason",
     "seeds": null | [{"unit", "activation", "time", "time_in_file", "hz"}], "files": {"wav", "png", "json"}}

``audio.offset``/``audio.duration``: the part of the file read (``--offset``/``--duration``; 0 and null for the
whole file), ``audio.seconds`` its length. ``seeds`` (``--select max`` or ``topk:K``; null for ``map``): the units
that seeded the projection, strongest first, each with its coordinates at the tap (batch, then the tap's spatial
axes), its activation, the centre of its receptive field in seconds from the start of the WAV (``time``) and of the
file (``time_in_file``), and in Hz (``hz``; null where the tap has no frequency axis of its own, as in 1-D models).

Example
-------
>>> import auralise
>>> result = auralise.auralise_file("models/choi2016-synth.pt", "demo_audio/dance.ogg",
...                                 layer=3, features=[38])                                   # doctest: +SKIP
>>> [str(p) for p in result.written]                                                          # doctest: +SKIP
['auralised/choi2016-synth/dance/layer3_feature38.wav', 'auralised/choi2016-synth/dance/layer3_feature38.png',
 'auralised/choi2016-synth/dance/layer3_feature38.json']
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError, OutputError
from auralise.io.naming import DEFAULT_OUT, output_folder, output_name

if TYPE_CHECKING:
    from auralise.engine.chunking import FeatureStats
    from auralise.engine.layers import Layer
    from auralise.render.resynth import Rendered
    from auralise.session import RenderOptions, Session, Song

__all__ = ["FeatureOutput", "Result", "auralise_file", "auralise_files", "DEFAULT_OUT"]

FORMAT, VERSION = "auralise-feature", 1
BATCH = 16  # features projected and rendered together (more features go batch by batch; the result is the same)


@dataclass
class FeatureOutput:
    """What was written for one feature.

    ``silent``: its WAV is silence, because the feature is never active on the song (activation max <= 0) or its
    projection is numerically zero; ``silent_reason`` says which (:data:`auralise.render.resynth.NEVER_ACTIVE` or
    :data:`auralise.render.resynth.NUMERICALLY_ZERO`), None when not silent. ``json``: its record (see the module
    docstring); ``seeds``: the seeded units as recorded there (None for ``--select map``).
    """

    layer: int
    feature: int
    wav: Path
    png: Path | None
    silent: bool
    activation_max: float
    activation_energy: float
    gain: float
    silent_reason: str | None = None
    json: Path | None = None
    seeds: list[dict] | None = None


@dataclass
class Result:
    """Everything :func:`auralise_file` wrote and noticed for one song (``song``: its name in the folder template)."""

    features: list[FeatureOutput]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line per silent feature, saying why
    song: str = ""
    folder: Path | None = None

    @property
    def written(self) -> list[Path]:
        return [p for f in self.features for p in (f.wav, f.png, f.json) if p is not None]


def auralise_file(
    model,
    audio: str | os.PathLike,
    *,
    layer: int | str | Sequence[int | str],
    features: Sequence[int] | int | str,
    options: RenderOptions | None = None,
    out_dir: str | os.PathLike | None = None,
    plot: bool = True,
    force: bool = False,
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> Result:
    """Load ``model`` and ``audio``, project ``features`` of ``layer``, write a WAV, a PNG and a JSON per feature.

    Every check (layers, features, options, output files) happens before anything is computed or written; files
    are written under temporary names and renamed, so an error or interrupt leaves no partial output.

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        The model file (or a loaded model).
    audio : str or PathLike
        The song.
    layer : int, str or sequence of them
        Conv layer(s): 1-based numbers in execution order or module paths; a string may list several as export's
        ``--layers`` does (``"1,3"``, ``"2-4"``, ``"all"``).
    features : int, sequence of int, or str
        Features (output channels) of each layer, 0-based, repeats counted once; or export's ``--features`` syntax:
        ``"0,5,38"``, ``"0-15"``, ``"all"``, ``"top:K"`` (the K features of most activation energy on the song).
    options : RenderOptions, optional
        Method, selection, tap, resynthesis, phase and normalisation (default ``RenderOptions()``).
    out_dir : str or PathLike, optional
        Output folder, which may name ``{model}`` and ``{song}``; default :data:`DEFAULT_OUT`
        (``auralised/{model}/{song}``).
    plot : bool
        Also write a PNG figure per feature.
    force : bool
        Overwrite existing output files.
    device, trust, frontend
        As for :class:`~auralise.session.Session`.
    offset, duration : float
        The part of the song to use, in seconds (:func:`auralise.io.audio.load_audio`); default the whole song.

    Returns
    -------
    Result
        Per feature its files and statistics; the audio's notes; one warning per silent feature.
    """
    return auralise_files(model, [audio], layers=layer, features=features, options=options, out=out_dir,
                          plot=plot, force=force, device=device, trust=trust, frontend=frontend, offset=offset,
                          duration=duration)[0]  # fmt: skip


def auralise_files(
    model,
    audio: Sequence[str | os.PathLike],
    *,
    layers: int | str | Sequence[int | str],
    features: Sequence[int] | int | str,
    options: RenderOptions | None = None,
    out: str | os.PathLike | None = None,
    plot: bool = True,
    force: bool = False,
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> list[Result]:
    """:func:`auralise_file` for several songs with one loaded model: each song's files in its own folder.

    ``out`` must name ``{song}`` when there are several songs (else they would share one folder). All songs are
    read, and every output file named by a feature list is checked, before anything is written; then the songs
    are done one by one, each song's files all or nothing. Returns one :class:`Result` per song, in order.
    """
    from auralise.engine.selection import check_features
    from auralise.io.audio import check_region
    from auralise.listening.export import song_ids
    from auralise.session import Session

    offset, duration = check_region(offset, duration)
    audio = [audio] if isinstance(audio, str | os.PathLike) else list(audio)
    if not audio:
        raise BadParameterError("no audio files given; pass one or more AUDIO files")
    session = Session(model, device=device, trust=trust, frontend=frontend, options=options)
    lays = session.layers(_layer_specs(layers))
    kind, arg = _feature_spec(features)
    if kind == "list":
        for lay in lays:
            check_features(arg, lay)
    ids = song_ids(audio)
    folders = _folders(out, session, ids)
    if kind != "top":
        _check_targets([folder / name for folder in folders for name in _names(session, lays, kind, arg, plot)], force)
    min_samples = session.min_samples(lays)
    read = dict(min_samples=min_samples, offset=offset, duration=duration)
    if len(audio) > 1:  # every song must be readable before the first is written (each is decoded again in turn)
        for path in audio:
            session.song(path, **read)
    results = []
    for path, song_id, folder in zip(audio, ids, folders):
        song = session.song(path, **read)
        results.append(_auralise_song(session, song, song_id, folder, lays, (kind, arg), plot=plot, force=force))
    return results


def _layer_specs(layers: int | str | Sequence[int | str]) -> list[int | str] | None:
    """Layers as given -> specs for :meth:`Session.layers` (None: all); strings use export's ``--layers`` syntax."""
    from auralise.engine.selection import parse_layer_spec

    if isinstance(layers, int | np.integer) and not isinstance(layers, bool):
        return [int(layers)]
    if isinstance(layers, str):
        return parse_layer_spec(layers)
    specs: list[int | str] = []
    for item in layers:
        more = _layer_specs(item)
        if more is None:
            return None
        specs += more
    if not specs:
        raise BadParameterError("no layers given; pass layer numbers such as 3 or 1,3, or 'all'")
    return specs


def _feature_spec(features: Sequence[int] | int | str) -> tuple[str, list[int] | int | None]:
    """Features as given -> (kind, arg) of :func:`auralise.engine.selection.parse_feature_spec`."""
    from auralise.engine.selection import parse_feature_spec

    if isinstance(features, str):
        return parse_feature_spec(features)
    if isinstance(features, int | np.integer) and not isinstance(features, bool):
        return "list", [int(features)]
    return "list", list(dict.fromkeys(features))


def _folders(out: str | os.PathLike | None, session: Session, ids: list[str]) -> list[Path]:
    """Each song's output folder from the ``out`` template; two songs sharing one is an error."""
    from auralise.listening.export import song_ids

    template = DEFAULT_OUT if out is None else out
    model_path = session.model_path
    model = song_ids([model_path])[0] if model_path else "model"
    folders = [output_folder(template, model=model, song=song) for song in ids]
    if len(set(folders)) < len(folders):
        raise BadParameterError(
            f"{len(ids)} songs would all write into {folders[0]}: put {{song}} in --out, such as "
            f"--out '{Path(str(template)) / '{song}'}'"
        )
    return folders


def _names(session: Session, lays: list[Layer], kind: str, arg, plot: bool) -> list[str]:
    """The file names one song gets for an ``all`` or list feature selection."""
    picks = [(lay.number, f) for lay in lays for f in (range(lay.channels) if kind == "all" else arg)]
    exts = ("wav", "png", "json") if plot else ("wav", "json")
    return [output_name(n, f, e, session.options.to_dict()) for n, f in picks for e in exts]


def _check_targets(targets: list[Path], force: bool) -> None:
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]
    if existing and not force:
        raise OutputError(f"{existing[0]} already exists; pass --force to overwrite or choose another --out")


def _auralise_song(
    session: Session, song: Song, song_id: str, folder: Path, lays: list[Layer], spec, *, plot: bool, force: bool
) -> Result:
    """One song: one projector for all layers, then per layer project, render and stage the files; the song's
    files are renamed onto their targets only when all of them are complete."""
    import torch

    from auralise.io.files import check_output_dir
    from auralise.listening.song_export import _choose

    created = _first_missing(folder)
    outputs: list[FeatureOutput] = []
    warnings: list[str] = []
    try:
        check_output_dir(folder)
        projector = session.projector(song, lays)
        with torch.inference_mode():
            stats = projector.statistics()
        picks = [(lay, _choose(spec[0], spec[1], lay.channels, stats[lay.number])) for lay in lays]
        if spec[0] == "top":  # the features are known only now
            _check_targets([folder / n for lay, fs in picks for n in _names(session, [lay], "list", fs, plot)], force)
        record = _Record(session, song)
        with contextlib.ExitStack() as staged:
            for lay, chosen in picks:
                seeds = SeedPlaces(session, song, lay, stats[lay.number])
                for i in range(0, len(chosen), BATCH):  # a batch's projections and renderings in memory at a time
                    feats = chosen[i : i + BATCH]
                    with torch.inference_mode():
                        ((_, _, D),) = projector.project([(lay.number, feats)])
                    index = torch.tensor(feats, device=stats[lay.number].energy.device)
                    rendered = session.render(song, D, activation_max=stats[lay.number].maximum[index], layer=lay)
                    del D
                    written = _write_layer(staged, session, song, lay, feats, stats[lay.number], rendered, folder,
                                           plot)  # fmt: skip
                    for item in written:
                        item.seeds = seeds.of(item.feature)
                        _stage_json(staged, item, record.of(lay, item))
                    outputs += written
                    warnings += rendered.warnings(lay.number, feats)
    except BaseException:
        _remove_empty_dirs(folder, created)
        raise
    return Result(outputs, notes=list(song.info.notes), warnings=warnings, song=song_id, folder=folder)


def _write_layer(
    staged: contextlib.ExitStack,
    session: Session,
    song: Song,
    lay: Layer,
    feats: list[int],
    stats: FeatureStats,
    rendered: Rendered,
    out: Path,
    plot: bool,
) -> list[FeatureOutput]:
    """Stage each feature's WAV (and PNG) of one layer under ``staged``: hidden temporary files, renamed onto their
    targets when the stack closes without an error (an error or interrupt removes them, leaving the targets as
    they were)."""
    from auralise.io.audio import write_audio
    from auralise.io.files import atomic_path

    fe, number, options = session.frontend, lay.number, session.options.to_dict()
    subtype = "FLOAT" if session.options.normalize == "none" else "PCM_16"
    waves, gains, D = rendered
    results = []
    for k, f in enumerate(feats):
        wav = out / output_name(number, f, "wav", options)
        write_audio(staged.enter_context(atomic_path(wav)), waves[k], rendered.sr or fe.sr, subtype=subtype)
        png = None
        if plot:
            png = out / output_name(number, f, "png", options)
            _plot(song.magnitude, D[k], fe, number, f, options["method"], staged.enter_context(atomic_path(png)))
        results.append(
            FeatureOutput(
                number,
                f,
                wav,
                png,
                bool(rendered.silent[k]),
                float(stats.maximum[f]),
                float(stats.energy[f]),
                float(gains[k]),
                rendered.reasons[k],
                json=out / output_name(number, f, "json", options),
            )
        )
    return results


class _Record:
    """The parts of a feature's JSON record shared by every feature of one song (see the module docstring)."""

    def __init__(self, session: Session, song: Song):
        from auralise.io.digest import file_sha256
        from auralise.listening.export import software_versions

        info, sr = song.info, session.frontend.sr
        self.head = {
            "format": FORMAT,
            "version": VERSION,
            "software": software_versions(),
            "model": {
                "path": str(session.model_path),
                "sha256": session.model_sha256,
                "name": session.loaded.meta.get("architecture"),
            },
            "audio": {
                "path": str(song.path),
                "sha256": file_sha256(song.path),
                "offset": round(info.offset, 6),
                "duration": info.duration,
                "seconds": round(song.n_samples / sr, 6),
                "sr": sr,
                "wav_sr": session.output_rate(song),
                "notes": list(info.notes),
            },
            "options": session.options.to_dict(),
        }

    def of(self, lay: Layer, item: FeatureOutput) -> dict:
        return {
            **self.head,
            "layer": lay.number,
            "layer_path": lay.path,
            "feature": item.feature,
            "activation_max": item.activation_max,
            "activation_energy": item.activation_energy,
            "gain": item.gain,
            "silent": item.silent,
            "silent_reason": item.silent_reason,
            "seeds": item.seeds,
            "files": {k: p.name if p is not None else None for k, p in (("wav", item.wav), ("png", item.png),
                                                                         ("json", item.json))},
        }  # fmt: skip


def _stage_json(staged: contextlib.ExitStack, item: FeatureOutput, record: dict) -> None:
    from auralise.io.files import atomic_path

    tmp = staged.enter_context(atomic_path(item.json))
    tmp.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n", encoding="utf-8")


class SeedPlaces:
    """Where the units that seeded a projection lie (``--select max``/``topk:K``): tap coordinates, activation,
    seconds and Hz of the centre of their receptive field."""

    def __init__(self, session: Session, song: Song, lay: Layer, stats: FeatureStats):
        self.stats, self.active = stats, stats.top_positions is not None
        if not self.active:
            return
        fe = session.frontend
        self.offset = song.info.offset
        self.time = _geometry(session, lay, fe.layout)
        swapped = {"BCFT": "BCTF", "BCTF": "BCFT", "BFT": "BTF", "BTF": "BFT"}[fe.layout]
        has_freq = fe.n_input_freq > 1 and not fe.projection_is_audio
        self.freq = _geometry(session, lay, swapped) if has_freq else None
        self.freqs = fe.input_freqs() if self.freq is not None else None
        self.fe = fe

    def of(self, feature: int) -> list[dict] | None:
        if not self.active:
            return None
        values = self.stats.top_values[feature].double().cpu().numpy()
        positions = self.stats.top_positions[feature].cpu().numpy()
        seeds = []
        for value, pos in zip(values, positions):
            if not value > 0:  # a unit that is not active seeds nothing
                continue
            seed = {"unit": [int(p) for p in pos], "activation": float(value), "time": None, "time_in_file": None,
                    "hz": None}  # fmt: skip
            if self.time is not None:
                seed["time"] = round(self._seconds(_centre(self.time, pos)), 6)
                seed["time_in_file"] = round(seed["time"] + self.offset, 6)
            if self.freq is not None:
                bin_ = float(np.clip(_centre(self.freq, pos), 0, len(self.freqs) - 1))
                seed["hz"] = round(float(np.interp(bin_, np.arange(len(self.freqs)), self.freqs)), 3)
            seeds.append(seed)
        return seeds

    def _seconds(self, frame: float) -> float:
        """Seconds of input frame ``frame`` (a sample for waveform front-ends, else a frame's centre)."""
        return self.fe.frame_seconds(max(frame, 0.0))


def _geometry(session: Session, lay: Layer, layout: str):
    """The tap's tiling of the input axis that ``layout`` calls time (:func:`auralise.engine.layers.time_geometry`,
    whose support rule measures any axis: with the layout's time and frequency swapped, it measures frequency);
    None where the tap has no such tiling."""
    from auralise.engine.layers import time_geometry

    try:
        return time_geometry(session.module, session.example, lay, tap=session.options.tap, layout=layout)
    except (RuntimeError, ValueError, IndexError):  # a model that only takes its own input size along that axis
        return None


def _centre(geometry, position) -> float:
    """Centre, in input frames (or bins), of the receptive field of the unit at ``position`` (batch, *spatial)."""
    unit = int(position[geometry.tap_axis - 1])
    return geometry.offset + unit * geometry.stride + (geometry.frames - 1) / 2.0


def _first_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (None if ``folder`` exists)."""
    missing = None
    for d in (folder, *folder.parents):
        if d.exists():
            break
        missing = d
    return missing


def _remove_empty_dirs(folder: Path, upto: Path | None) -> None:
    """Remove ``folder`` and its parents up to ``upto`` (the folders this run created) while they are empty."""
    if upto is None:
        return
    for d in (folder, *folder.parents):
        try:
            d.rmdir()
        except OSError:
            return
        if d == upto:
            return


def _plot(mag: np.ndarray, D: np.ndarray, fe, layer: int, feature: int, method: str, path: Path) -> Path:
    from auralise.figures.display import feature_figure, save_figure

    fig = feature_figure(mag, D, frontend=fe, title=f"Feature {layer}-{feature}", method=method)
    return save_figure(fig, path)
