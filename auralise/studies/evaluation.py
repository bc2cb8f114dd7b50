"""Evaluation tables: the faithfulness measures of many songs x layers x features, under one or many options.

:func:`evaluate` judges the auralisations a :class:`~auralise.session.Session` makes with its own options;
:func:`compare` judges every combination of backward rule x listening mode x selection (the method comparison of
``auralise figure faithfulness``). Both return an :class:`EvaluationTable`, which writes itself as JSON
(:meth:`EvaluationTable.to_dict`, schema below) and CSV (one row per song, layer, options and feature), and report
progress through a callback ``progress(done, total, stage)`` in features evaluated. The measures are those of
:mod:`auralise.studies.faithfulness`, always with ``normalize="none"`` (levels are part of what is measured).

JSON schema (``"schema": 1``)::

    {"format": "auralise-evaluation", "schema": 1,
     "model": {"path": str | null, "sha256": str | null},
     "region": {"offset": float, "duration": float | null},       # the part of each song used, in seconds
     "measures": {name: one-line definition},                      # the keys of every "medians" and feature
     "results": [                                                  # one per (song, options, layer)
       {"song": str, "options": {"method", "select", "tap", "resynth", "phase", "normalize": "none", ...},
        "layer": int, "layer_path": str,
        "median_distinguishability_db": float | null,              # median pairwise distance between features
        "medians": {"retention", "specificity", "deletion", "distance_to_song_db", "distinguishability_db"},
        "features": [{"feature": int, "silent": bool, "retention", "specificity", "deletion",
                      "distance_to_song_db", "distinguishability_db"}]}]}

Every measure is a float or null (silent features, or a feature never active on the song). Medians skip nulls.

Example
-------
>>> from auralise.session import Session
>>> from auralise.studies.evaluation import evaluate
>>> session = Session("models/choi2016-synth.pt")                                          # doctest: +SKIP
>>> table = evaluate(session, ["demo_audio/dance.ogg"], layers=[1, 3], features="0-15")   # doctest: +SKIP
>>> table.to_csv("faithfulness.csv"); print(table)                                       # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.choices import METHODS, RESYNTH_MODES, SELECTIONS
from auralise.errors import BadParameterError

if TYPE_CHECKING:
    from auralise.engine.layers import Layer
    from auralise.session import RenderOptions, Session, Song
    from auralise.studies.faithfulness import LayerFaithfulness

__all__ = [
    "EvaluationTable",
    "EvaluationEntry",
    "evaluate",
    "compare",
    "feature_measures",
    "spread",
    "FORMAT",
    "SCHEMA",
    "MEASURES",
]

FORMAT = "auralise-evaluation"
SCHEMA = 1
MEASURES = {
    "retention": "E_f(w_f) / E_f(y): the feature's activation energy on its auralisation over that on the song",
    "specificity": "R_f / median over the layer's other active features g of E_g(w_f) / E_g(y)",
    "deletion": "E_f(y - w_f) / E_f(y): the response left when the auralisation is taken out of the song",
    "distance_to_song_db": "RMS dB difference of the 38-band long-term spectra (level removed) of w_f and y",
    "distinguishability_db": "median RMS dB difference of w_f's band spectrum to the other features' of the layer",
}
ITEM_MEASURES = ("retention", "specificity", "deletion", "distance_to_song_db")  # per feature, alone: export records
OPTION_KEYS = ("method", "select", "tap", "resynth", "phase", "normalize")
CSV_FIELDS = ("song", "layer", *OPTION_KEYS, "feature", "silent", *MEASURES)
SPREAD = 8  # features per layer when none are named: spread evenly over the layer
Progress = Callable[[int, int, str], None]  # (features done, features in all, stage)


@dataclass(frozen=True)
class EvaluationEntry:
    """The measures of one layer on one song (``song``: its path, as given) under ``options``."""

    song: str
    options: RenderOptions
    layer_path: str
    result: LayerFaithfulness

    def feature_rows(self) -> list[dict[str, Any]]:
        """One dict per feature: ``feature``, ``silent`` and every measure of :data:`MEASURES` (NaN: missing)."""
        r = self.result
        rows = []
        for k, f in enumerate(r.features):
            values = (r.retention[k], r.specificity[k], r.deletion[k], r.distance_to_song[k], _row_median(r, k))
            row = {"feature": int(f), "silent": not np.isfinite(r.pairwise[k, k])}  # silent: no auralisation
            rows.append(row | {name: float(v) for name, v in zip(MEASURES, values)})
        return rows

    def medians(self) -> dict[str, float]:
        """Per measure its median over the layer's features (NaN where no feature has a value)."""
        rows = self.feature_rows()
        return {name: _nanmedian([row[name] for row in rows]) for name in MEASURES}


