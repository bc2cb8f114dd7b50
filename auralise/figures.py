"""Paper figures built from :mod:`auralise.display`: learned filters, receptive-field table, deconvolution grids.

Choi, Fazekas & Sandler (2016) show three kinds of figure: the learned weights of first-layer features (Fig. 4),
the effective sizes of the kernels (Table 1) and grids of deconvolved spectrograms (Figs. 3 and 5-8). This module
makes each of them in one consistent print style (:func:`house_style`) at a journal column width
(:data:`WIDTHS`), and saves them with the command line that made them in the file's metadata
(:func:`save_figure_file`).

matplotlib is imported lazily and only through :func:`auralise.display.new_figure` (an Agg-backed Figure), never
``pyplot``.

Examples
--------
>>> from auralise import zoo
>>> from auralise.figures import filters_figure, save_figure_file
>>> model = zoo.build("choi2016", {"channels": 8, "hidden": 16})
>>> fig = filters_figure(model.features[0].weight, layer=1)
>>> save_figure_file(fig, "filters.pdf", command="python make_figs.py")  # doctest: +SKIP
PosixPath('filters.pdf')
"""

from __future__ import annotations

import csv
import io
import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.errors import BadParameterError, check_choice

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from auralise.frontends import Frontend
    from auralise.layers import Layer

__all__ = [
    "WIDTHS",
    "FORMATS",
    "figure_width",
    "house_style",
    "save_figure_file",
    "layer_weights",
    "filters_figure",
    "receptive_field_table",
    "grid_figure",
]

WIDTHS = {"single": 3.5, "double": 7.16}  # inches: one column / full text width of a two-column paper
FORMATS = (".pdf", ".svg", ".png")
PNG_DPI = 300
MAX_WIDTH = 30.0
MAX_HEIGHT = 9.5  # inches: a page's text height
TABLE_FORMATS = ("md", "latex", "csv")
FILTER_CHANNELS = ("strongest", "all")
MAX_FILTER_COLUMNS = 16

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


# ---------------------------------------------------------------------------------------------------- style, size


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
    >>> from auralise.display import new_figure
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
    from auralise.display import save_figure

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


# ---------------------------------------------------------------------------------------------------- Fig. 4


def layer_weights(module: torch.nn.Module, layer: Layer) -> torch.Tensor:
    """The weight tensor of a convolution layer found by :func:`auralise.layers.discover`.

    Parameters
    ----------
    module : torch.nn.Module
    layer : Layer
        From ``discover(module, example).layer(spec)``.

    Returns
    -------
    torch.Tensor, shape (C_out, C_in / groups, *kernel)
        Detached.

    Raises
    ------
    BadParameterError
        The weight is not a parameter of ``module`` (it is computed in ``forward``).
    """
    try:
        owner = module.get_submodule(layer.path)
    except AttributeError:
        owner = None
    if owner is not None:
        candidates = [("weight", getattr(owner, "weight", None))]
        candidates += list(owner.named_parameters(recurse=False))
        for _, p in candidates:
            if p is not None and p.dim() == 2 + len(layer.kernel):
                if p.shape[0] == layer.channels and tuple(p.shape[2:]) == tuple(layer.kernel):
                    return p.detach()
    raise BadParameterError(
        f"{layer.describe()}'s weight is not a parameter of the model (it is computed in forward); "
        "pass the weight tensor to filters_figure directly"
    )


def _as_array(x: Any) -> np.ndarray:
    if type(x).__module__.startswith("torch") and hasattr(x, "detach"):
        x = x.detach().cpu().float().numpy()
    return np.asarray(x, dtype=np.float64)


