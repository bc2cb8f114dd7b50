"""Record a model's forward pass as a list of coarse torch operations that depend on the input.

The recorder is a :class:`torch.overrides.TorchFunctionMode`: it sees every call of a torch function or tensor
method at the level the model's code makes it (``F.conv2d``, ``F.relu``, ``F.max_pool2d``, ``x.view``...), runs it,
and keeps a record when one of its tensor arguments descends from the model input. In-place operations on such
tensors are run out of place (the model's code uses their return value, as ``nn.ReLU(inplace=True)`` does), so every
recorded tensor keeps the value it had when it was made. Max-pooling is run with ``return_indices=True`` so the
forward pass's own switches are kept for the backward pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode
from torch.utils._pytree import tree_flatten, tree_unflatten

MAX_POOLS = {
    F.max_pool1d: 1,
    F.max_pool2d: 2,
    F.adaptive_max_pool1d: 1,
    F.adaptive_max_pool2d: 2,
}
_INPLACE_DUNDER = {"__iadd__": "add", "__isub__": "sub", "__imul__": "mul", "__itruediv__": "div"}


@dataclass
class OpRecord:
    """One recorded operation.

    ``tracked`` are the positions in the flattened ``(args, kwargs)`` of tensors that descend from the input;
    ``outputs`` the flattened output tensors (floating point ones descend from the input); ``indices`` the
    max-pooling switches when the op is a max-pool.
    """

    index: int
    func: Callable
    args: tuple
    kwargs: dict
    tracked: list[int]
    outputs: list[torch.Tensor]
    indices: torch.Tensor | None = None

    @property
    def name(self) -> str:
        return op_name(self.func)

    @property
    def is_aten(self) -> bool:
        """True for ``torch.ops.aten`` calls (an exported program), whose argument order can differ from ``F``'s."""
        return isinstance(self.func, torch._ops.OpOverload)

    def flat_inputs(self) -> list:
        return tree_flatten((self.args, self.kwargs))[0]

    def tracked_inputs(self) -> list[torch.Tensor]:
        leaves = self.flat_inputs()
        return [leaves[p] for p in self.tracked]

    def call_with(self, *tensors: torch.Tensor) -> list[torch.Tensor]:
        """Re-run the op with the tracked inputs replaced; returns the flattened tensor outputs."""
        leaves, spec = tree_flatten((self.args, self.kwargs))
        for p, t in zip(self.tracked, tensors):
            leaves[p] = t
        args, kwargs = tree_unflatten(leaves, spec)
        out = self.func(*args, **kwargs)
        return [o for o in tree_flatten(out)[0] if isinstance(o, torch.Tensor)]


def op_name(func: Callable) -> str:
    """``F.relu`` → "relu", ``Tensor.relu_`` → "relu_", ``torch.ops.aten.conv2d.default`` → "conv2d"."""
    name = getattr(func, "__name__", str(func))
    return name.split(".")[0] if isinstance(func, torch._ops.OpOverload) else name


class StopForward(Exception):
    """Raised inside the model's forward once the op that was asked for has been recorded."""


@dataclass
class Trace:
    """The recorded operations of one forward pass from ``source`` (the model input)."""

    source: torch.Tensor
    records: list[OpRecord] = field(default_factory=list)
    producer: dict[int, tuple[int, int]] = field(default_factory=dict)  # id(tensor) -> (record, output slot)
    error: str | None = None
    failed: tuple[str, tuple[int, ...]] | None = None  # (op name, ids of its tracked inputs) of an op that raised
    cache: dict = field(default_factory=dict)  # what backward passes derive from the records once (switch masks)

    def consumers(self) -> dict[int, list[int]]:
        """Map id(tensor) -> indices of the records that take it as an input."""
        uses: dict[int, list[int]] = {}
        for rec in self.records:
            for t in rec.tracked_inputs():
                uses.setdefault(id(t), []).append(rec.index)
        return uses


def _out_of_place(func: Callable, args: tuple, kwargs: dict) -> tuple[Callable, tuple, dict]:
    """Return an equivalent out-of-place call for an in-place one (``relu_``, ``add_``, ``inplace=True``)."""
    name = op_name(func)
    if isinstance(func, torch._ops.OpOverload):
        plain = getattr(torch.ops.aten, name[:-1]) if name.endswith("_") and not name.endswith("__") else None
        return (plain.default if plain is not None else func), args, kwargs
    if name in _INPLACE_DUNDER:
        return getattr(torch.Tensor, _INPLACE_DUNDER[name]), args, kwargs
    if name.endswith("_") and not name.endswith("__"):
        owner = torch.Tensor if hasattr(torch.Tensor, name) and func is getattr(torch.Tensor, name) else torch
        plain = getattr(owner, name[:-1], None) or getattr(F, name[:-1], None)
        if plain is not None:
            return plain, args, kwargs
    if kwargs.get("inplace") or (len(args) > 1 and _inplace_positional(func, args, kwargs)):
        bound = inspect.signature(func).bind(*args, **kwargs)
        bound.apply_defaults()
        bound.arguments["inplace"] = False
        return func, bound.args, bound.kwargs
    return func, args, kwargs


