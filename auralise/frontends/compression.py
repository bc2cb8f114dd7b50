"""Compression: the value scale of the model input, as one table of (forward, inverse) formulas.

Every front-end multiplies its magnitudes ``v`` (``|X|``, mel energies, ``|CQT|``) by ``scale`` and compresses
``m = scale * v``; :data:`TABLE` holds each compression's formula and its inverse once, written against a small set
of array operations (:class:`Ops`) so that numpy arrays and torch tensors go through the same formula:

=========  ===================================  ==========================================
name       forward                              inverse
=========  ===================================  ==========================================
linear     ``m``                                ``v``
power      ``m**2``                             ``sqrt(max(v, 0))``
db         ``20 log10(max(m, amin))``           ``10**(v / 20)`` (exact above ``amin``)
log1p      ``log(1 + m)``                       ``expm1(v)``
log10p     ``log10(1 + log_scale m)``           ``(10**v - 1) / log_scale``
=========  ===================================  ==========================================

numpy arrays keep their floating dtype (integers become float32), constants are cast to it; torch tensors take
Python floats. torch is imported only when a tensor is given.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from auralise.choices import COMPRESSIONS
from auralise.frontends.arrays import is_torch

__all__ = ["COMPRESSIONS", "NAMES", "TABLE", "Ops", "compress", "decompress"]

_LN10 = math.log(10.0)


@dataclass(frozen=True)
class Ops:
    """The operations a compression formula may use, for one array library (and, for numpy, one dtype)."""

    c: Callable[[float], Any]  # a constant, in the array's type
    log10: Callable
    log1p: Callable
    expm1: Callable
    sqrt: Callable
    floor: Callable  # floor(x, lo): elementwise max(x, lo)
    pow10: Callable  # pow10(x): 10**x


def _numpy_ops(x: np.ndarray) -> Ops:
    t = x.dtype.type
    return Ops(t, np.log10, np.log1p, np.expm1, np.sqrt, np.maximum, lambda v: np.power(t(10.0), v))


def _torch_ops() -> Ops:
    import torch

    return Ops(
        float,
        torch.log10,
        torch.log1p,
        torch.expm1,
        torch.sqrt,
        lambda v, lo: torch.clamp(v, min=lo),
        lambda v: torch.pow(10.0, v),
    )


# name -> (forward, inverse); each takes (x, ops, p) with p anything that has ``amin`` and ``log_scale``.
TABLE: dict[str, tuple[Callable, Callable]] = {
    "linear": (lambda m, o, p: m, lambda v, o, p: v),
    "power": (lambda m, o, p: m * m, lambda v, o, p: o.sqrt(o.floor(v, o.c(0.0)))),
    "db": (lambda m, o, p: 20.0 * o.log10(o.floor(m, o.c(p.amin))), lambda v, o, p: o.pow10(v / o.c(20.0))),
    "log1p": (lambda m, o, p: o.log1p(m), lambda v, o, p: o.expm1(v)),
    "log10p": (
        lambda m, o, p: o.log1p(m * o.c(p.log_scale)) / o.c(_LN10),
        lambda v, o, p: o.expm1(v * o.c(_LN10)) / o.c(p.log_scale),
    ),
}
# How :meth:`Frontend.describe` names each compression ("db" and "log10p" add their parameter).
NAMES = {
    "linear": "linear magnitude",
    "power": "power",
    "db": "dB magnitude",
    "log1p": "log(1+|X|)",
    "log10p": "log10(1+C|X|)",
}


def _float_array(x: Any) -> np.ndarray:
    a = np.asarray(x)
    return a if np.issubdtype(a.dtype, np.floating) else a.astype(np.float32)


def compress(mag: Any, p: Any) -> Any:
    """``TABLE[p.compression]`` forward of ``p.scale * mag``.

    Parameters
    ----------
    mag : np.ndarray or torch.Tensor, any shape
        Non-negative magnitudes.
    p : Frontend
        Gives ``compression``, ``scale``, ``amin`` and ``log_scale``.

    Returns
    -------
    Same type and shape as ``mag`` (a numpy result keeps ``mag``'s floating dtype).
    """
    forward = TABLE[p.compression][0]
    if is_torch(mag):
        return forward(mag * p.scale, _torch_ops(), p)
    m = _float_array(mag)
    ops = _numpy_ops(m)
    return forward(m * ops.c(p.scale), ops, p).astype(m.dtype, copy=False)


def decompress(values: Any, p: Any) -> Any:
    """``TABLE[p.compression]`` inverse of ``values``, divided by ``p.scale``.

    Parameters
    ----------
    values : np.ndarray or torch.Tensor, any shape
    p : Frontend
        Gives ``compression``, ``scale``, ``amin`` and ``log_scale``.

    Returns
    -------
    Same type and shape as ``values``.
    """
    inverse = TABLE[p.compression][1]
    inv = 1.0 / p.scale
    if is_torch(values):
        return inverse(values, _torch_ops(), p) * inv
    v = _float_array(values)
    ops = _numpy_ops(v)
    return inverse(v, ops, p) * ops.c(inv)
