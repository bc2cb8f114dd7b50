"""Auralise features of one song to files: WAV (the feature heard through the song's own phase) and PNG.

Example
-------
>>> import auralise
>>> result = auralise.auralise_file("models/choi2016-synth.pt", "demo_audio/dance.ogg",
...                                 layer=3, features=[38], out_dir="auralised/dance")   # doctest: +SKIP
>>> [str(p) for p in result.written]                                                      # doctest: +SKIP
['auralised/dance/layer3_feature38.wav', 'auralised/dance/layer3_feature38.png']
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import OutputError
from auralise.io.naming import output_name

if TYPE_CHECKING:
    from auralise.engine.deconv import Projection
    from auralise.render.resynth import Rendered
    from auralise.session import RenderOptions, Session, Song


@dataclass
class FeatureOutput:
    """What was written for one feature.

    ``silent``: its WAV is silence, because the feature is never active on the song (activation max <= 0) or its
    projection is numerically zero; ``silent_reason`` says which (:data:`auralise.render.resynth.NEVER_ACTIVE` or
    :data:`auralise.render.resynth.NUMERICALLY_ZERO`), None when not silent.
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


@dataclass
class Result:
    """Everything :func:`auralise_file` wrote and noticed."""

    features: list[FeatureOutput]
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # one line per silent feature, saying why

    @property
    def written(self) -> list[Path]:
        return [p for f in self.features for p in (f.wav, f.png) if p is not None]


def auralise_file(
    model,
    audio: str | os.PathLike,
    *,
    layer: int | str,
    features: Sequence[int],
    options: RenderOptions | None = None,
    out_dir: str | os.PathLike | None = None,
    plot: bool = True,
    force: bool = False,
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
) -> Result:
    """Load ``model`` and ``audio``, project ``features`` of ``layer``, write one WAV (+ PNG) per feature.

    Every check (layer, features, options, output files) happens before anything is computed or written; files
    are written under temporary names and renamed, so an error or interrupt leaves no partial output.

    Parameters
    ----------
    model : str, PathLike or LoadedModel
        The model file (or a loaded model).
    audio : str or PathLike
        The song.
    layer : int or str
        Conv layer: 1-based number in execution order, or module path.
    features : sequence of int
        Features (output channels) of that layer, 0-based; repeats count once.
    options : RenderOptions, optional
        Method, selection, tap, resynthesis, phase and normalisation (default ``RenderOptions()``).
    out_dir : str or PathLike, optional
        Output folder; default ``auralised/<audio stem>/``.
    plot : bool
        Also write a PNG figure per feature.
    force : bool
        Overwrite existing output files.
    device, trust, frontend
        As for :class:`~auralise.session.Session`.

    Returns
    -------
    Result
        Per feature its files and statistics; the audio's notes; one warning per silent feature.
    """
    from auralise.engine.selection import check_features
    from auralise.io.files import check_output_dir
    from auralise.session import Session

    session = Session(model, device=device, trust=trust, frontend=frontend, options=options)
    lay = session.layer(layer)
    feats = list(check_features([int(f) for f in dict.fromkeys(features)], lay))
    out = Path(out_dir) if out_dir is not None else Path("auralised") / Path(audio).stem
    exts = ("wav", "png") if plot else ("wav",)
    targets = [out / output_name(lay.number, f, e) for f in feats for e in exts]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise OutputError(f"{existing[0]} already exists; pass --force to overwrite or choose another --out")
    song = session.song(audio, min_samples=session.min_samples([lay]))

    created = _first_missing(out)
    try:
        check_output_dir(out)
        proj = session.project(song, lay, feats)
        rendered = session.render(song, proj.D, activation_max=proj.activation_max)
        results = _write_outputs(session, song, proj, rendered, out, plot)
    except BaseException:
        _remove_empty_dirs(out, created)
        raise
    return Result(results, notes=list(song.info.notes), warnings=rendered.warnings(lay.number, feats))


def _write_outputs(
    session: Session, song: Song, proj: Projection, rendered: Rendered, out: Path, plot: bool
) -> list[FeatureOutput]:
    """Write each feature's WAV (and PNG) into ``out``, all or nothing.

    Every file is staged under a hidden temporary name; only when all of them are complete does leaving the stack
    rename them onto their targets. A failure half-way (or an interrupt) removes the staged files and leaves the
    targets as they were: no output of this run, previous outputs (under --force) intact.
    """
    from auralise.io.audio import write_audio
    from auralise.io.files import atomic_path

    fe, number, method = session.frontend, proj.layer.number, session.options.method
    subtype = "FLOAT" if session.options.normalize == "none" else "PCM_16"
    waves, gains, D = rendered
    results = []
    with contextlib.ExitStack() as staged:
        for k, f in enumerate(proj.features):
            wav = out / output_name(number, f, "wav")
            write_audio(staged.enter_context(atomic_path(wav)), waves[k], fe.sr, subtype=subtype)
            png = None
            if plot:
                png = out / output_name(number, f, "png")
                _plot(song.magnitude, D[k], fe, number, f, method, staged.enter_context(atomic_path(png)))
            results.append(
                FeatureOutput(
                    number,
                    f,
                    wav,
                    png,
                    bool(rendered.silent[k]),
                    float(proj.activation_max[k]),
                    float(proj.activation_energy[k]),
                    float(gains[k]),
                    rendered.reasons[k],
                )
            )
    return results


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
