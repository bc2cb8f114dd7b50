"""Spectrogram thumbnails: values -> dB -> colour map -> PNG, with no figure machinery (milliseconds each).

Example
-------
>>> import numpy as np
>>> from auralise.render.thumbnail import write_thumbnail
>>> write_thumbnail(np.random.rand(257, 1292), "thumb.png")   # doctest: +SKIP
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import numpy as np

MAX_WIDTH = 480  # pixels along time
MAX_HEIGHT = 160  # pixels along frequency


@cache
def _palette(cmap: str) -> np.ndarray:
    """(256, 3) uint8 colours of a matplotlib colour map."""
    from matplotlib import colormaps

    return (colormaps[cmap](np.linspace(0.0, 1.0, 256))[:, :3] * 255.0 + 0.5).astype(np.uint8)


def _block_max(M: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Shrink (F, T) to at most (rows, cols) by taking the max over equal blocks (peaks stay visible); the last
    block of an axis that does not divide evenly is the shorter remainder."""
    fy, fx = -(-M.shape[0] // rows), -(-M.shape[1] // cols)
    return _axis_block_max(_axis_block_max(M, fx, axis=1), fy, axis=0)


def _axis_block_max(M: np.ndarray, size: int, *, axis: int) -> np.ndarray:
    """Max over consecutive blocks of ``size`` along ``axis`` of a 2-d array (the last block may be shorter): the
    whole blocks as ``size`` element-wise maxima of strided views, several times faster than
    ``np.maximum.reduceat``."""
    if size <= 1:
        return M
    A = M if axis == 0 else M.T  # reduce along the first axis of A
    n = A.shape[0]
    whole = n - n % size
    out = A[0:whole:size].copy()
    for k in range(1, size):
        np.maximum(out, A[k:whole:size], out=out)
    if whole < n:
        out = np.concatenate([out, A[whole:].max(axis=0, keepdims=True)])
    return out if axis == 0 else out.T


def thumbnail_rgb(M: np.ndarray, *, range_db: float = 80.0, cmap: str = "magma") -> np.ndarray:
    """RGB image (H, W, 3) uint8 of a non-negative (F, T) magnitude in dB re its max, low frequencies at the
    bottom; values more than ``range_db`` below the max (and an all-zero input) get the colour map's floor."""
    return reduced_rgb(_reduced(M), range_db=range_db, cmap=cmap)


def _reduced(M: np.ndarray) -> np.ndarray:
    """(F, T) -> at most (MAX_HEIGHT, MAX_WIDTH) block maxima, rectified (= blocks of max(M, 0))."""
    return np.maximum(_block_max(np.asarray(M, dtype=np.float32), MAX_HEIGHT, MAX_WIDTH), 0.0)


def reduced_rgb(A: np.ndarray, *, range_db: float = 80.0, cmap: str = "magma") -> np.ndarray:
    """:func:`thumbnail_rgb` of an array already reduced to thumbnail size (rows, columns), non-negative."""
    return _palette(cmap)[_levels(A, range_db)]


def _levels(A: np.ndarray, range_db: float) -> np.ndarray:
    """Colour-map indices (rows, columns) uint8 of a reduced, non-negative array, low frequencies at the bottom."""
    ref = float(A.max()) if A.size else 0.0
    if ref > 0:
        db = 20.0 * np.log10(np.maximum(A, ref * 10.0 ** (-range_db / 20.0)) / ref)
        level = np.round((db + range_db) * (255.0 / range_db)).astype(np.uint8)
    else:
        level = np.zeros(A.shape, dtype=np.uint8)
    return np.ascontiguousarray(level[::-1])


def write_thumbnail(
    M: np.ndarray, path: str | os.PathLike, *, range_db: float = 80.0, cmap: str = "magma", reduced: bool = False
) -> Path:
    """Write :func:`thumbnail_rgb` of ``M`` (F, T) as a PNG at ``path`` (not atomic: pass a temporary path).

    ``reduced``: ``M`` is already block-reduced to thumbnail size (:class:`auralise.render.streaming.BlockMax`).
    The PNG holds the colour map's indices and its 256 colours (a palette image): the same pixels as the RGB image,
    in a third of the data (encoding 1.5 ms instead of 4.6 ms, files 2.4x smaller).
    """
    from PIL import Image

    level = _levels(M if reduced else _reduced(M), range_db)
    image = Image.frombytes("P", (level.shape[1], level.shape[0]), level.tobytes())
    image.putpalette(_palette(cmap).tobytes())
    image.save(path, format="PNG", compress_level=1)
    return Path(path)