def _inplace_positional(func: Callable, args: tuple, kwargs: dict) -> bool:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False
    if "inplace" not in params:
        return False
    return bool(inspect.signature(func).bind(*args, **kwargs).arguments.get("inplace", False))


class _Recorder(TorchFunctionMode):
    def __init__(self, trace: Trace, stop_after: int | None):
        super().__init__()
        self.trace = trace
        self.stop_after = stop_after

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        producer = self.trace.producer
        leaves = tree_flatten((args, kwargs))[0]
        tracked = [
            i
            for i, x in enumerate(leaves)
            if isinstance(x, torch.Tensor) and (id(x) in producer or x is self.trace.source)
        ]
        if not tracked:
            return func(*args, **kwargs)
        func, args, kwargs = _out_of_place(func, args, kwargs)
        try:
            result, indices = self._call(func, args, kwargs)
        except Exception:
            self.trace.failed = (op_name(func), tuple(id(leaves[i]) for i in tracked))
            raise
        result = _fresh_outputs(result, [leaves[i] for i in tracked])
        outs = [o for o in tree_flatten(result)[0] if isinstance(o, torch.Tensor)]
        floating = [o for o in outs if o.is_floating_point()]
        if not floating:
            return result
        rec = OpRecord(len(self.trace.records), func, args, kwargs, tracked, outs, indices)
        self.trace.records.append(rec)
        for slot, o in enumerate(outs):
            if o.is_floating_point():
                producer[id(o)] = (rec.index, slot)
        if self.stop_after is not None and rec.index >= self.stop_after:
            raise StopForward
        return result

    @staticmethod
    def _call(func: Callable, args: tuple, kwargs: dict) -> tuple[Any, torch.Tensor | None]:
        """Run one op; a max-pool also returns its switches."""
        if func in MAX_POOLS:
            wants_indices = _wants_indices(func, args, kwargs)
            out, indices = func(*args, **{**kwargs, "return_indices": True})
            return ((out, indices) if wants_indices else out), indices
        if isinstance(func, torch._ops.OpOverload) and op_name(func) in ("max_pool1d", "max_pool2d"):
            return getattr(torch.ops.aten, f"{op_name(func)}_with_indices").default(*args, **kwargs)
        return func(*args, **kwargs), None


def _fresh_outputs(result: Any, inputs: list[torch.Tensor]) -> Any:
    """Give outputs that *are* an input (eval-mode dropout, ``contiguous()``) a new identity (an alias view)."""
    leaves, spec = tree_flatten(result)
    if not any(any(o is x for x in inputs) for o in leaves):
        return result
    return tree_unflatten([o.view_as(o) if any(o is x for x in inputs) else o for o in leaves], spec)


def _wants_indices(func: Callable, args: tuple, kwargs: dict) -> bool:
    if "return_indices" in kwargs:
        return bool(kwargs.pop("return_indices"))
    names = list(inspect.signature(func).parameters) if not isinstance(func, type) else []
    if "return_indices" in names and len(args) > names.index("return_indices"):
        return bool(args[names.index("return_indices")])
    return False


def record_forward(
    module: torch.nn.Module, x: torch.Tensor, *, stop_after: int | None = None, tolerate_errors: bool = False
) -> Trace:
    """Run ``module(x)`` without autograd and record every op that depends on ``x``.

    Parameters
    ----------
    module : the model, in eval mode.
    x : model input, e.g. (1, 1, F, T).
    stop_after : stop the forward pass (by exception) right after this record index has been made.
    tolerate_errors : keep what was recorded when the forward pass fails part way (a classifier head that wants
        another input length); the error text is kept in ``Trace.error``.
    """
    trace = Trace(source=x)
    try:
        with torch.no_grad(), _Recorder(trace, stop_after):
            module(x)
    except StopForward:
        pass
    except Exception as exc:  # noqa: BLE001 - reported to the caller, who decides
        if not tolerate_errors:
            raise
        trace.error = f"{type(exc).__name__}: {exc}"
    return trace
