"""Paper figures drawn in the house style (:mod:`auralise.figures.style`): learned filters, the receptive-field
table, deconvolution grids.

Choi, Fazekas & Sandler (2016) show three kinds of figure: the learned weights of first-layer features (Fig. 4),
the effective sizes of the kernels (Table 1) and grids of deconvolved spectrograms (Figs. 3 and 5-8). This module
draws each of them, into a given matplotlib figure or a new one at a journal column width; save them with
:func:`auralise.figures.style.save_figure_file`.

matplotlib is imported lazily and only through :func:`auralise.figures.display.new_figure` (an Agg-backed Figure), never
``pyplot``.

Examples
--------
>>> from auralise.nets import zoo
>>> from auralise.figures.drawing import filters_figure
>>> from auralise.figures.style import save_figure_file
>>> model = zoo.build("choi2016", {"channels": 8, "hidden": 16})
>>> fig = filters_figure(model.features[0].weight, layer=1)
>>> save_figure_file(fig, "filters.pdf", command="python make_figs.py")  # doctest: +SKIP
PosixPath('filters.pdf')
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.choices import FILTER_CHANNELS, FREQ_AXES, LAYOUTS, TABLE_FORMATS
from auralise.errors import BadParameterError, check_choice
from auralise.figures.style import MAX_HEIGHT, figure_width, house_style, settle

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from auralise.engine.layers import Layer
    from auralise.frontends.base import Frontend

__all__ = ["layer_weights", "filters_figure", "receptive_field_table", "grid_figure"]

MAX_FILTER_COLUMNS = 16


# ---------------------------------------------------------------------------------------------------- Fig. 4


def layer_weights(module: torch.nn.Module, layer: Layer) -> torch.Tensor:
    """The weight tensor of a convolution layer found by :func:`auralise.engine.layers.discover`.

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
        Figure width (:func:`~auralise.figures.style.figure_width`) when ``fig`` is not given.
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
    check_choice(layout, LAYOUTS, "layout")
    check_choice(channels, FILTER_CHANNELS, "channels option")
    if channels == "all" and W.ndim == 4:
        raise BadParameterError('channels="all" is for 1-D kernels only; use "strongest" for Conv2d weights')
    from auralise.engine.selection import check_features

    chosen = range(W.shape[0]) if features is None else check_features(features, layer, channels=W.shape[0])
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
            from auralise.figures.display import new_figure

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
        settle(fig)
    return fig


