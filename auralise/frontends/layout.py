"""Layouts: how a (frequency x time) model input is arranged as a tensor, and back.

B batch, C a channel axis of size 1, F frequency (``F_in`` model-input bins), T time:

======  ======================  ===========================================================
name    one input (no batch)    used by
======  ======================  ===========================================================
BCFT    ``(1, F, T)``           2-D convolutions over frequency x time (the default)
BCTF    ``(1, T, F)``           2-D convolutions over time x frequency (musicnn)
BFT     ``(F, T)``              1-D convolutions along time, frequency as channels
BTF     ``(T, F)``              time-major sequence models
======  ======================  ===========================================================

The axes of each layout (:data:`auralise.choices.LAYOUT_AXES`) are shared with the engine, which must not import
front-ends.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from auralise.choices import LAYOUT_AXES, LAYOUTS
from auralise.errors import BadParameterError
from auralise.frontends.arrays import is_torch

__all__ = ["LAYOUTS", "LAYOUT_AXES", "arrange", "input_shape", "time_axis", "unlayout"]


def _has_channel(layout: str) -> bool:
    return layout.startswith("BC")


def _time_major(layout: str) -> bool:
    return layout.endswith("TF")


def input_shape(layout: str, F: int, T: int) -> tuple[int, ...]:
    """Shape of one model input (no batch axis) with ``F`` frequency bins and ``T`` frames."""
    shape = (T, F) if _time_major(layout) else (F, T)
    return (1, *shape) if _has_channel(layout) else shape


def time_axis(layout: str) -> int:
    """The time axis of a batched model input (``LAYOUT_AXES[layout][0]``)."""
    return LAYOUT_AXES[layout][0]


def arrange(S: np.ndarray, layout: str) -> np.ndarray:
    """A (F, T) input as a batch of one in ``layout``: shape ``(1, *input_shape(layout, F, T))``, C-contiguous."""
    if _time_major(layout):
        S = S.T
    return np.ascontiguousarray(S[None, None] if _has_channel(layout) else S[None])


def unlayout(D: Any, layout: str, F: int) -> np.ndarray:
    """A batch in ``layout`` back to frequency x time.

    Parameters
    ----------
    D : np.ndarray or torch.Tensor, shape (K, *input_shape(layout, F, T))
    layout : str
        One of :data:`LAYOUTS`.
    F : int
        The expected size of the frequency axis.

    Returns
    -------
    np.ndarray, shape (K, F, T), float32
        A view where possible (not necessarily contiguous).

    Raises
    ------
    BadParameterError
        ``D`` does not have the layout's number of axes, a channel axis of 1 or ``F`` frequency bins.
    """
    if is_torch(D):
        D = D.detach().to("cpu").float().numpy()
    D = np.asarray(D, dtype=np.float32)
    ndim = 4 if _has_channel(layout) else 3
    if D.ndim != ndim or (ndim == 4 and D.shape[1] != 1):
        raise _wrong_shape(D, layout, F)
    G = D[:, 0] if ndim == 4 else D
    if _time_major(layout):
        G = G.transpose(0, 2, 1)
    if G.shape[1] != F:
        raise _wrong_shape(D, layout, F)
    return G


def _wrong_shape(D: np.ndarray, layout: str, F: int) -> BadParameterError:
    want = "(K, " + ("1, " if _has_channel(layout) else "") + ("T, F" if _time_major(layout) else "F, T") + ")"
    return BadParameterError(f"expected an array of shape {want} with F={F} for layout {layout}, got {D.shape}")
