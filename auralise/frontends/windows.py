"""Analysis windows by name, as ``scipy.signal.get_window(name, n, fftbins=True)`` gives them, bit for bit.

The generalized cosine windows (``hann``, ``hamming``, ``blackman`` and their aliases) are computed here with
scipy's own operations, so that analysing a song does not import ``scipy.signal`` (about 0.9 s, a sixth of a
30-s export's start-up through the Choi demo model); any other window name is handed to scipy.
``tests/test_frontends.py`` checks the identity.
"""

from __future__ import annotations

import numpy as np

__all__ = ["analysis_window", "check_window"]

# scipy's coefficients ``a_k`` of ``sum_k a_k cos(k * x)``, x from -pi to pi, for the windows computed here
_COSINE = {
    "hann": (0.5, 0.5),
    "hamming": (0.54, 1.0 - 0.54),
    "blackman": (0.42, 0.50, 0.08),
}
_ALIASES = {"han": "hann", "hamm": "hamming", "ham": "hamming", "black": "blackman",
            "blk": "blackman"}  # fmt: skip


def analysis_window(name, length: int) -> np.ndarray:
    """The periodic window ``name`` of ``length`` samples, float64 (``scipy.signal.get_window(name, length,
    fftbins=True)``); as ``librosa.filters.get_window``, a callable is called with ``length`` and an array of that
    length is taken as it is."""
    if callable(name):
        return name(length)
    if isinstance(name, np.ndarray | list):
        if len(name) != length:
            raise ValueError(f"a window array must have {length} values, got {len(name)}")
        return np.asarray(name)
    coefficients = _COSINE.get(_ALIASES.get(name, name)) if isinstance(name, str) else None
    if coefficients is None:
        import scipy.signal

        return np.asarray(scipy.signal.get_window(name, length, fftbins=True), dtype=np.float64)
    if length <= 1:
        return np.ones(length, dtype=np.float64)
    a = np.asarray(coefficients, dtype=np.float64)
    x = np.linspace(-np.pi, np.pi, length + 1, dtype=np.float64)  # one more, then truncated: DFT-even
    w = np.zeros(length + 1, dtype=np.float64)
    for k in range(a.shape[0]):
        w += a[k] * np.cos(k * x)
    return w[:-1]


def check_window(name: str, length: int) -> None:
    """Raise ValueError (or TypeError) when ``name`` is not a window scipy knows."""
    if isinstance(name, str) and _ALIASES.get(name, name) in _COSINE:
        return
    import scipy.signal

    scipy.signal.get_window(name, length, fftbins=True)
