"""The panels of a deconvolution grid: how many per row, their frequency axis, and titles that fit.

Helpers of :func:`auralise.figures.drawing.grid_figure`:

- :func:`grid_shape`: rows and columns for ``n`` panels at a figure width -- panels at least ``MIN_PANEL_INCHES``
  wide, as few rows as that allows, and among those (or one more row, unless that makes a single column) the shape
  with the fewest empty cells: on a two-column figure 5 panels are one row of 5, 6 are 2 x 3, 9 are 3 x 3; on a
  one-column figure 5 are 3 x 2 (the colour bar lies in the empty cell).
- :func:`frequency_axis`: a linear, log or mel frequency axis in Hz; :func:`default_freq_axis` is the front-end's
  own (linear for an STFT input, mel for a mel input, log for a constant-Q input), so that every input bin gets
  the same height, as the model sees it.
- :func:`fit_titles`: measures each title with the figure's renderer and, where one is wider than its panel, drops
  the "Feature " prefix from every title, then breaks a title at its " · ", then sets the titles smaller (down to
  5 pt), then shortens one with an ellipsis -- so that titles never run into each other.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from auralise.choices import FREQ_AXES
from auralise.errors import check_choice

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

    from auralise.frontends.base import Frontend

__all__ = ["MIN_PANEL_INCHES", "grid_shape", "default_freq_axis", "frequency_axis", "fit_titles", "hz_label"]

MIN_PANEL_INCHES = 1.25  # a panel narrower than this cannot hold its time ticks
MARGIN_INCHES = 0.8  # the y-axis labels at the left and the colour bar
MIN_TICK_GAP = 0.14  # of the axis height between two labelled frequency ticks (6-pt labels on a ~1-inch panel)
MIN_TITLE_POINTS = 5.0

# Slaney's mel scale (librosa's default, htk=False): linear below 1 kHz, logarithmic above
_SLANEY_F_SP = 200.0 / 3.0
_SLANEY_LOG_HZ = 1000.0
_SLANEY_LOG_MEL = _SLANEY_LOG_HZ / _SLANEY_F_SP
_SLANEY_STEP = math.log(6.4) / 27.0


def grid_shape(n: int, width_inches: float) -> tuple[int, int]:
    """(rows, columns) for ``n`` panels on a figure ``width_inches`` wide; see the module docstring.

    Examples
    --------
    >>> [grid_shape(n, 7.16) for n in (1, 4, 5, 6, 7, 9, 10)]
    [(1, 1), (1, 4), (1, 5), (2, 3), (2, 4), (3, 3), (2, 5)]
    >>> [grid_shape(n, 3.5) for n in (1, 2, 3, 4, 5)]
    [(1, 1), (1, 2), (2, 2), (2, 2), (3, 2)]
    """
    most = max(1, int((width_inches - MARGIN_INCHES) // MIN_PANEL_INCHES))
    fewest = math.ceil(n / most)
    shapes = [(r, math.ceil(n / r)) for r in (fewest, fewest + 1) if r <= n]
    shapes = [rc for rc in shapes if rc[1] > 1 or rc[0] == fewest]  # no tall single column when two columns fit
    return min(shapes, key=lambda rc: (rc[0] * rc[1] - n, rc[0]))


def default_freq_axis(frontend: Frontend) -> str:
    """The frequency axis a front-end's input has: "mel" for mel, "log" for constant-Q, else "linear"."""
    return {"mel": "mel", "cqt": "log"}.get(frontend.kind, "linear")


def hz_label(value: float, _pos: Any = None) -> str:
    """``"2k"`` for 2000, ``"500"`` for 500."""
    return f"{value / 1000:g}k" if value >= 1000 else f"{value:g}"


def hz_to_mel(f, htk: bool = False):
    """Mel of ``f`` Hz (array or scalar): Slaney's scale (librosa's default) or HTK's."""
    f = np.asarray(f, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + np.maximum(f, -699.0) / 700.0)
    above = _SLANEY_LOG_MEL + np.log(np.maximum(f, _SLANEY_LOG_HZ) / _SLANEY_LOG_HZ) / _SLANEY_STEP
    return np.where(f < _SLANEY_LOG_HZ, f / _SLANEY_F_SP, above)


def mel_to_hz(m, htk: bool = False):
    """Hz of ``m`` mel (array or scalar): the inverse of :func:`hz_to_mel`."""
    m = np.asarray(m, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (m / 2595.0) - 1.0)
    above = _SLANEY_LOG_HZ * np.exp(_SLANEY_STEP * (np.maximum(m, _SLANEY_LOG_MEL) - _SLANEY_LOG_MEL))
    return np.where(m < _SLANEY_LOG_MEL, m * _SLANEY_F_SP, above)


def _range(frontend: Frontend, axis: str) -> tuple[float, float]:
    """The frequencies (Hz) the axis spans: what the model input covers, without the 0-Hz bin on a log axis."""
    nyquist, df = frontend.sr / 2.0, frontend.sr / frontend.n_fft
    if frontend.kind == "cqt":
        half = 2.0 ** (1.0 / (2.0 * frontend.bins_per_octave))
        top = frontend.fmin * 2.0 ** ((frontend.n_bins - 1) / frontend.bins_per_octave) * half
        return (frontend.fmin / half if axis == "log" else 0.0), min(nyquist, top)
    if frontend.kind == "mel":
        low, high = frontend.fmin, frontend.mel_fmax
    else:
        low, high = 0.0, nyquist
    return (max(low, df / 2.0) if axis == "log" else low), high


