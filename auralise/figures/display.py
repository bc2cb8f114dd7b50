"""Plotting primitives: spectrogram panels and the per-feature figure.

matplotlib is imported lazily and only through :class:`matplotlib.figure.Figure` with an Agg canvas
(:func:`new_figure`) -- never ``pyplot``, so no global state, no GUI backend, thread-safe figures.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.errors import BadParameterError, OutputError

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.image import AxesImage

    from auralise.frontends.base import Frontend

__all__ = ["new_figure", "to_db", "spectrogram_image", "feature_figure", "save_figure"]

DB_LABEL = "dB re max"
DECONV_LABEL = "dB re feature max"
DECONV_RANGE_DB = 60.0


def new_figure(*, figsize: tuple[float, float] = (8.0, 6.0), dpi: float = 100.0, **kwargs: Any) -> Figure:
    """A stand-alone matplotlib Figure on an Agg canvas (no pyplot, no global state).

    Parameters
    ----------
    figsize : (float, float)
        Size in inches.
    dpi : float
        Screen resolution (``save_figure`` sets the file's).
    **kwargs
        Passed to :class:`matplotlib.figure.Figure` (e.g. ``layout="constrained"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, dpi=dpi, **kwargs)
    FigureCanvasAgg(fig)
    return fig


def to_db(M: np.ndarray, dynamic_range_db: float) -> np.ndarray:
    """Decibels re the maximum, floored: ``20 log10(|M| / max|M|)``, at least ``-dynamic_range_db``.

    Parameters
    ----------
    M : np.ndarray, any shape
        Magnitudes (the sign is ignored).
    dynamic_range_db : float
        The floor, in dB below the maximum (positive).

    Returns
    -------
    np.ndarray, same shape as ``M``, float64
        Values in ``[-dynamic_range_db, 0]``; all ``-dynamic_range_db`` when ``M`` is all zero or empty.

    Examples
    --------
    >>> to_db(np.array([1.0, 0.1, 0.0]), 60.0).round(1).tolist()
    [0.0, -20.0, -60.0]
    """
    A = np.abs(np.asarray(M, dtype=np.float64))
    ref = A.max() if A.size else 0.0
    if not ref > 0:
        return np.full(A.shape, -dynamic_range_db)
    floor = ref * 10.0 ** (-dynamic_range_db / 20.0)
    return 20.0 * np.log10(np.maximum(A, floor) / ref)


def spectrogram_image(
    ax: Axes,
    M: np.ndarray,
    *,
    frontend: Frontend,
    db: bool = True,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str = "magma",
    dynamic_range_db: float = 80.0,
) -> AxesImage:
    """Draw a (F, T) spectrogram on ``ax``: time in seconds on x, frequency in Hz on y (low at bottom).

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    M : np.ndarray, shape (F, T)
        Magnitudes (or any non-negative values) on ``frontend``'s grid.
    frontend : Frontend
        Gives the time and frequency axes.
    db : bool
        Show ``20 log10(|M| / max|M|)`` floored at ``-dynamic_range_db`` (default) instead of ``M``.
    vmin, vmax : float, optional
        Colour limits; for dB they default to ``-dynamic_range_db`` and 0.
    cmap : str
        Colour map name.
    dynamic_range_db : float
        dB floor below the maximum.

    Returns
    -------
    matplotlib.image.AxesImage
        The artist (pass it to ``fig.colorbar``).
    """
    M = np.asarray(M)
    if M.ndim != 2 or M.shape[0] != frontend.n_freq or M.shape[1] == 0:
        raise BadParameterError(f"spectrogram must have shape ({frontend.n_freq}, T) with T > 0, got {M.shape}")
    if not dynamic_range_db > 0:
        raise BadParameterError(f"dynamic_range_db must be positive, got {dynamic_range_db!r}")
    if db:
        values = to_db(M, dynamic_range_db)
        vmin = -dynamic_range_db if vmin is None else vmin
        vmax = 0.0 if vmax is None else vmax
    else:
        values = np.asarray(M, dtype=np.float64)
    F, T = values.shape
    times = frontend.frame_times(T)
    dt = frontend.hop_length / frontend.sr
    df = frontend.sr / frontend.n_fft
    extent = (times[0] - dt / 2, times[-1] + dt / 2, -df / 2, (F - 1) * df + df / 2)
    im = ax.imshow(
        values,
        origin="lower",
        aspect="auto",
        interpolation="nearest",
        extent=extent,
        cmap=cmap,
        vmin=vmin,
        vmax=vmax,
    )
    ax.set_xlabel("Time (s)")
    ax.set_ylabel("Frequency (Hz)")
    ax.set_ylim(0, frontend.sr / 2)
    return im


def feature_figure(
    S_mag: np.ndarray,
    D: np.ndarray,
    *,
    frontend: Frontend,
    title: str,
    method: str = "deconvnet",
) -> Figure:
    """Input spectrogram above the deconvolved spectrogram of one feature (Choi et al., 2016, Fig. 3 style).

    Top panel: ``S_mag`` in dB relative to its maximum (80 dB range). Bottom panel: ``max(D, 0)`` in dB
    relative to its own maximum (60 dB range: a linear scale shows only the few strongest cells of a sparse
    projection). An all-zero, all-negative or numerically zero (:func:`auralise.render.resynth.numerically_zero`) ``D``
    gives an empty bottom panel titled "... - silent".

    Parameters
    ----------
    S_mag : np.ndarray, shape (F, T)
        Input magnitude ``|X|``.
    D : np.ndarray, shape (F, T)
        Deconvolved spectrogram on the same grid (``frontend.to_grid(...)[k]``).
    frontend : Frontend
    title : str
        Figure title, e.g. ``"Feature 3-38"``.
    method : str
        Backward rule named in the lower panel's title.

    Returns
    -------
    matplotlib.figure.Figure
        8 x 6 in, constrained layout; save with :func:`save_figure`.
    """
    S_mag = np.asarray(S_mag)
    D = np.asarray(D, dtype=np.float64)
    if D.shape != S_mag.shape:
        raise BadParameterError(f"D has shape {D.shape} but the input spectrogram has {S_mag.shape}")
    from auralise.render.resynth import numerically_zero

    R = np.maximum(np.nan_to_num(D, nan=0.0, posinf=0.0, neginf=0.0), 0.0)
    peak = R.max() if R.size else 0.0
    silent = bool(numerically_zero(peak))  # the same test that makes the feature's WAV silence
    Rn = R / peak if not silent else np.zeros_like(R)

    fig = new_figure(figsize=(8.0, 6.0), layout="constrained")
    ax_in, ax_d = fig.subplots(2, 1, sharex=True, sharey=True)
    im = spectrogram_image(ax_in, S_mag, frontend=frontend, db=True)
    ax_in.set_title("Input spectrogram (dB, ref max)")
    fig.colorbar(im, ax=ax_in, label=DB_LABEL)

    im = spectrogram_image(ax_d, Rn, frontend=frontend, db=True, dynamic_range_db=DECONV_RANGE_DB)
    ax_d.set_title(f"Deconvolved ({method})" + (" - silent (all zero)" if silent else ""))
    fig.colorbar(im, ax=ax_d, label=DECONV_LABEL)
    ax_in.set_xlabel("")
    ax_in.tick_params(labelbottom=False)
    fig.suptitle(title)
    return fig


def save_figure(fig: Figure, path: str | os.PathLike, *, dpi: float = 120, metadata: dict | None = None) -> Path:
    """Save ``fig`` atomically; the format follows the extension (.png, .pdf, .svg, ...).

    Parameters
    ----------
    fig : matplotlib.figure.Figure
    path : str or PathLike
    dpi : float
        Resolution for raster formats.
    metadata : dict, optional
        Passed to ``savefig`` (keys depend on the format, e.g. PDF ``Subject``, PNG ``Description``).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OutputError
        Unknown extension or the file cannot be written.
    """
    from auralise.io.files import _target_of, atomic_path, write_failure

    final = Path(path)
    fmt = final.suffix.lower().lstrip(".")
    if fig.canvas is None or not hasattr(fig.canvas, "get_supported_filetypes"):
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(fig)
    supported = fig.canvas.get_supported_filetypes()
    if fmt not in supported:
        raise OutputError(
            f"cannot write {_target_of(final)}: unknown image extension {final.suffix!r}; use one of "
            f"{', '.join('.' + k for k in sorted(supported))}"
        )
    try:  # atomic_path turns the writer's OSError (full disk, read-only folder) into a one-line error naming path
        with atomic_path(final) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt, metadata=metadata)
    except OSError as exc:
        raise write_failure(final, exc) from exc
    return final
