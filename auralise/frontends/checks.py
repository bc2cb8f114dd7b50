"""Checks of the numbers and names a front-end is built from, with one-line messages that name the key.

A front-end comes from a model file that may be hostile: every number is bounded (:data:`BOUNDS`), so that no
file can make auralise allocate any amount of memory (``n_fft`` 10**9 would be a 22 GB window). Booleans, NaN and
infinities are refused wherever a number is expected. The helpers here check one field of a (frozen) front-end and
store its normalised value (``int``, ``float`` or ``bool``, never a numpy scalar).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from auralise.errors import BadModelError

__all__ = [
    "BOUNDS",
    "MAX_PATCH_VALUES",
    "bad",
    "boolean",
    "check_range",
    "is_int",
    "is_number",
    "one_of",
    "positive_int",
    "positive_number",
    "set_field",
]

# Supported ranges of the numbers a model file gives (inclusive). hop_length is also at least n_fft / 64 and at most
# n_fft, and one patch of model input (patch_seconds) holds at most MAX_PATCH_VALUES numbers.
BOUNDS: dict[str, tuple[float, float]] = {
    "sr": (1000, 384000),
    "n_fft": (16, 65536),
    "amin": (1e-20, 1.0),
    "scale": (1e-12, 1e12),
    "log_scale": (1e-6, 1e12),
    "patch_seconds": (0.01, 600.0),
    "n_mels": (1, 1024),
    "n_bins": (1, 1024),
    "bins_per_octave": (1, 120),
    "cqt_fmin": (1.0, 192000.0),
}
MAX_PATCH_VALUES = 1 << 27


def is_int(v: Any) -> bool:
    """True for a Python or numpy integer, not a bool."""
    return isinstance(v, int | np.integer) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    """True for a Python or numpy integer or float, not a bool."""
    return isinstance(v, int | float | np.integer | np.floating) and not isinstance(v, bool)


def bad(key: str, want: str, got: Any) -> BadModelError:
    """The error for front-end key ``key`` holding ``got`` where ``want`` is needed."""
    return BadModelError(f"front-end key {key!r} must be {want}, got {got!r}; fix the model's front-end")


def check_range(key: str, value: float, lo: float | None = None, hi: float | None = None, how: str = "") -> None:
    """Refuse ``value`` outside ``lo..hi`` (default :data:`BOUNDS` of ``key``), naming key, value and range."""
    if lo is None or hi is None:
        lo, hi = BOUNDS[key]
    if not lo <= value <= hi:
        raise BadModelError(
            f"front-end key {key!r} is {value!r}, outside the supported range {lo:g}..{hi:g}{how}; "
            "fix the model's front-end"
        )


def set_field(fe: Any, key: str, value: Any) -> None:
    """Store a normalised value on a frozen front-end (construction only)."""
    object.__setattr__(fe, key, value)


def positive_int(fe: Any, key: str) -> None:
    """``fe.<key>`` must be a positive integer; stored as ``int``."""
    v = getattr(fe, key)
    if not is_int(v) or v <= 0:
        raise bad(key, "a positive integer", v)
    set_field(fe, key, int(v))


def positive_number(fe: Any, key: str, want: str = "a positive number") -> None:
    """``fe.<key>`` must be a finite positive number; stored as ``float``."""
    v = getattr(fe, key)
    if not is_number(v) or not math.isfinite(v) or v <= 0:
        raise bad(key, want, v)
    set_field(fe, key, float(v))


def boolean(fe: Any, key: str) -> None:
    """``fe.<key>`` must be a (numpy) bool; stored as ``bool``."""
    v = getattr(fe, key)
    if not isinstance(v, bool | np.bool_):
        raise bad(key, "true or false", v)
    set_field(fe, key, bool(v))


def one_of(fe: Any, key: str, allowed: tuple, want: str | None = None) -> None:
    """``fe.<key>`` must be one of ``allowed``."""
    v = getattr(fe, key)
    if v not in allowed:
        raise bad(key, want or f"one of {', '.join(map(str, allowed))}", v)
