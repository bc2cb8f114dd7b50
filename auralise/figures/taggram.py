"""The taggram: a tagger's tag probabilities over time, tags x patches, as musicnn draws it (`auralise tag --taggram`).

One row per tag (the ``top`` tags of highest mean probability, the highest at the top), one column per patch placed
at its time in the song (seconds; overlapping patches are drawn as columns one patch step wide around each patch's
centre), colour the probability on a fixed 0-1 scale so that taggrams of different songs compare. The mean over
the patches -- what ``auralise tag`` prints -- is written at the right of each row. Drawn in the house style
(:mod:`auralise.figures.style`), saved with :func:`auralise.figures.style.save_figure_file`.

Example
-------
>>> from auralise.studies.tagging import tag_song
>>> from auralise.figures.taggram import save_taggram
>>> result = tag_song("models/MTT_musicnn.pt", "demo_audio/dance.ogg", overlap=2.0)   # doctest: +SKIP
>>> save_taggram(result, "taggram.pdf", top=10, command="python make_figs.py")        # doctest: +SKIP
PosixPath('taggram.pdf')
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError
from auralise.figures.style import MAX_HEIGHT, figure_width, house_style, settle

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure, SubFigure

    from auralise.session import TagResult

__all__ = ["taggram_figure", "save_taggram", "check_taggram_path", "patch_edges"]

ROW_INCHES = 0.13  # one tag's row: a 6-pt label and a little air


def patch_edges(starts: np.ndarray, patch_seconds: float) -> np.ndarray:
    """Column edges in seconds (P + 1,) for patches starting at ``starts`` (P,), each ``patch_seconds`` long.

    Each column is one patch step wide, centred on its patch's centre; patches that follow one another without
    overlap get exactly their own span.

    Examples
    --------
    >>> patch_edges(np.array([0.0, 3.0, 6.0]), 3.0).tolist()
    [0.0, 3.0, 6.0, 9.0]
    >>> patch_edges(np.array([0.0, 1.0, 2.0]), 3.0).tolist()
    [1.0, 2.0, 3.0, 4.0]
    """
    starts = np.asarray(starts, dtype=np.float64)
    step = float(np.median(np.diff(starts))) if len(starts) > 1 else float(patch_seconds)
    centres = starts + patch_seconds / 2.0
    return np.concatenate([centres - step / 2.0, centres[-1:] + step / 2.0])


def taggram_figure(
    result: TagResult,
    *,
    top: int = 10,
    fig: Figure | SubFigure | None = None,
    width: str | float = "double",
    cmap: str = "viridis",
) -> Figure | SubFigure:
    """The taggram of ``result`` (:meth:`auralise.session.Session.tag`): tags x time, probabilities 0-1.

    Parameters
    ----------
    result : TagResult
        Per-patch probabilities, patch starts and length.
    top : int
        How many tags (rows): those of highest mean probability, the highest at the top.
    fig : Figure or SubFigure, optional
        Draw into this; default a new figure in the house style at ``width``, as tall as the rows need.
    width : "single", "double" or float
        Figure width (:func:`~auralise.figures.style.figure_width`) when ``fig`` is not given.
    cmap : str
        A sequential colour map.

    Returns
    -------
    Figure or SubFigure
        The taggram is ``fig.axes[0]``, its colour bar ``fig.axes[-1]``.

    Raises
    ------
    BadParameterError
        ``top`` not a positive integer, no patches.
    """
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise BadParameterError(f"top must be a positive number of tags, got {top!r}")
    P = np.asarray(result.probabilities, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0:
        raise BadParameterError("no patches to draw; tag a song at least one patch long")
    order = np.argsort(-P.mean(axis=0), kind="stable")[:top]  # as TagResult.top orders them
    labels = [result.labels[i] for i in order]
    edges = patch_edges(result.starts, result.patch_seconds)
    with house_style():
        if fig is None:
            from auralise.figures.display import new_figure

            height = min(MAX_HEIGHT, max(1.2, len(order) * ROW_INCHES + 0.55))
            fig = new_figure(figsize=(figure_width(width), height), layout="constrained")
        ax = fig.subplots()
        # rows top to bottom by mean: row 0 (drawn at the top with the y axis inverted) is the most probable tag
        mesh = ax.pcolormesh(edges, np.arange(len(order) + 1), P[:, order].T, cmap=cmap, vmin=0.0, vmax=1.0)
        ax.set_ylim(len(order), 0)
        ax.set_yticks(np.arange(len(order)) + 0.5)
        # plain text: labels come from the model file; a "$" in one is not mathtext
        ax.set_yticklabels(labels, parse_math=False)
        ax.tick_params(axis="y", length=0)
        ax.set_xlim(edges[0], edges[-1])
        ax.set_xlabel("Time (s)")
        means = ax.secondary_yaxis("right")
        means.set_yticks(np.arange(len(order)) + 0.5)
        means.set_yticklabels([f"{P[:, i].mean():.2f}" for i in order])
        means.tick_params(length=0)
        means.set_ylabel("mean")
        for spine in (*ax.spines.values(), *means.spines.values()):
            spine.set_visible(False)
        fig.colorbar(mesh, ax=ax, label="probability", aspect=30, pad=0.01)
        settle(fig)
    return fig


def save_taggram(
    result: TagResult,
    out: str | os.PathLike,
    *,
    top: int = 10,
    width: str | float = "double",
    force: bool = False,
    command: str | None = None,
) -> Path:
    """Draw :func:`taggram_figure` and save it atomically as PDF, SVG or PNG (by the extension of ``out``).

    Check ``out`` with :func:`check_taggram_path` before tagging, so that a bad name fails before any work; it is
    checked again here.
    """
    from auralise.figures.style import save_figure_file
    from auralise.io.files import check_output_dir

    path = check_taggram_path(out, force)
    with house_style():
        fig = taggram_figure(result, top=top, width=width)
        check_output_dir(path.parent)
        return save_figure_file(fig, path, command=command)


def check_taggram_path(out: str | os.PathLike, force: bool) -> Path:
    """``--taggram``'s path, checked: a figure extension, not a folder, not an existing file unless ``force``."""
    from auralise.choices import FIGURE_SUFFIXES
    from auralise.errors import OutputError

    path = Path(out)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise BadParameterError(f"--taggram must end in {', '.join(FIGURE_SUFFIXES)} (the format follows it): {out}")
    if path.is_dir():
        raise OutputError(f"--taggram {path} is a folder; give a file name ending in .pdf, .svg or .png")
    if path.exists() and not force:
        raise OutputError(f"{path} already exists; pass --force to overwrite or choose another --taggram")
    return path