def _thinned(ticks: list[float], position) -> list[float]:
    """``ticks`` (ascending) without those closer than :data:`MIN_TICK_GAP` (of the axis) to the one kept below."""
    if not ticks:
        return ticks
    pos = np.asarray(position(np.asarray(ticks, dtype=np.float64)), dtype=np.float64)
    span = (pos.max() - pos.min()) or 1.0
    kept = [0]
    for i in range(1, len(ticks)):
        if (pos[i] - pos[kept[-1]]) / span >= MIN_TICK_GAP:
            kept.append(i)
    return [ticks[i] for i in kept]


def frequency_axis(ax: Axes, frontend: Frontend, axis: str) -> None:
    """Make ``ax``'s y axis a ``"linear"``, ``"log"`` or ``"mel"`` frequency axis in Hz for ``frontend``'s input.

    Linear: from 0 to the top of the input (Nyquist, a mel input's ``fmax``). Log: from the lower edge of the
    lowest input band (an STFT's bin 1: the 0-Hz bin has no place on it) up. Mel: the front-end's own mel scale
    (Slaney or HTK; Slaney for other inputs) over its ``fmin``-``fmax``. Tick labels in Hz ("2k"), thinned so that
    they never crowd.
    """
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    check_choice(axis, FREQ_AXES[1:], "frequency axis")
    low, high = _range(frontend, axis)
    if axis == "linear":
        ax.set_ylim(low, high)
        ax.yaxis.set_major_formatter(FuncFormatter(hz_label))
        return
    nice = [v * 10.0**e for e in range(0, 6) for v in (1, 2, 5)]
    if axis == "log":
        ax.set_yscale("log")
        ticks, position = [v for v in nice if low <= v <= high], np.log10
        ax.yaxis.set_minor_formatter(NullFormatter())
    else:
        htk = bool(getattr(frontend, "htk", False))
        ax.set_yscale("function", functions=(lambda f: hz_to_mel(f, htk), lambda m: mel_to_hz(m, htk)))
        ticks = [v for v in [0.0, *nice] if low <= v <= high]

        def position(f):
            return hz_to_mel(f, htk)

        ax.yaxis.set_minor_locator(NullLocator())
    ax.set_ylim(low, high)
    ax.yaxis.set_major_locator(FixedLocator(_thinned(ticks, position)))
    ax.yaxis.set_major_formatter(FuncFormatter(hz_label))


def fit_titles(fig: Figure | SubFigure, axes: list[Axes]) -> None:
    """Make every title of ``axes`` at most as wide as its panel, measured with the figure's renderer.

    In this order, each step only while some title is still too wide: drop a leading "Feature " from every title
    (all of them, so that they stay alike); break each too-wide title at its first " · " into two lines; set every
    title in the size the widest needs, down to 5 pt; shorten what is still too wide with an ellipsis.
    """
    root = fig
    while not hasattr(root, "draw_without_rendering"):  # a SubFigure: lay out the figure it is part of
        root = root.figure

    def too_wide() -> list[Axes]:
        root.draw_without_rendering()  # runs the constrained layout: panel widths as they will be saved
        renderer = root.canvas.get_renderer()
        return [a for a in axes if a.title.get_window_extent(renderer).width > a.get_window_extent(renderer).width]

    wide = too_wide()
    if wide:
        for a in axes:
            a.title.set_text(a.title.get_text().removeprefix("Feature "))
        wide = too_wide()
    for a in wide:
        a.title.set_text(a.title.get_text().replace(" · ", "\n", 1))
    wide = too_wide() if wide else wide
    if wide:  # one smaller size for every title, so that they stay alike
        renderer = root.canvas.get_renderer()
        ratio = min(a.get_window_extent(renderer).width / a.title.get_window_extent(renderer).width for a in wide)
        size = max(MIN_TITLE_POINTS, math.floor(wide[0].title.get_fontsize() * ratio * 10) / 10)
        for a in axes:
            a.title.set_fontsize(size)
        wide = too_wide()
    for a in wide:
        lines = [_shortened(root, a, line) for line in a.title.get_text().split("\n")]
        a.title.set_text("\n".join(lines))


def _shortened(root, a: Axes, line: str) -> str:
    """``line``, shortened with an ellipsis until, as the title of ``a`` on its own, it is no wider than the panel."""
    renderer = root.canvas.get_renderer()

    def fits(text: str) -> bool:
        a.title.set_text(text)
        return a.title.get_window_extent(renderer).width <= a.get_window_extent(renderer).width

    if fits(line):
        return line
    kept, too_many = 0, len(line)  # the longest kept prefix that fits, by bisection (a title may be a long note)
    while too_many - kept > 1:
        middle = (kept + too_many) // 2
        kept, too_many = (middle, too_many) if fits(line[:middle].rstrip() + "…") else (kept, middle)
    return line[:kept].rstrip() + "…"