def _annotate_cells(ax: Axes, k: np.ndarray, vmax: float) -> None:
    size = 6.0 if k.size <= 9 else 4.5
    for (r, c), v in np.ndenumerate(k):
        colour = "white" if abs(v) > 0.6 * vmax else "black"
        ax.text(c, r, f"{v:.2f}", ha="center", va="center", fontsize=size, color=colour)


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
        From :func:`auralise.engine.layers.layer_table` (keys ``layer``, ``path``, ``kernel``, ``rf_frames``, ``rf_ms``,
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
                f"row {i} lacks {', '.join(missing)}; pass the rows of auralise.engine.layers.layer_table(...)"
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


def grid_figure(
    panels: Sequence[tuple[str, np.ndarray]],
    *,
    frontend: Frontend,
    original: np.ndarray | None = None,
    freq_axis: str = "auto",
    shared_scale: bool = False,
    columns: int | None = None,
    fig: Figure | SubFigure | None = None,
    width: str | float = "double",
    range_db: float = 60.0,
    time_offset: float = 0.0,
) -> Figure | SubFigure:
    """A grid of deconvolved spectrograms (Choi et al., 2016, Figs. 3 and 5-8), one titled panel each.

    Each ``D`` is rectified (``max(D, 0)``: what a mask or a magnitude can use) and shown in dB re its own maximum,
    floored ``range_db`` below -- or re the maximum over all panels with ``shared_scale=True``, which shows which
    features respond most strongly. Either way one colour bar serves every panel: right of the grid, or, when the
    last row has empty cells, lying in them. ``original`` (the input magnitude ``|X|``) comes first, titled
    "Original", in dB re its own maximum. Time is in seconds, frequency in Hz on the front-end's own axis by default
    (:func:`auralise.figures.panels.frequency_axis`). Only the outer axes are labelled. The panels are laid out by
    :func:`auralise.figures.panels.grid_shape` (5 panels on a two-column figure: one row). Titles are measured and
    made to fit their panels (:func:`auralise.figures.panels.fit_titles`). A panel whose rectified ``D`` is
    numerically zero (:func:`auralise.render.resynth.numerically_zero`) is empty and titled "... · silent". Titles
    are plain text, never TeX or mathtext: a name with ``$`` shows as typed.

    Parameters
    ----------
    panels : sequence of (str, np.ndarray of shape (F, T))
        Titles (e.g. ``"Feature 3-38 · kick"``) and deconvolved spectrograms on ``frontend``'s STFT grid
        (``frontend.to_grid(D)``).
    frontend : Frontend
        Gives the time and frequency axes.
    original : np.ndarray, shape (F, T), optional
        Input magnitude, shown as an extra first panel.
    freq_axis : {"auto", "linear", "log", "mel"}
        The frequency axis; ``"auto"`` (default): the front-end's own -- linear for an STFT input, mel for a mel
        input, log for a constant-Q input.
    shared_scale : bool
        dB re the maximum over all panels instead of each panel's own.
    columns : int, optional
        Panels per row (default :func:`~auralise.figures.panels.grid_shape`'s choice).
    fig : Figure or SubFigure, optional
        Draw into this; default a new figure in the house style at ``width``.
    width : "single", "double" or float
        Figure width (:func:`~auralise.figures.style.figure_width`) when ``fig`` is not given.
    range_db : float
        Dynamic range shown, dB below the reference.
    time_offset : float
        Seconds added to the time axis (where the excerpt starts in its file).

    Returns
    -------
    Figure or SubFigure
        Panels are ``fig.axes[:-1]`` (the original first), the colour bar ``fig.axes[-1]``.

    Raises
    ------
    BadParameterError
        No panels, a spectrogram of the wrong shape, bad ``columns``, ``freq_axis``, ``range_db`` or ``width``.
    """
    from auralise.figures.display import new_figure, to_db
    from auralise.figures.panels import default_freq_axis, fit_titles
    from auralise.render.resynth import numerically_zero

    panels = list(panels)
    if not panels:
        raise BadParameterError("no panels to draw; pass a list of (title, D) pairs")
    if not (isinstance(range_db, int | float) and math.isfinite(range_db) and range_db > 0):
        raise BadParameterError(f"range_db must be a positive number of dB, got {range_db!r}")
    check_choice(freq_axis, FREQ_AXES, "frequency axis")
    axis = default_freq_axis(frontend) if freq_axis == "auto" else freq_axis
    titles, images = _rectified_panels(panels, frontend.n_freq)
    if original is not None:
        original = np.abs(np.asarray(original))
        if original.ndim != 2 or original.shape[0] != frontend.n_freq or original.shape[1] == 0:
            raise BadParameterError(f"original has shape {original.shape}; expected ({frontend.n_freq}, T)")
    n = len(images) + (original is not None)
    w_in = figure_width(width) if fig is None else fig.bbox.width / fig.dpi
    rows, cols = _grid_layout(columns, n, w_in)

    silent = [bool(numerically_zero(im.max())) for im in images]  # as the WAV would be: see auralise.render.resynth
    images = [np.zeros_like(im) if quiet else im for im, quiet in zip(images, silent)]
    if shared_scale:  # dB re the maximum over all panels: one to_db over the panels side by side
        joined = to_db(np.concatenate(images, axis=1), range_db)
        images = np.split(joined, np.cumsum([im.shape[1] for im in images])[:-1], axis=1)
    shown = [("Original", original, False)] if original is not None else []
    shown += [(title + (" · silent" if quiet else ""), R, True) for title, R, quiet in zip(titles, images, silent)]

    with house_style():
        if fig is None:
            cell = (w_in - 0.8) / cols
            h_in = min(MAX_HEIGHT, max(1.5, rows * (0.62 * cell + 0.22) + 0.4))
            fig = new_figure(figsize=(w_in, h_in), layout="constrained")
        gs = fig.add_gridspec(rows, cols)
        drawn = [fig.add_subplot(gs[i // cols, i % cols]) for i in range(n)]
        im = _draw_panels(drawn, shown, frontend, shared_scale, range_db, time_offset)
        _label_grid(drawn, cols, frontend, axis)
        label = "dB re max of all panels" if shared_scale else "dB re panel max"
        if rows * cols > n:  # the last row has empty cells: the colour bar lies in them, next to the panels
            cax = fig.add_subplot(gs[rows - 1, n % cols :])
            cax.set_box_aspect(0.07 / (cols - n % cols))
            fig.colorbar(im, cax=cax, orientation="horizontal", label=label)
        else:  # right of the grid, one colour-bar width away
            pad = 0.06 / max(1.0, w_in - 0.8)  # constrained layout: a fraction of the panels' width
            fig.colorbar(im, ax=drawn, label=label, shrink=min(1.0, 0.45 + 0.2 * rows), aspect=25, pad=pad)
        settle(fig)
        fit_titles(fig, drawn)
    return fig


def _draw_panels(drawn, shown, frontend: Frontend, shared_scale: bool, range_db: float, time_offset: float):
    """Each (title, image, is_projection) of ``shown`` on its axes; the last projection's image (for the colour bar).

    The original is in dB re its own max; a projection in dB re its own max, or already in dB (``shared_scale``).
    """
    from auralise.figures.display import spectrogram_image

    im = None
    for ax, (title, R, projection) in zip(drawn, shown):
        if not projection:
            spectrogram_image(ax, R, frontend=frontend, db=True, dynamic_range_db=range_db)
        elif shared_scale:  # R is in dB already
            im = spectrogram_image(ax, R, frontend=frontend, db=False, vmin=-range_db, vmax=0.0, cmap="magma")
        else:
            im = spectrogram_image(ax, R, frontend=frontend, db=True, dynamic_range_db=range_db)
        # plain text: a title (a name from a notes file) with "$" or "\\" is not TeX
        ax.set_title(title, parse_math=False, usetex=False)
        if time_offset:
            image = ax.get_images()[0]
            left, right, bottom, top = image.get_extent()
            image.set_extent((left + time_offset, right + time_offset, bottom, top))
            ax.set_xlim(left + time_offset, right + time_offset)
    return im


def _rectified_panels(panels: list, n_freq: int) -> tuple[list[str], list[np.ndarray]]:
    """Titles and rectified spectrograms ``max(D, 0)`` (non-finite values as 0) of ``(title, D)`` pairs.

    Each ``D`` must have shape ``(n_freq, T)`` with T > 0 (BadParameterError otherwise); the arrays are float64.
    """
    titles, images = [], []
    for i, item in enumerate(panels):
        try:
            title, D = item
        except (TypeError, ValueError):
            raise BadParameterError(f"panel {i} must be a (title, D) pair, got {type(item).__name__}") from None
        D = np.asarray(D, dtype=np.float64)
        if D.ndim != 2 or D.shape[0] != n_freq or D.shape[1] == 0:
            raise BadParameterError(
                f"panel {i} ({title!r}) has shape {D.shape}; expected ({n_freq}, T) on the front-end's STFT grid "
                "(use frontend.to_grid(D))"
            )
        titles.append(str(title))
        images.append(np.maximum(np.nan_to_num(D, nan=0.0, posinf=0.0, neginf=0.0), 0.0))
    return titles, images


def _grid_layout(columns: int | None, n: int, width_inches: float) -> tuple[int, int]:
    """(rows, columns): ``columns`` per row (at most ``n``), or :func:`auralise.figures.panels.grid_shape`'s."""
    from auralise.figures.panels import grid_shape

    if columns is None:
        return grid_shape(n, width_inches)
    if isinstance(columns, bool) or not isinstance(columns, int | np.integer) or columns < 1:
        raise BadParameterError(f"columns must be a positive integer, got {columns!r}")
    cols = min(int(columns), n)
    return math.ceil(n / cols), cols


def _label_grid(drawn: list[Axes], cols: int, frontend: Frontend, axis: str) -> None:
    """The frequency axis on every panel; tick labels and axis titles only on the outer panels."""
    from auralise.figures.panels import frequency_axis

    n = len(drawn)
    same_t = len({a.get_images()[0].get_array().shape[1] for a in drawn}) == 1
    for i, ax in enumerate(drawn):
        col = i % cols
        bottom_of_column = i + cols >= n
        frequency_axis(ax, frontend, axis)
        if not bottom_of_column:
            ax.set_xlabel("")
            if same_t:
                ax.tick_params(labelbottom=False)
        if col != 0:
            ax.set_ylabel("")
            ax.tick_params(labelleft=False)
