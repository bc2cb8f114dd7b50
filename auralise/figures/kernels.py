"""Kernels that read the samples themselves, drawn as what they are: short waveforms, and their spectra.

A first layer that convolves the audio (CREPE's 512-sample kernels on its framed input, a sample-level CNN's first
layer) learns a filterbank. An image of a 512 x 1 kernel says nothing; its waveform and its magnitude response do.
:func:`waveform_kernels_figure` draws, for the chosen kernels ordered by the frequency of their spectral peak,
a grid of small waveform panels (time in ms) and one image of all their magnitude responses (dB re the largest,
one row per kernel, frequency in Hz along x), which shows the learned filterbank at a glance.
``auralise figure filters`` uses it for a layer that reads the samples of a waveform or framed front-end.

Example
-------
>>> import numpy as np
>>> from auralise.figures.kernels import waveform_kernels_figure
>>> t = np.arange(64) / 16000
>>> w = np.stack([np.sin(2 * np.pi * f * t) * np.hanning(64) for f in (500, 1000, 2000)])[:, None, :, None]
>>> fig = waveform_kernels_figure(w, sr=16000)
>>> [ax.get_title() for ax in fig.subfigs[0].axes]
['1-0 500 Hz', '1-1 1000 Hz', '1-2 2000 Hz']
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from auralise.errors import BadParameterError
from auralise.figures.style import MAX_HEIGHT, figure_width, house_style, settle

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from matplotlib.figure import Figure, SubFigure

__all__ = ["kernel_spectra", "reads_samples", "waveform_kernels_figure"]

MAX_WAVEFORMS = 64  # waveform panels drawn at most (spread evenly over the kernels ordered by peak frequency)
FLOOR_DB = -60.0


def reads_samples(weights, projection_is_audio: bool) -> bool:
    """Whether ``weights`` are kernels over the samples themselves: one input channel, one kernel axis longer than
    one tap, on a front-end whose input is audio (waveform or framed)."""
    shape = tuple(weights.shape)
    return projection_is_audio and len(shape) in (3, 4) and shape[1] == 1 and max(shape[2:]) == math.prod(shape[2:])


def kernel_spectra(kernels: np.ndarray, sr: int, n_fft: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Magnitude responses of 1-D kernels (K, k): frequencies (n_fft // 2 + 1,) in Hz and |FFT| (K, n_fft // 2 + 1),
    zero-padded to ``n_fft`` (default the next power of two at least twice ``k``, and at least 512)."""
    k = kernels.shape[-1]
    n_fft = n_fft or max(512, 1 << math.ceil(math.log2(2 * k)))
    return np.fft.rfftfreq(n_fft, 1.0 / sr), np.abs(np.fft.rfft(kernels, n=n_fft, axis=-1))


def waveform_kernels_figure(
    weights: torch.Tensor | np.ndarray,
    *,
    sr: int,
    features: Sequence[int] | None = None,
    layer: int = 1,
    fig: Figure | SubFigure | None = None,
    width: str | float = "double",
) -> Figure | SubFigure:
    """Kernels over samples as waveforms and magnitude responses, ordered by the frequency of their peak.

    Parameters
    ----------
    weights : torch.Tensor or np.ndarray, shape (C_out, 1, k), (C_out, 1, k, 1) or (C_out, 1, 1, k)
        A first layer's weights over the samples (:func:`reads_samples`).
    sr : int
        The samples' rate, for the time (ms) and frequency (Hz) axes.
    features : sequence of int, optional
        Kernels to draw (default all). The spectra image shows all of them; at most :data:`MAX_WAVEFORMS`
        waveform panels are drawn, spread evenly over the kernels in peak order.
    layer : int
        Layer number for the panel titles ``"L-F 440 Hz"`` (feature and peak frequency).
    fig : Figure or SubFigure, optional
        Draw into this; default a new figure in the house style at ``width``.
    width : "single", "double" or float
        Figure width when ``fig`` is not given.

    Returns
    -------
    Figure or SubFigure
        Two sub-figures: ``subfigs[0]`` the waveform panels, ``subfigs[1]`` the spectra image and its colour bar.
    """
    W = weights.detach().cpu().float().numpy() if hasattr(weights, "detach") else np.asarray(weights, np.float64)
    if not reads_samples(W, True):
        raise BadParameterError(
            f"waveform kernels need weights of shape (C_out, 1, k) or (C_out, 1, k, 1), got {tuple(W.shape)}"
        )
    kernels = W.reshape(W.shape[0], -1).astype(np.float64)
    from auralise.engine.selection import check_features

    chosen = list(range(len(kernels))) if features is None else list(check_features(features, layer, channels=len(W)))
    freqs, mag = kernel_spectra(kernels[chosen], sr)
    peaks = freqs[np.argmax(mag, axis=1)]
    order = np.argsort(peaks, kind="stable")
    shown = order[np.unique(np.linspace(0, len(order) - 1, min(MAX_WAVEFORMS, len(order))).round().astype(int))]
    db = 20.0 * np.log10(np.maximum(mag[order] / max(float(mag.max()), 1e-30), 10.0 ** (FLOOR_DB / 20.0)))
    cols = max(1, min(8, math.ceil(math.sqrt(len(shown)))))
    rows = math.ceil(len(shown) / cols)
    ms = np.arange(kernels.shape[1]) * 1000.0 / sr
    with house_style():
        if fig is None:
            from auralise.figures.display import new_figure

            w_in = figure_width(width)
            fig = new_figure(figsize=(w_in, min(MAX_HEIGHT, max(2.4, 0.55 * rows + 0.8))), layout="constrained")
        left, right = fig.subfigures(1, 2, width_ratios=[3, 2])
        axes = left.subplots(rows, cols, squeeze=False, sharex=True).ravel()
        vmax = float(np.abs(kernels[[chosen[i] for i in shown]]).max()) or 1.0
        for ax, i in zip(axes, shown):
            ax.plot(ms, kernels[chosen[i]], linewidth=0.5, color="black")
            ax.set_ylim(-vmax, vmax)
            ax.set_yticks([])
            ax.set_title(f"{layer}-{chosen[i]} {peaks[i]:.0f} Hz", fontsize=5.5)
        for ax in axes[len(shown) :]:
            ax.remove()
        left.supxlabel("time (ms)")
        ax = right.subplots()
        image = ax.imshow(db, origin="lower", aspect="auto", cmap="magma", vmin=FLOOR_DB, vmax=0.0,
                          extent=(freqs[0], freqs[-1], -0.5, len(order) - 0.5), interpolation="nearest")  # fmt: skip
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel(f"kernel, by peak frequency ({len(order)})")
        right.colorbar(image, ax=ax, label="dB re max")
        settle(fig)
    return fig