def _grid_shape(n: int, max_columns: int, box: float = 1.0) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels of height/width ``box``, so that the grid is about as tall as wide."""
    cols = max(1, min(max_columns, math.ceil(math.sqrt(n * box)), n))
    return math.ceil(n / cols), cols


def _check_features(features: Sequence[int] | None, n: int, layer: int) -> list[int]:
    if features is None:
        return list(range(n))
    if isinstance(features, int | np.integer):
        features = [int(features)]
    out = []
    for f in features:
        if isinstance(f, bool) or not isinstance(f, int | np.integer) or not 0 <= f < n:
            raise BadParameterError(f"feature {f!r} is out of range: layer {layer} has features 0-{n - 1}")
        out.append(int(f))
    if not out:
        raise BadParameterError(f"no features selected; pass feature numbers 0-{n - 1} or None for all")
    return out


def filters_figure(
    weights: torch.Tensor | np.ndarray,
    *,
    features: Sequence[int] | None = None,
    layer: int = 1,
    fig: Figure | SubFigure | None = None,
    width: str | float = "double",
    cmap: str = "RdBu_r",
    layout: str = "BCFT",
    channels: str = "strongest",
    annotate: bool | None = None,
) -> Figure | SubFigure:
    """Learned convolution kernels, one panel per feature (Choi et al., 2016, Fig. 4).

    Each panel shows one output feature's kernel as it is applied (cross-correlation, not flipped): rows are
    frequency with the lowest at the bottom (as in a spectrogram drawn with ``origin="lower"``), columns are time.
    Colours are a diverging map centred on zero with limits ``±max|w|`` over the kernels shown, and one shared
    colour bar. A layer with several input channels has one kernel per input channel; a panel shows the one with
    the largest L2 norm (the input that feature weighs most; its number is in the title, ``"2-5 (in 12)"``). This
    keeps the weights' signs, which a norm-over-inputs map would lose. 1-D kernels are drawn as one-row strips.

    Parameters
    ----------
    weights : torch.Tensor or np.ndarray, shape (C_out, C_in, kh, kw) or (C_out, C_in, k)
        Conv2d or Conv1d weights (e.g. :func:`layer_weights`).
    features : sequence of int, optional
        Output features to show, in this order (default all), laid out in a near-square grid of at most 16 columns.
    layer : int
        Layer number for the panel titles ``"L-F"``.
    fig : Figure or SubFigure, optional
        Draw into this (the caller sized it); default a new figure in the house style at ``width``.
    width : "single", "double" or float
        Figure width (:func:`figure_width`) when ``fig`` is not given.
    cmap : str
        A diverging colour map.
    layout : {"BCFT", "BCTF", "BFT", "BTF"}
        The model input layout (``frontend.layout``), which says which kernel axis is time: whatever it is, time
        runs along x and frequency along y. ``"BCFT"``: 2-D kernels are (frequency, time), drawn as they are;
        ``"BCTF"``: (time, frequency), transposed for display (a ``(128, 1)`` temporal filter is a wide strip);
        ``"BFT"``: a 1-D kernel runs along time (a one-row strip); ``"BTF"``: along frequency (a one-column strip).
    channels : {"strongest", "all"}
        For 1-D kernels, ``"all"`` draws the whole (C_in, k) matrix: input channels as rows for ``"BFT"`` (for a
        first layer these are the frequency bins), as columns for ``"BTF"`` (the frames);
        ``"strongest"`` (default) as described above.
    annotate : bool, optional
        Write each weight's value in its cell (default: when at most 8 kernels of at most 49 cells are shown).

    Returns
    -------
    Figure or SubFigure
        ``fig`` or the new figure; panels are ``fig.axes[:-1]``, the colour bar ``fig.axes[-1]``.

    Raises
    ------
    BadParameterError
        Weights of another rank, features out of range, an unknown option.
    """
    W = _as_array(weights)
    if W.ndim not in (3, 4) or 0 in W.shape:
        raise BadParameterError(
            f"weights must have shape (C_out, C_in, kh, kw) or (C_out, C_in, k), got {tuple(W.shape)}; "
            "pass a Conv2d or Conv1d weight"
        )
    check_choice(layout, ("BCFT", "BCTF", "BFT", "BTF"), "layout")
    check_choice(channels, FILTER_CHANNELS, "channels option")
    if channels == "all" and W.ndim == 4:
        raise BadParameterError('channels="all" is for 1-D kernels only; use "strongest" for Conv2d weights')
    chosen = _check_features(features, W.shape[0], layer)
    n_in = W.shape[1]
    # where time is: 2-D kernels are (time, frequency) for BCTF; a 1-D kernel slides along frequency for BTF
    transpose = (W.ndim == 4 and layout == "BCTF") or (W.ndim == 3 and layout == "BTF")
    kernels, titles = [], []
    for f in chosen:
        w = W[f]
        if channels == "all":
            k, title = w, f"{layer}-{f}"
        else:
            c = int(np.argmax(np.sqrt((w.reshape(n_in, -1) ** 2).sum(axis=1)))) if n_in > 1 else 0
            k = w[c] if W.ndim == 4 else w[c][None, :]
            title = f"{layer}-{f}" + (f" (in {c})" if n_in > 1 else "")
        kernels.append(k.T if transpose else k)
        titles.append(title)
    kh, kw = kernels[0].shape
    vmax = max(float(np.abs(k).max()) for k in kernels)
    vmax = vmax if vmax > 0 else 1.0
    n = len(kernels)
    if annotate is None:
        annotate = n <= 8 and kh * kw <= 49
    box = min(4.0, max(0.25, kh / kw))
    rows, cols = _grid_shape(n, MAX_FILTER_COLUMNS, box)

    with house_style():
        if fig is None:
            from auralise.display import new_figure

            w_in = figure_width(width)
            cell = (w_in - 0.75) / cols
            h_in = min(MAX_HEIGHT, max(1.2, rows * (cell * box + 0.2) + 0.35))
            fig = new_figure(figsize=(w_in, h_in), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False).ravel()
        im = None
        for i, ax in enumerate(axes):
            if i >= n:
                ax.remove()
                continue
            im = ax.imshow(
                kernels[i], origin="lower", cmap=cmap, vmin=-vmax, vmax=vmax, interpolation="nearest", aspect="auto"
            )
            ax.set_box_aspect(box)
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(True)
            ax.set_title(titles[i], fontsize=6.0 if cols > 8 else None)
            if annotate:
                _annotate_cells(ax, kernels[i], vmax)
        fig.colorbar(im, ax=list(axes[:n]), label="weight", shrink=min(1.0, 0.3 + 0.25 * rows), aspect=40)
        along_frequency = W.ndim == 3 and layout == "BTF"  # 1-D kernels over frequency: no time axis drawn
        if not along_frequency:
            fig.supxlabel("time →")
        elif channels == "all":
            fig.supxlabel("input channel →")
        if channels == "all" and not along_frequency:
            fig.supylabel("input channel →")
        elif kh > 1:
            fig.supylabel("frequency →")
        _settle(fig)
    return fig


def _annotate_cells(ax: Axes, k: np.ndarray, vmax: float) -> None:
    size = 6.0 if k.size <= 9 else 4.5
    for (r, c), v in np.ndenumerate(k):
        colour = "white" if abs(v) > 0.6 * vmax else "black"
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=size, color=colour)


def _settle(fig: Figure | SubFigure) -> None:
    """Fix what matplotlib would otherwise read from the global style at save time: make each axis's first ticks
    now (later ones copy them; older matplotlib versions style lazily made ticks by the rcParams of the moment) and
    pin the tick label size, which sets how many ticks fit."""
    import matplotlib as mpl

    for ax in fig.axes:
        for axis, name in ((ax.xaxis, "xtick"), (ax.yaxis, "ytick")):
            axis.get_major_ticks(1)
            axis.get_minor_ticks(1)
            # the locators size their tick spacing by the label size, which matplotlib reads at draw time
            axis.set_tick_params(which="both", labelsize=mpl.rcParams[f"{name}.labelsize"])


# ---------------------------------------------------------------------------------------------------- Table 1

_TABLE_KEYS = ("layer", "path", "kernel", "rf_frames", "rf_ms", "rf_bins", "rf_hz")


def _latex_escape(text: str) -> str:
    specials = {
        "\\": r"\textbackslash{}",
        "&": r"\&",
        "%": r"\%",
        "$": r"\$",
        "#": r"\#",
        "_": r"\_",
        "{": r"\{",
        "}": r"\}",
        "~": r"\textasciitilde{}",
        "^": r"\textasciicircum{}",
    }
    return "".join(specials.get(ch, ch) for ch in text)


def receptive_field_table(rows: list[dict], *, fmt: str) -> str:
    """The effective size of every layer's units (Choi et al., 2016, Table 1) as Markdown, LaTeX or CSV.

    Columns: layer, module path, kernel, effective width (STFT frames, ms), effective height (bins, Hz) -- the
    receptive field at the tap the rows were computed for (see ``docs/receptive-field.md``).

    Parameters
    ----------
    rows : list of dict
        From :func:`auralise.layers.layer_table` (keys ``layer``, ``path``, ``kernel``, ``rf_frames``, ``rf_ms``,
        ``rf_bins``, ``rf_hz``; others are ignored).
    fmt : {"md", "latex", "csv"}
        A GitHub Markdown table, a booktabs ``tabular`` (needs ``\\usepackage{booktabs}``), or CSV with a header
        row named after the keys above.

    Returns
    -------
    str
        The table, ending in a newline.

    Raises
    ------
    BadParameterError
        Unknown format or a row without the keys.

    Examples
    --------
    >>> rows = [{"layer": 1, "path": "features.0", "kernel": [3, 3], "rf_frames": 4, "rf_ms": 116.1,
    ...          "rf_bins": 4, "rf_hz": 86.1}]
    >>> print(receptive_field_table(rows, fmt="md"), end="")
    | Layer | Module | Kernel | Width (frames) | Width (ms) | Height (bins) | Height (Hz) |
    |---:|---|---|---:|---:|---:|---:|
    | 1 | `features.0` | 3×3 | 4 | 116.1 | 4 | 86.1 |
    """
    check_choice(fmt, TABLE_FORMATS, "table format")
    for i, row in enumerate(rows):
        missing = [k for k in _TABLE_KEYS if k not in row]
        if missing:
            raise BadParameterError(
                f"row {i} lacks {', '.join(missing)}; pass the rows of auralise.layers.layer_table(...)"
            )

    def kernel(row: dict, sep: str) -> str:
        k = row["kernel"]
        return sep.join(str(int(v)) for v in (k if isinstance(k, list | tuple) else [k]))

    def num(v: float | None) -> str:
        return "–" if v is None else f"{float(v):.1f}"  # None: a mel/CQT axis has no single bin width in Hz

    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_TABLE_KEYS)
        for r in rows:
            writer.writerow(
                [r["layer"], r["path"], kernel(r, "x"), r["rf_frames"], r["rf_ms"], r["rf_bins"], r["rf_hz"]]
            )
        return buf.getvalue()
    if fmt == "md":
        lines = [
            "| Layer | Module | Kernel | Width (frames) | Width (ms) | Height (bins) | Height (Hz) |",
            "|---:|---|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            path = str(r["path"]).replace("|", "\\|").replace("`", "'")
            lines.append(
                f"| {r['layer']} | `{path}` | {kernel(r, '×')} | {r['rf_frames']} | {num(r['rf_ms'])} "
                f"| {r['rf_bins']} | {num(r['rf_hz'])} |"
            )
        return "\n".join(lines) + "\n"
    lines = [
        r"\begin{tabular}{rllrrrr}",
        r"\toprule",
        r" & & & \multicolumn{2}{c}{Effective width} & \multicolumn{2}{c}{Effective height} \\",
        r"\cmidrule(lr){4-5} \cmidrule(lr){6-7}",
        r"Layer & Module & Kernel & frames & ms & bins & Hz \\",
        r"\midrule",
    ]
    for r in rows:
        k = kernel(r, r" \times ")
        lines.append(
            f"{_latex_escape(str(r['layer']))} & \\texttt{{{_latex_escape(str(r['path']))}}} & ${k}$ & "
            f"{r['rf_frames']} & {num(r['rf_ms'])} & {r['rf_bins']} & {num(r['rf_hz'])} \\\\"
        )
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------------- Figs. 3-8


def _hz_label(value: float, _pos: Any = None) -> str:
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def _log_frequency(ax: Axes, frontend: Frontend) -> None:
    """Log-frequency axis from the lower edge of bin 1 to Nyquist (the 0 Hz bin has no place on it)."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    df = frontend.sr / frontend.n_fft
    low, high = df / 2, frontend.sr / 2
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    ticks = [v * 10**e for e in range(0, 6) for v in (1, 2, 5) if low <= v * 10**e <= high]
    while len(ticks) > 6:  # a small panel: fewer labels
        ticks = ticks[::2]
    ax.yaxis.set_major_locator(FixedLocator(ticks))
    ax.yaxis.set_major_formatter(FuncFormatter(_hz_label))
    ax.yaxis.set_minor_formatter(NullFormatter())


