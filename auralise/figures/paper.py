"""One call per paper figure: load the model (and song), compute, draw with :mod:`auralise.figures.drawing`, save.

These are what the ``auralise figure ...`` commands run. Every check (features, output path, width, notes file)
happens before anything is computed; the file is written atomically with the command line in its metadata.

Example
-------
>>> from auralise.figures.paper import grid
>>> grid("models/choi2016-synth.pt", "demo_audio/dance.ogg", "1-42,3-62,5-41", "fig.pdf")   # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

from auralise.choices import FIGURE_SUFFIXES, FREQ_AXES
from auralise.errors import BadParameterError, OutputError, check_choice
from auralise.io.files import parse_json

FIGURE_EXTENSIONS = FIGURE_SUFFIXES  # the file's extension chooses the format


def parse_feature_pairs(spec: str) -> list[tuple[int, int]]:
    """``"1-9,1-27,3-38"`` → [(1, 9), (1, 27), (3, 38)]: features named "L-F" as in the paper."""
    pairs = []
    for part in str(spec).split(","):
        m = re.fullmatch(r"\s*(\d+)-(\d+)\s*", part)
        if not m or int(m.group(1)) < 1:
            raise BadParameterError(
                f"bad feature list {spec!r}: name features LAYER-FEATURE, comma separated, e.g. 1-9,3-38"
            )
        pairs.append((int(m.group(1)), int(m.group(2))))
    return list(dict.fromkeys(pairs))


def load_notes(path: str | os.PathLike | None, model_sha: str | None) -> tuple[dict[str, str], list[str]]:
    """Feature names from a listening page's notes JSON ({"3-38": "kick"}), and warnings (another model's notes)."""
    if path is None:
        return {}, []
    try:
        data = parse_json(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadParameterError(f"notes file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        reason = str(exc).splitlines()[0]
        raise BadParameterError(f"cannot read notes file {path} ({reason}); pass the JSON the page downloads") from None
    if (
        not isinstance(data, dict)
        or data.get("format") != "auralise-notes"
        or not isinstance(data.get("features"), dict)
    ):
        raise BadParameterError(f"{path} is not an auralise notes file (format 'auralise-notes' with 'features')")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise BadParameterError(
            f"bad notes file {path}: 'model' must be the model file's SHA-256 as a string, "
            f"got {type(model).__name__}; pass the JSON the page downloads"
        )
    for key, value in data["features"].items():
        if not isinstance(value, str):
            raise BadParameterError(
                f"bad notes file {path}: the note of feature {key!r} must be a string, got {type(value).__name__}; "
                "pass the JSON the page downloads"
            )
        if not (_is_unicode_text(key) and _is_unicode_text(value)):
            raise BadParameterError(
                f"bad notes file {path}: the note of feature {key!r} is not Unicode text (a lone surrogate escape); "
                "pass the JSON the page downloads"
            )
    warnings = []
    if model_sha and model and model != model_sha:
        warnings.append(f"the notes in {path} were written for another model file (sha256 {model[:12]})")
    names = {str(k): " ".join(v.split()) for k, v in data["features"].items()}  # one line, as typed (no TeX)
    return {k: v for k, v in names.items() if v}, warnings


def _is_unicode_text(text: str) -> bool:
    """Whether ``text`` is text UTF-8 can carry (JSON's ``\\ud800`` escapes can make a string that is not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def check_figure_path(out: str | os.PathLike, force: bool) -> Path:
    """The output path, checked: a known extension, not an existing file unless ``force``."""
    path = Path(out)
    if path.suffix.lower() not in FIGURE_EXTENSIONS:
        raise BadParameterError(f"--out must end in {', '.join(FIGURE_EXTENSIONS)} (the format follows it): {out}")
    if path.exists() and not force:
        raise OutputError(f"{path} already exists; pass --force to overwrite or choose another --out")
    if path.is_dir():
        raise OutputError(f"{path} is a folder; give a file name ending in {_one_of(FIGURE_EXTENSIONS)}")
    return path


def _one_of(values: Sequence[str]) -> str:
    """``"a, b or c"``."""
    return f"{', '.join(values[:-1])} or {values[-1]}"


def _finish(fig, out: Path, command: str | None) -> Path:
    from auralise.figures.style import save_figure_file
    from auralise.io.files import check_output_dir

    check_output_dir(out.parent)
    return save_figure_file(fig, out, command=command)


def grid(
    model,
    audio: str | os.PathLike,
    features: str,
    out: str | os.PathLike,
    *,
    original: bool = False,
    freq_axis: str = "auto",
    shared_scale: bool = False,
    columns: int | None = None,
    notes: str | os.PathLike | None = None,
    width: str | float = "double",
    method: str = "deconvnet",
    select: str = "map",
    tap: str = "block",
    device: str | None = "auto",
    force: bool = False,
    command: str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
) -> tuple[Path, list[str]]:
    """Deconvolved spectrograms of the named features of one song, one panel each (Figs. 3–8); (path, warnings).

    ``offset``/``duration``: the part of the song drawn, in seconds (:func:`auralise.io.audio.load_audio`).

    The warnings are one line each: notes written for another model file, and every silent feature (never active on
    the song, or a numerically zero projection; its panel is empty and titled "... · silent"). Names from
    ``notes`` are shown as plain text. ``freq_axis`` ("auto": the front-end's own), ``columns`` (default: chosen
    from the number of panels) and ``width``: see :func:`auralise.figures.drawing.grid_figure`.
    """
    import functools

    import torch

    from auralise.engine.selection import check_features
    from auralise.figures.drawing import figure_width, grid_figure, house_style
    from auralise.session import RenderOptions, Session

    pairs = parse_feature_pairs(features)
    path = check_figure_path(out, force)
    figure_width(width)
    check_choice(freq_axis, FREQ_AXES, "frequency axis")
    session = Session(model, device=device, options=RenderOptions(method=method, select=select, tap=tap))
    names, warnings = load_notes(notes, session.model_sha256 if notes is not None else None)
    fe = session.frontend
    layers = {n: session.layer(n) for n in dict.fromkeys(n for n, _ in pairs)}
    for n, f in pairs:
        check_features([f], layers[n])
    song = session.song(audio, min_samples=session.min_samples(list(layers.values())), offset=offset,
                        duration=duration)  # fmt: skip
    projector = session.projector(song, list(layers.values()))
    groups = [(n, [f for m, f in pairs if m == n]) for n in layers]
    # a projection that is audio is drawn at the song's level (a framed front-end undoes its per-frame scaling)
    to_grid = functools.partial(fe.to_grid, y=song.y) if fe.projection_is_audio else fe.to_grid
    with torch.inference_mode():
        projected = {(n, f): to_grid(D[k : k + 1].cpu())[0] for n, fs, D in projector.project(groups)
                     for k, f in enumerate(fs)}  # fmt: skip
        stats = projector.statistics()
    import numpy as np

    from auralise.render.resynth import numerically_zero

    panels = []
    for n, f in pairs:
        name = names.get(f"{n}-{f}")
        D = projected[(n, f)]
        if not float(stats[n].maximum[f]) > 0:  # never active: silent, as its WAV would be
            warnings.append(f"feature {n}-{f} is silent: never active on this song (activation max <= 0)")
            D = np.zeros_like(D)
        elif numerically_zero(np.max(D, initial=0.0)):
            warnings.append(f"feature {n}-{f} is silent: its projection is numerically zero")
        panels.append((f"Feature {n}-{f}" + (f" · {name}" if name else ""), D))

    with house_style():
        fig = grid_figure(
            panels,
            frontend=fe,
            original=song.magnitude if original else None,
            freq_axis=freq_axis,
            shared_scale=shared_scale,
            columns=columns,
            width=width,
            time_offset=float(getattr(song.info, "offset", 0.0) or 0.0),  # times in seconds of the file
        )
        return _finish(fig, path, command), warnings


def filters(
    model,
    out: str | os.PathLike,
    *,
    layer: int | str = 1,
    features: Sequence[int] | None = None,
    width: str | float = "double",
    force: bool = False,
    command: str | None = None,
) -> Path:
    """The learned kernels of one layer as images, diverging colours centred on zero (Fig. 4); a layer whose kernels
    read the samples (a waveform or framed front-end's first layer) as waveforms and spectra
    (:func:`auralise.figures.kernels.waveform_kernels_figure`)."""
    from auralise.engine.layers import discover
    from auralise.engine.selection import check_features
    from auralise.figures.drawing import filters_figure, layer_weights
    from auralise.figures.kernels import reads_samples, waveform_kernels_figure
    from auralise.figures.style import figure_width, house_style
    from auralise.io.modelfile import LoadedModel, load_model

    path = check_figure_path(out, force)
    figure_width(width)
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    lay = discover(loaded.module, loaded.example_input()).layer(layer)
    feats = list(check_features(list(features), lay)) if features is not None else None
    weights = layer_weights(loaded.module, lay)
    with house_style():
        if reads_samples(weights, loaded.frontend.projection_is_audio):  # kernels over samples: waveforms, spectra
            fig = waveform_kernels_figure(weights, sr=loaded.frontend.sr, features=feats, layer=lay.number, width=width)
            return _finish(fig, path, command)
        fig = filters_figure(
            weights,
            features=feats,
            layer=lay.number,
            width=width,
            layout=loaded.frontend.layout,  # time along x, frequency along y, whichever axis the model has first
        )
        return _finish(fig, path, command)


def receptive_field_table(model, *, fmt: str = "md", tap: str = "block") -> str:
    """Table 1: per layer the kernel and the effective width (frames, ms) and height (bins, Hz)."""
    from auralise.engine.layers import layer_table
    from auralise.figures.drawing import receptive_field_table as format_table
    from auralise.io.modelfile import LoadedModel, load_model

    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    rows = layer_table(loaded.module, loaded.example_input(), loaded.frontend, tap=tap)
    return format_table(rows, fmt=fmt)


def attributes(
    model,
    out: str | os.PathLike,
    *,
    instruments: Sequence[str] | None = None,
    chords: Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    csv_path: str | os.PathLike | None = None,
    width: str | float = "double",
    method: str = "deconvnet",
    tap: str = "block",
    force: bool = False,
    command: str | None = None,
    progress=None,
    quick: bool = False,
    estimate=None,
):
    """The key/chord/instrument study (Fig. 10): figure at ``out``, numbers at ``csv_path``; returns the table.

    ``quick``: the design of :data:`auralise.choices.QUICK_ATTRIBUTES` (8 signals) instead of the default 192 (not
    with ``instruments``, ``chords`` or ``keys``). ``progress`` and ``estimate`` go to
    :func:`~auralise.studies.attributes.attribute_study`.
    """
    from auralise.choices import QUICK_ATTRIBUTES
    from auralise.figures.attributes import attributes_figure
    from auralise.figures.style import figure_width, house_style
    from auralise.io.modelfile import LoadedModel, load_model
    from auralise.studies.attributes import attribute_study

    design = {"instruments": instruments, "chords": chords, "keys": keys}
    if quick and any(design.values()):
        given = ", ".join(f"--{k}" for k, v in design.items() if v)
        raise BadParameterError(f"--quick chooses its own design; leave out {given} or --quick")
    path = check_figure_path(out, force)
    if csv_path is not None and Path(csv_path).exists() and not force:
        raise OutputError(f"{csv_path} already exists; pass --force to overwrite or choose another --csv")
    inches = figure_width(width)
    loaded = model if isinstance(model, LoadedModel) else load_model(model)
    kwargs = {k: list(v) for k, v in (QUICK_ATTRIBUTES if quick else design).items() if v}
    table = attribute_study(loaded, method=method, tap=tap, progress=progress, estimate=estimate, **kwargs)
    with house_style():
        fig = attributes_figure(table, width=inches)
        _finish(fig, path, command)
    if csv_path is not None:
        table.to_csv(csv_path)  # atomic
    return table
