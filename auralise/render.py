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

import numpy as np

from .errors import BadParameterError, OutputError, check_choice
from .resynth import MODES, NORMALIZE, PHASES


def output_name(layer: int, feature: int, ext: str) -> str:
    """The one naming template for per-feature outputs: ``layer{L}_feature{F}.{ext}``."""
    return f"layer{layer}_feature{feature}.{ext}"


@dataclass
class FeatureOutput:
    """What was written for one feature.

    ``silent``: its WAV is silence, because the feature is never active on the song (activation max <= 0) or its
    projection is numerically zero; ``silent_reason`` says which (:data:`auralise.resynth.NEVER_ACTIVE` or
    :data:`auralise.resynth.NUMERICALLY_ZERO`), None when not silent.
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


def resolve_device(device: str | None) -> str:
    """``"auto"``/None → cuda when available else cpu; ``"cuda"`` without CUDA is a usage error."""
    import torch

    if device in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadParameterError("CUDA is not available on this machine; use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise BadParameterError(f"unknown device {device!r}; use cpu, cuda or auto")
    return device


def min_audio_samples(frontend, rf_frames: int) -> int:
    """Fewest samples whose STFT has ``rf_frames`` frames (so one unit of the layer sees real audio); for a
    waveform front-end the frames are samples."""
    if frontend.kind == "waveform":
        return max(frontend.n_fft, rf_frames)
    extra = 0 if frontend.center else frontend.n_fft
    return max(frontend.n_fft if not frontend.center else 1, (rf_frames - 1) * frontend.hop_length + extra)


def auralise_file(
    model,
    audio: str | os.PathLike,
    *,
    layer: int | str,
    features: Sequence[int],
    method: str = "deconvnet",
    select: str = "map",
    tap: str = "block",
    resynth: str = "mask",
    phase: str = "original",
    normalize: str = "peak",
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
    Default ``out_dir``: ``auralised/<audio stem>/``.
    """
    from .audio import atomic_path, check_output_dir, load_audio, write_audio
    from .deconv import check_features, parse_selection, project_features
    from .layers import discover, receptive_field
    from .modelfile import LoadedModel, load_model
    from .resynth import render_waves

    for value, choices, what in (
        (resynth, MODES, "resynthesis mode"),
        (phase, PHASES, "phase"),
        (normalize, NORMALIZE, "normalisation"),
    ):
        check_choice(value, choices, what)
    parse_selection(select)
    dev = resolve_device(device)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, frontend=frontend, trust=trust)
    loaded.to(dev)
    fe = loaded.frontend
    example = loaded.example_input()
    lay = discover(loaded.module, example).layer(layer)
    feats = list(check_features([int(f) for f in dict.fromkeys(features)], lay))
    out = Path(out_dir) if out_dir is not None else Path("auralised") / Path(audio).stem
    exts = ("wav", "png") if plot else ("wav",)
    targets = [out / output_name(lay.number, f, e) for f in feats for e in exts]
    existing = [str(t) for t in targets if t.exists()]
    if existing and not force:
        raise OutputError(f"{existing[0]} already exists; pass --force to overwrite or choose another --out")
    rf_frames, _ = receptive_field(loaded.module, example, lay, tap=tap, layout=fe.layout)
    y, info = load_audio(audio, sr=fe.sr, min_samples=min_audio_samples(fe, rf_frames))

    created = _first_missing(out)
    try:
        check_output_dir(out)
        X = fe.stft(y)
        S = fe.model_input(X, y=y).to(dev)
        proj = project_features(
            loaded.module,
            S,
            layer=lay.number,
            features=feats,
            method=method,
            select=select,
            tap=tap,
            example=example,
            layout=fe.layout,
        )
        rendered = render_waves(
            X,
            proj.D,
            frontend=fe,
            mode=resynth,
            phase=phase,
            length=len(y),
            normalize=normalize,
            activation_max=proj.activation_max,
        )
        waves, gains, D = rendered
        results = []
        # Every file is staged under a hidden temporary name; only when all of them are complete does leaving the
        # stack rename them onto their targets. A failure half-way (or an interrupt) removes the staged files and
        # leaves the targets as they were: no output of this run, previous outputs (under --force) intact.
        with contextlib.ExitStack() as staged:
            for k, f in enumerate(feats):
                wav = out / output_name(lay.number, f, "wav")
                subtype = "FLOAT" if normalize == "none" else "PCM_16"
                write_audio(staged.enter_context(atomic_path(wav)), waves[k], fe.sr, subtype=subtype)
                png = None
                if plot:
                    png = out / output_name(lay.number, f, "png")
                    _plot(np.abs(X), D[k], fe, lay.number, f, method, staged.enter_context(atomic_path(png)))
                results.append(
                    FeatureOutput(
                        lay.number,
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
    except BaseException:
        _remove_empty_dirs(out, created)
        raise
    return Result(results, notes=list(info.notes), warnings=rendered.warnings(lay.number, feats))


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
    from .display import feature_figure, save_figure

    fig = feature_figure(mag, D, frontend=fe, title=f"Feature {layer}-{feature}", method=method)
    return save_figure(fig, path)