@dataclass
class EvaluationTable:
    """Results of :func:`evaluate` or :func:`compare`: one :class:`EvaluationEntry` per (song, options, layer).

    ``meta``: ``model`` ({path, sha256}) and ``region`` ({offset, duration}) of the run.
    """

    entries: list[EvaluationEntry]
    meta: dict = field(default_factory=dict)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (song, layer, options, feature), with the keys of :data:`CSV_FIELDS`."""
        out = []
        for e in self.entries:
            options = _options(e.options)
            head = {"song": e.song, "layer": e.result.layer, **{k: options[k] for k in OPTION_KEYS}}
            out += [head | row for row in e.feature_rows()]
        return out

    def to_dict(self) -> dict:
        """The JSON document of the module docstring's schema (NaN written as null)."""
        results = [
            {
                "song": e.song,
                "options": _options(e.options),
                "layer": e.result.layer,
                "layer_path": e.layer_path,
                "median_distinguishability_db": _clean(e.result.median_distinguishability()),
                "medians": {k: _clean(v) for k, v in e.medians().items()},
                "features": [{k: _clean(v) for k, v in row.items()} for row in e.feature_rows()],
            }
            for e in self.entries
        ]
        meta = {"model": {"path": None, "sha256": None}, "region": {"offset": 0.0, "duration": None}} | self.meta
        return {"format": FORMAT, "schema": SCHEMA, **meta, "measures": dict(MEASURES), "results": results}

    def to_json(self, path: str | os.PathLike | None = None) -> str:
        """The JSON text (indented); written atomically to ``path`` when one is given."""
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        if path is not None:
            _write_text(path, text)
        return text

    def to_csv(self, path_or_buffer: str | os.PathLike | io.TextIOBase) -> None:
        """Write :meth:`rows` as CSV (header :data:`CSV_FIELDS`; empty cells for missing measures); a path is
        written atomically."""
        buffer = io.StringIO() if isinstance(path_or_buffer, str | os.PathLike) else path_or_buffer
        writer = csv.DictWriter(buffer, fieldnames=CSV_FIELDS, lineterminator="\n")
        writer.writeheader()
        for row in self.rows():
            writer.writerow({k: ("" if isinstance(v, float) and not np.isfinite(v) else v) for k, v in row.items()})
        if isinstance(path_or_buffer, str | os.PathLike):
            _write_text(path_or_buffer, buffer.getvalue())

    def __str__(self) -> str:
        """A readable table: per song and options, one line per layer with the medians over its features."""
        lines: list[str] = []
        head = f"{'layer':>5}  {'features':>8}  {'distinguish. dB':>15}  {'retention':>9}  {'specificity':>11}  " \
               f"{'deletion':>8}  {'to song dB':>10}"  # fmt: skip
        last = None
        for e in self.entries:
            if (e.song, e.options) != last:
                o, last = e.options, (e.song, e.options)
                lines += [""] if lines else []
                lines += [f"{e.song}: {o.method}, select {o.select}, tap {o.tap}, resynth {o.resynth}, phase "
                          f"{o.phase} (levels kept: normalize none)", head]  # fmt: skip
            m = e.medians()
            lines.append(f"{e.result.layer:>5}  {len(e.result.features):>8}  "
                         f"{_fmt(e.result.median_distinguishability(), 15, 2)}  {_fmt(m['retention'], 9, 4)}  "
                         f"{_fmt(m['specificity'], 11, 3)}  {_fmt(m['deletion'], 8, 3)}  "
                         f"{_fmt(m['distance_to_song_db'], 10, 2)}")  # fmt: skip
        return "\n".join(lines)


