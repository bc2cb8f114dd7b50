"""The inverse STFT: librosa's ``istft``, bit for bit, in fewer passes over memory.

``librosa.istft`` inverts the frames with ``scipy.fft.irfft`` along the frequency axis of (..., F, T) blocks,
multiplies them by the (float64) window into a temporary, overlap-adds each frame's column into the output (a
strided read), and divides by the window's sum of squares. :func:`istft` transposes each block of frames first, so
that the inverse FFTs and the overlap-add run along contiguous rows, and multiplies by the window inside the
overlap-add: the same operations on the same numbers in the same order (each output sample is
``float32(float64(y) + window * float64(frame))``, frames in time order), so the result is identical, about 1.3x
faster (30 s at 11 025 Hz: 4.8 ms instead of 6.2 ms a feature). ``tests/test_frontends.py`` checks the identity.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["istft"]

FRAMES_PER_BLOCK = 1024  # frames inverted at once: a few MB per signal, whatever the song's length
_OVERLAP_ADD = None


def istft(X: np.ndarray, *, hop_length: int, n_fft: int, win_length: int | None, window, center: bool,
          length: int) -> np.ndarray:  # fmt: skip
    """``librosa.istft(X, ..., length=length, dtype=np.float32)`` for a complex64 ``X`` (..., F, T).

    Returns
    -------
    np.ndarray, shape (..., length), float32
    """
    import librosa
    import scipy.fft

    lead, (F, T) = X.shape[:-2], X.shape[-2:]
    X = X.reshape(-1, F, T)
    start = n_fft // 2 if center else 0
    n_frames = min(T, int(np.ceil((length + 2 * start) / hop_length)))
    win_length = n_fft if win_length is None else win_length
    w = librosa.util.pad_center(librosa.filters.get_window(window, win_length, fftbins=True), size=n_fft)
    w = np.ascontiguousarray(w, dtype=np.float64)
    y = np.zeros((X.shape[0], length), dtype=np.float32)
    add = _overlap_add()
    for first in range(0, n_frames, FRAMES_PER_BLOCK):
        block = np.ascontiguousarray(X[:, :, first : min(n_frames, first + FRAMES_PER_BLOCK)].transpose(0, 2, 1))
        add(scipy.fft.irfft(block, n=n_fft, axis=-1), w, hop_length, first * hop_length - start, y)
    sums = _window_sums if isinstance(window, str | tuple) else _window_sums.__wrapped__  # an array: not hashable
    nonzero, weight = sums(window, n_frames, win_length, n_fft, hop_length, start, length)
    y[:, nonzero] /= weight
    return y.reshape(*lead, length)


@lru_cache(maxsize=32)
def _window_sums(window, n_frames: int, win_length: int, n_fft: int, hop: int, start: int,
                 length: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Where librosa divides by the window's sum of squares, and by what (as ``librosa.istft`` computes them)."""
    import librosa

    wss = librosa.filters.window_sumsquare(window=window, n_frames=n_frames, win_length=win_length, n_fft=n_fft,
                                           hop_length=hop, dtype=np.float32)  # fmt: skip
    wss = librosa.util.fix_length(wss[start:], size=length)
    nonzero = wss > librosa.util.tiny(wss)
    return nonzero, wss[nonzero]


def _overlap_add():
    global _OVERLAP_ADD
    if _OVERLAP_ADD is None:
        import numba

        _OVERLAP_ADD = numba.njit(nogil=True, cache=True)(_add_frames)
    return _OVERLAP_ADD


def _add_frames(frames, window, hop, offset, y):  # pragma: no cover - compiled by numba
    """Add frame t of ``frames`` (K, T, n_fft) times ``window`` at ``y[:, offset + t * hop:]``, frames in order."""
    K, T, n_fft = frames.shape
    length = y.shape[1]
    for k in range(K):
        for t in range(T):
            base = offset + t * hop
            for n in range(max(0, -base), min(n_fft, length - base)):
                y[k, base + n] = np.float32(np.float64(y[k, base + n]) + window[n] * np.float64(frames[k, t, n]))
