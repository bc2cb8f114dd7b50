"""The atlas's render step: one occurrence (song, layer, feature, unit) -> an auralised excerpt and its original.

The excerpt is a window of the song around the unit: at least ``excerpt`` seconds (default: the unit's receptive
field plus context, at least 3 s), starting on the layer's stride grid so that the excerpt's units are the song's
units (a unit whose receptive field lies inside the excerpt has exactly its song activation). The feature is seeded
at that one unit (Zeiler & Fergus' strongest activation), projected with the chosen rule, and resynthesised with the
excerpt's own phase.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MIN_EXCERPT = 3.0  # seconds
CONTEXT = 1.0  # seconds added on each side of the receptive field by default


@dataclass(frozen=True)
class Window:
    """An excerpt of a song: STFT frames ``[frame, frame + frames)``, samples ``[start, stop)``; the occurrence's unit
    is unit ``unit`` of the excerpt's tap map along time."""

    frame: int
    frames: int
    start: int
    stop: int
    unit: int


def excerpt_window(fe, geometry, unit: int, n_samples: int, seconds: float | None) -> Window:
    """The window of a song (``n_samples`` at ``fe.sr``) around time unit ``unit`` of a tap with ``geometry``.

    The unit's receptive field (input frames ``[offset + unit * stride, ... + frames)``) lies inside the window with
    a margin of the frames whose content depends on where the excerpt is cut (half a window, for centred STFTs), or
    the window reaches the song's edge there; so the excerpt's unit has exactly the song's activation.

    Parameters
    ----------
    fe : Frontend
        The model's front-end (frames of ``hop_length`` samples).
    geometry : TimeGeometry
        The tap's tiling of the input frames (stride, offset, frames).
    seconds : float or None
        Excerpt length; None: the receptive field plus :data:`CONTEXT` on each side, at least :data:`MIN_EXCERPT`.
    """
    hop, stride = fe.hop_length, geometry.stride
    total = fe.n_frames(n_samples)
    edge = -(-(fe.n_fft // 2) // hop) if fe.center else 0  # frames that see past a cut
    field_start = geometry.offset + unit * stride
    field_stop = field_start + geometry.frames
    length = seconds if seconds is not None else max(MIN_EXCERPT, geometry.frames * hop / fe.sr + 2 * CONTEXT)
    want = max(geometry.frames + 2 * edge, int(round(length * fe.sr / hop)))
    first = max(0, min((field_start + field_stop) // 2 - want // 2, total - want))
    first = min(first, max(0, field_start - edge)) // stride * stride  # on the stride grid, margin kept
    last = min(total, max(first + want, field_stop + edge))
    start = first * hop
    if last == total:
        stop = n_samples
    else:
        stop = min(n_samples, (last - 1) * hop + (fe.n_fft // 2 if fe.center else fe.n_fft))
    return Window(first, last - first, start, stop, unit - first // stride)


def render_occurrence(
    model,
    y: np.ndarray,
    *,
    layer,
    feature: int,
    unit_position: tuple[int, ...],
    time_axis: int,
    window: Window,
    tap: str = "block",
    method: str = "deconvnet",
    resynth: str = "mask",
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float]:
    """Project ``feature`` of ``layer`` seeded at one unit of the excerpt and resynthesise it.

    Parameters
    ----------
    model : LoadedModel
    y : np.ndarray, shape (n,)
        The whole song at the model's rate (only ``window``'s samples are used).
    layer : Layer
        The layer (``LayerGraph.layer``).
    unit_position : tuple of int
        The unit's position as the scan gives it: the non-time axes of the tap map, then the time unit (replaced by
        the window's).
    time_axis : int
        The tap map's time axis (``TimeGeometry.tap_axis``, counting batch and channel).
    window : Window

    Returns
    -------
    excerpt : np.ndarray, shape (m,)
        The original excerpt.
    wave : np.ndarray, shape (m,)
        The auralised excerpt (peak-normalised; silence for a silent feature).
    grid : np.ndarray, shape (F, T)
        The projection on the excerpt's STFT grid, for its thumbnail.
    magnitude : np.ndarray, shape (F, T)
        ``|STFT|`` of the excerpt, for the original's thumbnail.
    activation : float
        The seeded unit's activation in the excerpt (equals the song's where its receptive field is inside).
    """
    import torch

    from auralise.engine.layers import eval_mode
    from auralise.engine.rules import project
    from auralise.engine.trace import record_forward
    from auralise.render.resynth import render_waves

    fe, module = model.frontend, model.module
    excerpt = np.ascontiguousarray(y[window.start : window.stop])
    X = fe.stft(excerpt)
    S = fe.model_input(X, y=excerpt).to(next(module.parameters()).device)
    tap_ref = layer.taps[tap]
    with eval_mode(module), torch.inference_mode():
        trace = record_forward(module, S, stop_after=tap_ref[0])
        tap_map = trace.records[tap_ref[0]].outputs[tap_ref[1]]
        spatial = list(unit_position[:-1])
        spatial.insert(time_axis - 2, min(window.unit, tap_map.shape[time_axis] - 1))
        position = tuple(spatial)
        index = (0, feature, *position)
        activation = float(tap_map[index])
        seeds = torch.zeros((1, *tap_map.shape[:1], 1, *tap_map.shape[2:]), dtype=tap_map.dtype, device=S.device)
        seeds[(0, 0, 0, *position)] = tap_map[index]
        D = project(trace, tap_ref, seeds, torch.tensor([feature], device=S.device), rule=method)
    D = D.reshape(1, *S.shape[1:]).cpu()
    rendered = render_waves(X, D, frontend=fe, mode=resynth, phase="original", length=len(excerpt),
                            normalize="peak", activation_max=[activation], y=excerpt)  # fmt: skip
    return excerpt, rendered.waves[0], rendered.grid[0], np.abs(X), activation