def grid_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    *,
    frontend: Frontend,
    original: np.ndarray | None = None,
    log_freq: bool = True,
    shared_scale: bool = False,
    columns: int | None = None,
    fig: Figure | SubFigure | None = None,
    width: str | float = "double",
    range_db: float = 60.0,
) -> Figure | SubFigure:
    """A grid of deconvolved spectrograms (Choi et al., 2016, Figs. 3 and 5-8), one titled panel each.

    Each ``D`` is rectified (``max(D, 0)``: what a mask or a magnitude can use) and shown in dB re its own maximum,
    floored ``range_db`` below -- or re the maximum over all panels with ``shared_scale=True``, which shows which
    features respond most strongly. Either way one colour bar serves every panel. ``original`` (the input
    magnitude ``|X|``) comes first, titled "Original", in dB re its own maximum. Time is in seconds, frequency in
    Hz (log axis from the lower edge of bin 1 up to Nyquist, or linear from 0). Only the outer axes are labelled.
    A panel whose rectified ``D`` is numerically zero (:func:`auralise.resynth.numerically_zero`) is empty and
    titled "... · silent". Titles are plain text, never TeX or mathtext: a name with ``$`` shows as typed.

    Parameters
    ----------
    panels : sequence of (str, np.ndarray of shape (F, T))
        Titles (e.g. ``"Feature 3-38 · kick"``) and deconvolved spectrograms on ``frontend``'s STFT grid
        (``frontend.to_grid(D)``).
    frontend : Frontend
        Gives the time and frequency axes.
    original : np.ndarray, shape (F, T), optional
        Input magnitude, shown as an extra first panel.
    log_freq : bool
        Log frequency axis (default) or linear.
    shared_scale : bool
        dB re the maximum over all panels instead of each panel's own.
    columns : int, optional
        Panels per row (default: up to 4, near-square).
    fig : Figure or SubFigure, optional
        Draw into this; default a new figure in the house style at ``width``.
    width : "single", "double" or float
        Figure width (:func:`figure_width`) when ``fig`` is not given.
    range_db : float
        Dynamic range shown, dB below the reference.

    Returns
    -------
    Figure or SubFigure
        Panels are ``fig.axes[:-1]`` (the original first), the colour bar ``fig.axes[-1]``.

    Raises
    ------
    BadParameterError
        No panels, a spectrogram of the wrong shape, bad ``columns``, ``range_db`` or ``width``.
    """
    from matplotlib.ticker import FuncFormatter

    from auralise.display import _to_db, spectrogram_image
    from auralise.resynth import numerically_zero

    panels = list(panels)
    if not panels:
        raise BadParameterError("no panels to draw; pass a list of (title, D) pairs")
    if not (isinstance(range_db, int | float) and math.isfinite(range_db) and range_db > 0):
        raise BadParameterError(f"range_db must be a positive number of dB, got {range_db!r}")
    F = frontend.n_freq
    titles, images = [], []
    for i, item in enumerate(panels):
        try:
            title, D = item
        except (TypeError, ValueError):
            raise BadParameterError(f"panel {i} must be a (title, D) pair, got {type(item).__name__}") from None
        D = np.asarray(D, dtype=np.float64)
        if D.ndim != 2 or D.shape[0] != F or D.shape[1] == 0:
            raise BadParameterError(
                f"panel {i} ({title!r}) has shape {D.shape}; expected ({F}, T) on the front-end's STFT grid "
                "(use frontend.to_grid(D))"
            )
        titles.append(str(title))
        images.append(np.maximum(np.nan_to_num(D, nan=0.0, posinf=0.0, neginf=0.0), 0.0))
    if original is not None:
        original = np.abs(np.asarray(original))
        if original.ndim != 2 or original.shape[0] != F or original.shape[1] == 0:
            raise BadParameterError(f"original has shape {original.shape}; expected ({F}, T)")
    n = len(images) + (original is not None)
    w_in = figure_width(width) if fig is None else fig.bbox.width / fig.dpi
    if columns is None:  # near-square, up to 4 columns, panels at least ~1.4 in wide
        most = max(1, min(4, int(w_in // 1.4)))
        cols = min(n, most) if n <= most else _grid_shape(n, most)[1]
    elif isinstance(columns, bool) or not isinstance(columns, int | np.integer) or columns < 1:
        raise BadParameterError(f"columns must be a positive integer, got {columns!r}")
    else:
        cols = min(int(columns), n)
    rows = math.ceil(n / cols)

    silent = [bool(numerically_zero(im.max())) for im in images]  # as the WAV would be: see auralise.resynth
    images = [np.zeros_like(im) if quiet else im for im, quiet in zip(images, silent)]
    if shared_scale:  # dB re the maximum over all panels: one _to_db over the panels side by side
        joined = _to_db(np.concatenate(images, axis=1), range_db)
        cuts = np.cumsum([im.shape[1] for im in images])[:-1]
        db_images = np.split(joined, cuts, axis=1)

    with house_style():
        if fig is None:
            from auralise.display import new_figure

            cell = (w_in - 0.8) / cols
            h_in = min(MAX_HEIGHT, max(1.5, rows * (0.62 * cell + 0.22) + 0.4))
            fig = new_figure(figsize=(w_in, h_in), layout="constrained")
        axes = fig.subplots(rows, cols, squeeze=False)
        flat = axes.ravel()
        drawn: list[Axes] = []
        im = None
        if original is not None:
            spectrogram_image(flat[0], original, frontend=frontend, db=True, dynamic_range_db=range_db)
            flat[0].set_title("Original")
            drawn.append(flat[0])
        for i, (title, R) in enumerate(zip(titles, images)):
            ax = flat[len(drawn)]
            if shared_scale:
                im = spectrogram_image(
                    ax, db_images[i], frontend=frontend, db=False, vmin=-range_db, vmax=0.0, cmap="magma"
                )
            else:
                im = spectrogram_image(ax, R, frontend=frontend, db=True, dynamic_range_db=range_db)
            # plain text: a title (a name from a notes file) with "$" or "\\" is not TeX
            ax.set_title(title + (" · silent" if silent[i] else ""), parse_math=False, usetex=False)
            drawn.append(ax)
        for ax in flat[n:]:
            ax.remove()
        same_t = len({a.get_images()[0].get_array().shape[1] for a in drawn}) == 1
        for i, ax in enumerate(drawn):
            row, col = divmod(i, cols)
            bottom_of_column = i + cols >= n
            if log_freq:
                _log_frequency(ax, frontend)
            else:
                ax.yaxis.set_major_formatter(FuncFormatter(_hz_label))
            if not bottom_of_column:
                ax.set_xlabel("")
                if same_t:
                    ax.tick_params(labelbottom=False)
            if col != 0:
                ax.set_ylabel("")
                ax.tick_params(labelleft=False)
        label = "dB re max of all panels" if shared_scale else "dB re panel max"
        fig.colorbar(im, ax=drawn, label=label, shrink=min(1.0, 0.45 + 0.2 * rows), aspect=25)
        _settle(fig)
    return fig
