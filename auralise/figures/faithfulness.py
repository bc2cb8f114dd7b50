"""The method comparison of ``auralise figure faithfulness``: retention, specificity and distinguishability per layer
for every backward rule x listening mode x selection.

Draws an :class:`auralise.studies.evaluation.EvaluationTable` (from :func:`auralise.studies.evaluation.compare`):
one column per layer, one row per measure; along x the backward rules, and at each rule one point per listening
mode (colour) and selection (marker): the median over features and songs, with the interquartile range as error
bar. :func:`faithfulness` is the one call of the command: check, compute, draw, save, and the CSV.

Example
-------
>>> from auralise.figures.faithfulness import faithfulness
>>> faithfulness("models/choi2016-synth.pt", ["demo_audio/dance.ogg"], "faith.pdf", layers=[1, 3],
...              csv_path="faith.csv")                                                 # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError, OutputError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from auralise.studies.evaluation import EvaluationTable, Progress

__all__ = ["faithfulness_figure", "faithfulness", "summary", "PANELS"]

# (measure in the table, y label, log scale, reference line)
PANELS = (
    ("retention", "Retention", True, 1.0),
    ("specificity", "Specificity", True, 1.0),
    ("distinguishability_db", "Distinguishability (dB)", False, None),
)
_MARKERS = ("o", "s", "^", "D", "v", "P")
_COLOURS = ("#1b6ca8", "#d1495b", "#2e933c", "#edae49", "#7b4b94", "#00798c", "#8d6a4f", "#595959")


def summary(table: EvaluationTable) -> dict[tuple, dict[str, tuple[float, float, float, int]]]:
    """Per (layer, method, resynth, select), per measure: (25th percentile, median, 75th percentile, count) over
    the features and songs that have a value (silent features have none; log-scale measures count only values
    above 0)."""
    values: dict[tuple, dict[str, list[float]]] = {}
    for row in table.rows():
        key = (row["layer"], row["method"], row["resynth"], row["select"])
        for name, _, log, _ in PANELS:
            v = row[name]
            if np.isfinite(v) and (v > 0 or not log):
                values.setdefault(key, {}).setdefault(name, []).append(v)
            else:
                values.setdefault(key, {}).setdefault(name, [])
    out = {}
    for key, measures in values.items():
        out[key] = {}
        for name, vs in measures.items():
            if vs:
                q1, q2, q3 = np.percentile(vs, [25, 50, 75])
                out[key][name] = (float(q1), float(q2), float(q3), len(vs))
            else:
                out[key][name] = (np.nan, np.nan, np.nan, 0)
    return out


def faithfulness_figure(table: EvaluationTable, *, width: float = 7.16) -> Figure:
    """The comparison figure: rows retention / specificity / distinguishability, one column per layer.

    Parameters
    ----------
    table : EvaluationTable
        From :func:`auralise.studies.evaluation.compare` (several methods, modes and selections).
    width : float
        Inches (7.16: a two-column paper's text width).

    Returns
    -------
    matplotlib.figure.Figure
        x: the backward rules; at each, one point per listening mode (colour) x selection (marker), nudged apart:
        the median over features and songs, error bars from the 25th to the 75th percentile. Retention and
        specificity on log axes with a dashed line at 1.
    """
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    from auralise.figures.display import new_figure

    stats = summary(table)
    if not stats:
        raise BadParameterError("the evaluation table is empty; nothing to plot")
    layers = sorted({k[0] for k in stats})
    methods = list(dict.fromkeys(k[1] for k in stats))
    modes = list(dict.fromkeys(k[2] for k in stats))
    selects = list(dict.fromkeys(k[3] for k in stats))
    combos = [(m, s) for m in modes for s in selects]
    fig = new_figure(figsize=(width, 1.55 * len(PANELS) + 0.45), layout="constrained")
    axes = fig.subplots(len(PANELS), len(layers), sharex=True, squeeze=False)
    step = 0.8 / max(1, len(combos))
    for row, (name, label, log, ref) in enumerate(PANELS):
        for col, layer in enumerate(layers):
            ax = axes[row, col]
            for j, (mode, select) in enumerate(combos):
                x = np.arange(len(methods)) + (j - (len(combos) - 1) / 2) * step
                q = np.array([stats.get((layer, m, mode, select), {}).get(name, (np.nan,) * 4)[:3] for m in methods])
                colour = _COLOURS[modes.index(mode) % len(_COLOURS)]
                marker = _MARKERS[selects.index(select) % len(_MARKERS)]
                ok = np.isfinite(q[:, 1])
                if ok.any():
                    yerr = np.vstack([q[ok, 1] - q[ok, 0], q[ok, 2] - q[ok, 1]])
                    ax.errorbar(x[ok], q[ok, 1], yerr=yerr, fmt=marker, color=colour, markersize=3.2,
                                elinewidth=0.8, capsize=1.5, markerfacecolor=colour if j % 2 == 0 else "white",
                                markeredgewidth=0.8)  # fmt: skip
            if log:
                ax.set_yscale("log")
                ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
                ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _, ax=ax: _minor_label(ax, v)))
            if ref is not None:
                ax.axhline(ref, color="0.55", linewidth=0.6, linestyle="--", zorder=0)
            ax.grid(axis="y", alpha=0.3, linewidth=0.4)
            crowded = len(layers) > 3  # narrow panels: the rule names would run into each other
            ax.set_xticks(
                np.arange(len(methods)), methods, rotation=30 if crowded else 0, ha="right" if crowded else "center"
            )
            ax.set_xlim(-0.5, len(methods) - 0.5)
            if row == 0:
                ax.set_title(f"Layer {layer}")
            if col == 0:
                ax.set_ylabel(label)
    handles = [Line2D([], [], color=_COLOURS[i % len(_COLOURS)], marker="o", linestyle="", markersize=3.5,
                      label=f"{mode}") for i, mode in enumerate(modes)]  # fmt: skip
    handles += [Line2D([], [], color="0.3", marker=_MARKERS[i % len(_MARKERS)], linestyle="", markersize=3.5,
                       markerfacecolor="0.3" if i % 2 == 0 else "white", label=f"select {s}")
                for i, s in enumerate(selects)]  # fmt: skip
    per_row = max(1, min(len(handles), int(width / 1.15)))  # about an inch per entry
    fig.legend(handles=handles, loc="outside upper center", ncols=per_row, frameon=False)
    return fig


def _minor_label(ax, value: float) -> str:
    """Label the minor ticks 2 and 5 (x a power of ten) of a log axis spanning less than a decade, else none."""
    low, high = ax.get_ylim()
    text = f"{value:g}"
    return text if 0 < low and high / low < 10 and text.lstrip("0.")[:1] in ("2", "5") else ""


def faithfulness(
    model,
    audio: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    *,
    layers: Sequence[int | str] | None = None,
    features: str | Sequence[int] | None = None,
    csv_path: str | os.PathLike | None = None,
    width: str | float = "double",
    tap: str = "block",
    phase: str = "original",
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    offset: float = 0.0,
    duration: float | None = None,
    force: bool = False,
    command: str | None = None,
    progress: Progress | None = None,
) -> EvaluationTable:
    """Compare every backward rule x listening mode x selection on ``audio``: figure at ``out`` (PDF, SVG or PNG),
    one CSV row per (song, layer, method, mode, selection, feature) at ``csv_path``; returns the table.

    ``features`` default: 8 features spread over each layer (:func:`auralise.studies.evaluation.spread`); a list
    or the ``--feature`` syntax otherwise. Every check (paths, width, layers, features, songs) happens before the
    work; both files are written atomically.
    """
    from auralise.figures.paper import _finish, check_figure_path
    from auralise.figures.style import figure_width, house_style
    from auralise.io.files import check_output_file
    from auralise.session import RenderOptions, Session
    from auralise.studies.evaluation import compare

    path = check_figure_path(out, force)
    if csv_path is not None:
        if Path(csv_path).suffix.lower() != ".csv":
            raise BadParameterError(f"--csv must name a .csv file, got {csv_path}")
        if Path(csv_path).exists() and not force:
            raise OutputError(f"{csv_path} already exists; pass --force to overwrite or choose another --csv")
        check_output_file(csv_path, force=True)  # never a link or a device
    inches = figure_width(width)
    session = Session(model, device=device, trust=trust, frontend=frontend,
                      options=RenderOptions(tap=tap, phase=phase, normalize="none"))  # fmt: skip
    table = compare(session, audio, layers=layers, features=features, offset=offset, duration=duration,
                    progress=progress)  # fmt: skip
    with house_style():
        fig = faithfulness_figure(table, width=inches)
        _finish(fig, path, command)
    if csv_path is not None:
        table.to_csv(csv_path)
    return table
