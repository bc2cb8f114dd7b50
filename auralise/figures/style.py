"""The house style of paper figures: print type and line sizes, journal column widths, and saving with provenance.

Every figure :mod:`auralise.figures.drawing` and :mod:`auralise.figures.paper` make is drawn under
:func:`house_style`, sized by :func:`figure_width` (:data:`WIDTHS`: one or two columns of a paper, or inches) and
saved by :func:`save_figure_file` as PDF, SVG or PNG with the command line that made it in the file's metadata.

matplotlib is imported lazily and only through :func:`auralise.figures.display.new_figure` (an Agg-backed Figure), never
``pyplot``.

Examples
--------
>>> from auralise.figures.display import new_figure
>>> from auralise.figures.style import figure_width, house_style, save_figure_file
>>> with house_style():
...     fig = new_figure(figsize=(figure_width("single"), 2.0), layout="constrained")
>>> save_figure_file(fig, "empty.pdf", command="python make_figs.py")  # doctest: +SKIP
PosixPath('empty.pdf')
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.choices import FIGURE_SUFFIXES, FIGURE_WIDTHS
from auralise.errors import BadParameterError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure, SubFigure

__all__ = ["WIDTHS", "FORMATS", "PNG_DPI", "MAX_HEIGHT", "figure_width", "house_style", "save_figure_file", "settle"]

WIDTHS = FIGURE_WIDTHS  # inches: one column / full text width of a two-column paper
FORMATS = FIGURE_SUFFIXES
PNG_DPI = 300
MAX_WIDTH = 30.0
MAX_HEIGHT = 9.5  # inches: a page's text height

# Read when a file is written: TrueType (Type 42) fonts embedded in PDF/PS instead of Type 3 glyph programs, glyphs
# as paths in SVG (SVG cannot embed fonts: with "none" a viewer without DejaVu
# Sans substitutes another font and the labels reflow; paths look the same everywhere), and a fixed hash salt so
# SVG element ids do not change from run to run.
_SAVE_RC: dict[str, Any] = {
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "path",
    "svg.hashsalt": "auralise",
}

_HOUSE_RC: dict[str, Any] = {
    # DejaVu Sans ships with matplotlib, so every machine draws the same glyphs (and the image baselines hold)
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    # unhinted glyph metrics come from the font alone, not from the installed freetype's hinter, so the layout is the
    # same on every machine (matplotlib's own image tests do the same); at 300 dpi hinting adds nothing visible
    "text.hinting": "none",
    "font.size": 7.0,
    "axes.titlesize": 7.0,
    "axes.labelsize": 7.0,
    "figure.titlesize": 8.0,
    "figure.labelsize": 7.0,
    "xtick.labelsize": 6.0,
    "ytick.labelsize": 6.0,
    "legend.fontsize": 6.0,
    "axes.linewidth": 0.5,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlepad": 2.5,
    "axes.labelpad": 2.0,
    "lines.linewidth": 1.0,
    "patch.linewidth": 0.5,
    "xtick.major.width": 0.5,
    "ytick.major.width": 0.5,
    "xtick.minor.width": 0.4,
    "ytick.minor.width": 0.4,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "xtick.minor.size": 1.5,
    "ytick.minor.size": 1.5,
    "xtick.major.pad": 1.5,
    "ytick.major.pad": 1.5,
    "image.interpolation": "nearest",
    "figure.dpi": 100.0,
    "savefig.dpi": PNG_DPI,
    "figure.constrained_layout.h_pad": 0.02,
    "figure.constrained_layout.w_pad": 0.02,
    "figure.constrained_layout.hspace": 0.03,
    "figure.constrained_layout.wspace": 0.03,
    **_SAVE_RC,
}


def figure_width(width: str | float) -> float:
    """Figure width in inches for a paper column name or a number.

    Parameters
    ----------
    width : "single", "double", float or str
        ``"single"`` (3.5 in, one column), ``"double"`` (7.16 in, two columns) or a width in inches
        (a number or a numeric string, ``0 < width <= 30``).

    Returns
    -------
    float
        Inches.

    Raises
    ------
    BadParameterError
        Anything else.

    Examples
    --------
    >>> figure_width("double"), figure_width("5")
    (7.16, 5.0)
    """
    hint = f'pass "single" (3.5 in), "double" (7.16 in) or a width in inches between 0 and {MAX_WIDTH:g}'
    if isinstance(width, str):
        key = width.strip().lower()
        if key in WIDTHS:
            return WIDTHS[key]
        try:
            value = float(key)
        except ValueError:
            raise BadParameterError(f"unknown figure width {width!r}; {hint}") from None
    elif isinstance(width, int | float | np.integer | np.floating) and not isinstance(width, bool):
        value = float(width)
    else:
        raise BadParameterError(f"unknown figure width {width!r}; {hint}")
    if not (math.isfinite(value) and 0 < value <= MAX_WIDTH):
        raise BadParameterError(f"figure width {width!r} is out of range; {hint}")
    return value


@contextmanager
def house_style() -> Iterator[None]:
    """The house look for paper figures, as a matplotlib ``rc_context``.

    Small sans-serif type for print (7 pt, 6 pt tick labels; DejaVu Sans, which ships with matplotlib), thin
    0.5 pt axes lines and ticks, no top/right spines, nearest-neighbour images, 300 dpi when saved, TrueType
    fonts embedded in PDF/PS (``pdf.fonttype`` 42), and SVG text as glyph paths (``svg.fonttype`` "path": SVG
    cannot embed fonts, so this is the only way a figure looks the same in every viewer; the price is that its
    text cannot be edited as text). Make the figure with ``layout="constrained"`` inside the block.

    Yields
    ------
    None

    Examples
    --------
    >>> from auralise.figures.display import new_figure
    >>> with house_style():
    ...     fig = new_figure(figsize=(figure_width("single"), 2.0), layout="constrained")
    """
    import matplotlib.style

    with matplotlib.style.context(["default", _HOUSE_RC]):  # from matplotlib's defaults, whatever the user's style
        yield


def save_figure_file(fig: Figure, path: str | os.PathLike, *, command: str | None) -> Path:
    """Save ``fig`` atomically as PDF, SVG or PNG (from the extension), recording ``command`` in its metadata.

    PDF and SVG are vector (images inside at 300 dpi); PNG is 300 dpi. Saving happens under :func:`house_style`,
    so the user's global matplotlib style cannot change the file (text rendering, background, font embedding are
    read when the file is drawn). The command line goes into the PDF's
    ``Subject`` (``Creator`` is ``auralise <version>``), the SVG's Dublin Core ``description`` and the PNG's
    ``Description`` tEXt chunk (``Software`` is ``auralise <version>``). No creation date is written, so saving the
    same figure twice gives identical bytes.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or PathLike
        Ends in ``.pdf``, ``.svg`` or ``.png``.
    command : str or None
        The exact command line that made the figure (None: record none).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    BadParameterError
        Another extension.
    OutputError
        The file cannot be written.
    """
    from auralise import __version__
    from auralise.figures.display import save_figure

    final = Path(path)
    ext = final.suffix.lower()
    if ext not in FORMATS:
        raise BadParameterError(
            f"cannot save a figure as {final.name!r}: unknown extension {final.suffix or '(none)'!r}; "
            f"use {', '.join(FORMATS[:-1])} or {FORMATS[-1]}"
        )
    creator = f"auralise {__version__}"
    if ext == ".pdf":
        metadata: dict[str, Any] = {"Creator": creator, "CreationDate": None}
        if command is not None:
            metadata |= {"Subject": command, "Keywords": "auralise"}
    elif ext == ".svg":
        metadata = {"Creator": creator, "Date": None}
        if command is not None:
            metadata["Description"] = command
    else:
        metadata = {"Software": creator}
        if command is not None:
            metadata["Description"] = command
    while not hasattr(fig, "savefig"):  # a SubFigure: save the figure it is part of
        fig = fig.figure
    with house_style():
        return save_figure(fig, final, dpi=PNG_DPI, metadata=metadata)


def settle(fig: Figure | SubFigure) -> None:
    """Fix now, under the house style, what matplotlib would otherwise read from the global style at save time.

    Makes each axis's first ticks (later ones copy them; older matplotlib versions style lazily made ticks by the
    rcParams of the moment) and pins the tick label size, which sets how many ticks fit. Call it inside
    :func:`house_style` once a figure is drawn.

    Parameters
    ----------
    fig : Figure or SubFigure
        Every axes of it is settled.
    """
    import matplotlib as mpl

    for ax in fig.axes:
        for axis, name in ((ax.xaxis, "xtick"), (ax.yaxis, "ytick")):
            axis.get_major_ticks(1)
            axis.get_minor_ticks(1)
            # the locators size their tick spacing by the label size, which matplotlib reads at draw time
            axis.set_tick_params(which="both", labelsize=mpl.rcParams[f"{name}.labelsize"])