def evaluate(
    session: Session,
    songs: Sequence[str | os.PathLike],
    *,
    layers: Sequence[int | str] | None = None,
    features: str | Sequence[int] | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    progress: Progress | None = None,
) -> EvaluationTable:
    """The faithfulness measures of the session's auralisations (its method, selection, tap, listening mode and
    phase; levels kept: ``normalize="none"``) of ``features`` of ``layers`` on every song.

    Parameters
    ----------
    session : Session
        The model and the rendering options judged.
    songs : sequence of str or PathLike
        Audio files.
    layers : sequence of int or str, optional
        Layer numbers or module paths (default all).
    features : str or sequence of int, optional
        A list, or the feature syntax of ``--feature`` (``"0-15"``, ``"all"``, ``"top:K"``: the K most active on
        each song); default all.
    offset, duration : float
        The part of each song used, in seconds.
    progress : callable, optional
        ``progress(done, total, stage)`` in features evaluated.

    Returns
    -------
    EvaluationTable
        One entry per (song, layer).
    """
    return _run(session, songs, [session.options], layers, "all" if features is None else features,
                offset=offset, duration=duration, progress=progress)  # fmt: skip


def compare(
    session: Session,
    songs: Sequence[str | os.PathLike],
    *,
    layers: Sequence[int | str] | None = None,
    features: str | Sequence[int] | None = None,
    methods: Sequence[str] = METHODS,
    modes: Sequence[str] = RESYNTH_MODES,
    selects: Sequence[str] = tuple(s for s in SELECTIONS if ":" not in s),
    offset: float = 0.0,
    duration: float | None = None,
    progress: Progress | None = None,
) -> EvaluationTable:
    """:func:`evaluate` for every backward rule x listening mode x selection (the session's tap and phase).

    ``features`` default: :data:`SPREAD` features spread evenly over each layer (:func:`spread`). The same features
    are judged under every combination. Returns one entry per (song, method, mode, selection, layer).
    """
    from auralise.session import RenderOptions

    base = session.options
    combos = [RenderOptions(method=m, select=s, tap=base.tap, resynth=r, phase=base.phase, normalize="none")
              for m in methods for r in modes for s in selects]  # fmt: skip
    if not combos:
        raise BadParameterError("no combination to compare: give at least one method, listening mode and selection")
    return _run(session, songs, combos, layers, features, offset=offset, duration=duration, progress=progress)


def feature_measures(
    session: Session,
    song: Song,
    chosen: dict[int, list[int]],
    *,
    batch: int = 16,
    progress: Callable[[int, int, int], None] | None = None,
) -> dict[tuple[int, int], dict[str, float | None]]:
    """Per (layer, feature) of ``chosen`` ({layer number: features}) its retention, specificity, deletion and
    distance to the song (dB) under the session's options (levels kept), JSON-safe (None where missing): what
    ``auralise export --evaluate`` adds to each feature's record. Features are judged ``batch`` at a time (their
    auralisations are in memory together); ``progress(layer, done, total)`` after each batch, in features."""
    from auralise.studies.faithfulness import evaluate_layer

    sess = _with_options(session, session.options)
    total, done, out = sum(len(fs) for fs in chosen.values()), 0, {}
    for number, feats in chosen.items():
        for i in range(0, len(feats), batch):
            part = list(feats[i : i + batch])
            entry = EvaluationEntry(str(song.path), sess.options, "", evaluate_layer(sess, song, number, part))
            for row in entry.feature_rows():
                out[(number, row["feature"])] = {k: _clean(row[k]) for k in ITEM_MEASURES}
            done += len(part)
            if progress is not None:
                progress(number, done, total)
    return out


def spread(channels: int, count: int = SPREAD) -> list[int]:
    """``count`` features spread evenly over a layer of ``channels`` (first and last included), each once.

    >>> spread(64, 4)
    [0, 21, 42, 63]
    """
    return sorted({int(round(x)) for x in np.linspace(0, channels - 1, min(count, channels))})


# ---------------------------------------------------------------------------------------------------- the work


