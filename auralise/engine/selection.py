"""Which features and units a command selects: ``--select map|max|topk:K``, feature and layer lists.

Pure parsing and checking (no torch): the engine, the session and every command use these, so one spelling of
a selection means one thing everywhere.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Sequence

from auralise.errors import BadParameterError

SPEC_HELP = "use 'all', a list and ranges such as '0,5,38' or '0-15', or 'top:K'"


def parse_selection(select: str) -> tuple[str, int]:
    """``"map"`` → ("map", 0); ``"max"`` → ("topk", 1); ``"topk:K"`` → ("topk", K).

    ``max`` and ``topk:K`` seed the feature's strongest unit(s) of the tap map; ties go to the earliest unit in
    time, then the lowest frequency (the lowest position on the tap's other axes), the same in one pass and in
    chunks.
    """
    if select == "map":
        return "map", 0
    if select == "max":
        return "topk", 1
    head, _, count = select.partition(":")
    if head == "topk" and count.isdigit() and int(count) > 0:
        return "topk", int(count)
    raise BadParameterError(f"unknown selection {select!r}; use 'map', 'max' or 'topk:K' with K a positive integer")


def check_features(features: Sequence[int] | int, layer, *, channels: int | None = None) -> tuple[int, ...]:
    """Feature numbers checked against a layer's channel count.

    Parameters
    ----------
    features : int or sequence of int
        Feature (output channel) numbers, 0-based; numpy integers are accepted.
    layer : Layer or int
        A discovered layer (:func:`auralise.engine.layers.discover`), or a layer number when ``channels`` is given
        (weights drawn without a model).
    channels : int, optional
        The layer's channel count; only with a layer number.

    Returns
    -------
    tuple of int, shape (K,)
        The features as plain ints, in the order given.

    Raises
    ------
    BadParameterError
        No features, a feature out of range or not an integer.
    """
    if hasattr(layer, "channels"):  # a discovered Layer
        channels, where = layer.channels, layer.describe()
    elif channels is None:
        raise BadParameterError("pass a discovered Layer, or a layer number with its channel count")
    else:
        where = f"layer {layer}"
    feats = (features,) if isinstance(features, numbers.Integral) else tuple(features)
    if not feats:
        raise BadParameterError(f"no features selected; pass feature numbers 0-{channels - 1}")
    for f in feats:
        if isinstance(f, bool) or not isinstance(f, numbers.Integral) or not 0 <= f < channels:
            shown = repr(f) if isinstance(f, bool) or not isinstance(f, numbers.Integral) else int(f)
            raise BadParameterError(f"feature {shown} is out of range: {where} has features 0-{channels - 1}")
    return tuple(int(f) for f in feats)


def parse_feature_spec(spec: str) -> tuple[str, list[int] | int | None]:
    """``"all"`` → ("all", None); ``"top:K"`` → ("top", K); ``"0,5,10-12"`` → ("list", [0, 5, 10, 11, 12])."""
    text = str(spec).strip().lower()
    if text == "all":
        return "all", None
    head, _, count = text.partition(":")
    if head == "top":
        if count.isdigit() and int(count) > 0:
            return "top", int(count)
        raise BadParameterError(f"bad feature spec {spec!r}: top:K needs a positive integer K")
    return "list", _parse_list(spec, "feature")


def parse_layer_spec(spec: str) -> list[str] | None:
    """``"all"`` → None; otherwise the listed layers (numbers, ranges, or module paths), in order, once each."""
    text = str(spec).strip()
    if text.lower() == "all":
        return None
    parts = [p.strip() for p in text.split(",")]
    if any(not p for p in parts):
        raise BadParameterError(f"bad layer spec {spec!r}: use 'all' or a list such as '1,3' or '2-4'")
    out: list[str] = []
    for p in parts:
        out += [str(n) for n in _parse_list(p, "layer")] if re.fullmatch(r"\d+(-\d+)?", p) else [p]
    return list(dict.fromkeys(out))


def _parse_list(spec: str, what: str) -> list[int]:
    numbers: list[int] = []
    for part in str(spec).split(","):
        m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not m or (m.group(2) is not None and int(m.group(2)) < int(m.group(1))):
            hint = SPEC_HELP if what == "feature" else "use 'all' or a list such as '1,3' or '2-4'"
            raise BadParameterError(f"bad {what} spec {spec!r}: {hint}")
        lo = int(m.group(1))
        numbers += list(range(lo, int(m.group(2) or lo) + 1))
    return list(dict.fromkeys(numbers))
