"""Fig. 10 of Choi, Fazekas & Sandler (2016): how robust each layer's features are to key, chord and instrument.

Draws an :class:`auralise.studies.attributes.AttributeTable` (the result of
:func:`auralise.studies.attributes.attribute_study`).

Example
-------
>>> from auralise.figures.attributes import attributes_figure
>>> from auralise.figures.display import save_figure
>>> from auralise.studies.attributes import AttributeTable
>>> table = AttributeTable.from_csv("attributes.csv")                 # doctest: +SKIP
>>> save_figure(attributes_figure(table), "fig10.png")                # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

    from auralise.studies.attributes import AttributeTable

__all__ = ["attributes_figure"]

_STYLE = {"key": ("o", "-"), "chord": ("s", "--"), "instrument": ("^", ":")}


def attributes_figure(table: AttributeTable, *, fig: Figure | None = None, width: float = 7.16) -> Figure:
    """Fig. 10 of Choi et al. (2016): average correlation per layer for key, chord and instrument changes.

    Parameters
    ----------
    table : AttributeTable
        From :func:`attribute_study` (or :meth:`AttributeTable.from_csv`).
    fig : matplotlib.figure.Figure, optional
        Draw into this figure (one new axes); default a new Agg figure ``width`` x ``0.45 width`` inches.
    width : float
        Width in inches of a new figure (7.16: a two-column IEEE figure).

    Returns
    -------
    matplotlib.figure.Figure
        One line per attribute (key, chord, instrument) with markers and standard-deviation error bars, nudged
        apart along x so the bars do not hide each other; x "Layer", y "Average correlation" (0 to 1 unless a
        bar leaves that range).
    """
    from auralise.figures.display import new_figure

    if not table.rows:
        raise BadParameterError("the attribute table is empty; nothing to plot")
    if not width > 0:
        raise BadParameterError(f"width must be positive, got {width!r}")
    if fig is None:
        fig = new_figure(figsize=(width, 0.45 * width), layout="constrained")
    ax = fig.add_subplot()
    layers = table.layers
    order = [a for a in ("key", "chord", "instrument") if a in table.attributes]
    order += [a for a in table.attributes if a not in order]
    nudge = 0.06
    low, high = 0.0, 1.0
    for j, attr in enumerate(order):
        rows = [table.row(n, attr) if _has(table, n, attr) else None for n in layers]
        mean = np.array([r.mean if r else np.nan for r in rows], dtype=float)
        std = np.array([r.std if r else np.nan for r in rows], dtype=float)
        x = np.asarray(layers, dtype=float) + (j - (len(order) - 1) / 2) * nudge
        marker, line = _STYLE.get(attr, ("D", "-."))
        ax.errorbar(x, mean, yerr=std, marker=marker, linestyle=line, capsize=3, label=attr.capitalize())
        if np.isfinite(mean).any():
            low = min(low, float(np.nanmin(mean - std)))
            high = max(high, float(np.nanmax(mean + std)))
    ax.set_xticks(layers)
    ax.set_xlim(layers[0] - 0.5, layers[-1] + 0.5)
    pad = 0.03
    ax.set_ylim(max(-1.0, low - pad) if low < 0 else 0.0, min(1.0 + pad, high + pad) if high > 1 else 1.0)
    ax.set_xlabel("Layer")
    ax.set_ylabel("Average correlation")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False, ncols=len(order))
    return fig


def _has(table: AttributeTable, layer: int, attribute: str) -> bool:
    return any(r.layer == layer and r.attribute == attribute for r in table.rows)