def _run(session, songs, combos, layers, features, *, offset, duration, progress) -> EvaluationTable:
    """Check everything, read every song, then evaluate song x options x layer."""
    from auralise.engine.selection import check_features, parse_feature_spec
    from auralise.io.audio import check_region
    from auralise.studies.faithfulness import evaluate_layer

    offset, duration = check_region(offset, duration)
    songs = [songs] if isinstance(songs, str | os.PathLike) else list(songs)
    if not songs:
        raise BadParameterError("no audio files given; pass one or more AUDIO files")
    kind, arg = ("list", list(features)) if not isinstance(features, str | None) else \
        (("spread", SPREAD) if features is None else parse_feature_spec(features))  # fmt: skip
    lays = session.layers(None if layers is None else list(layers))
    if kind == "list":
        for lay in lays:
            check_features(arg, lay)
    read = dict(min_samples=session.min_samples(lays), offset=offset, duration=duration)
    loaded = [session.song(p, **read) for p in songs]  # every song readable before any work
    picks = [{lay.number: _pick(session, song, lay, kind, arg) for lay in lays} for song in loaded]
    total = len(combos) * sum(len(fs) for p in picks for fs in p.values())
    done, entries = 0, []
    sessions = [_with_options(session, o) for o in combos]
    for path, song, chosen in zip(songs, loaded, picks):
        for sess in sessions:
            for lay in lays:
                feats = chosen[lay.number]
                if progress is not None:
                    progress(done, total, _stage(path, sess.options, lay, len(combos) > 1))
                result = evaluate_layer(sess, song, lay.number, feats)
                entries.append(EvaluationEntry(str(path), sess.options, lay.path, result))
                done += len(feats)
    if progress is not None:
        progress(done, total, "done")
    meta = {"model": {"path": str(session.model_path), "sha256": session.model_sha256},
            "region": {"offset": offset, "duration": duration}}  # fmt: skip
    return EvaluationTable(entries, meta)


def _pick(session: Session, song: Song, lay: Layer, kind: str, arg) -> list[int]:
    """The features of ``lay`` judged on ``song``: all, a list, the top K by activation energy, or spread."""
    if kind == "all":
        return list(range(lay.channels))
    if kind == "list":
        return list(arg)
    if kind == "spread":
        return spread(lay.channels, arg)
    ranked = session.rank(song, [lay])[lay.number]  # top:K, as `auralise rank` orders them
    return sorted(r.feature for r in ranked[:arg])


def _with_options(session: Session, options: RenderOptions) -> Session:
    """A session on the same loaded model with other rendering options (levels always kept)."""
    from auralise.session import Session

    options = dataclasses.replace(options, normalize="none")
    if options == session.options:
        return session
    return Session(session.loaded, device=session.device, options=options)


def _stage(path, options, lay: Layer, combos: bool) -> str:
    what = f"{Path(str(path)).name} layer {lay.number}"
    return f"{what} ({options.method}, {options.resynth}, {options.select})" if combos else what


# ---------------------------------------------------------------------------------------------------- helpers


def _row_median(result: LayerFaithfulness, k: int) -> float:
    """Feature ``k``'s median spectrum distance to the layer's other features (NaN when silent or alone)."""
    row = np.delete(result.pairwise[k], k)
    row = row[np.isfinite(row)]
    return float(np.median(row)) if row.size else float("nan")


def _nanmedian(values) -> float:
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    return float(np.median(a)) if a.size else float("nan")


def _options(options: RenderOptions) -> dict[str, str]:
    """Every rendering option (:data:`OPTION_KEYS` first), with the levels kept."""
    return options.to_dict() | {"normalize": "none"}


def _clean(value):
    """JSON-safe: NaN/inf -> None, numpy numbers -> Python numbers, floats rounded to 6 significant digits."""
    if isinstance(value, bool | int | str) or value is None:
        return value
    value = float(value)
    return float(f"{value:.6g}") if np.isfinite(value) else None


def _fmt(value: float, width: int, digits: int) -> str:
    return f"{value:>{width}.{digits}f}" if np.isfinite(value) else f"{'-':>{width}}"


def _write_text(path: str | os.PathLike, text: str) -> None:
    from auralise.io.files import atomic_path

    with atomic_path(Path(path)) as tmp:
        tmp.write_text(text, encoding="utf-8")
