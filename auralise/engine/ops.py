"""The recorded ops the backward rules know by family, and readers of their parameters (a convolution's, a pool's,
an eval batch norm's gain), shared by :mod:`auralise.engine.rules` and :mod:`auralise.engine.fusion`."""

from __future__ import annotations

import torch

from auralise.engine.trace import OpRecord

RELU_FAMILY = {
    "relu",
    "relu6",
    "leaky_relu",
    "elu",
    "selu",
    "celu",
    "gelu",
    "silu",
    "mish",
    "softplus",
    "hardswish",
}
SATURATING = {"tanh", "sigmoid", "hardtanh", "softsign", "hardsigmoid"}
NORMS = {"batch_norm", "instance_norm"}
DROPOUTS = {"dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "feature_alpha_dropout"}
COPIES = {"contiguous", "clone"}
POOLS = {
    "max_pool1d",
    "max_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "lp_pool1d",
    "lp_pool2d",
    "adaptive_max_pool1d",
    "adaptive_max_pool2d",
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
}
WINDOW_POOLS = {"max_pool1d", "max_pool2d", "lp_pool1d", "lp_pool2d"} | {p for p in POOLS if p.startswith("adaptive_")}
CONV_ARGS = ("input", "weight", "bias", "stride", "padding", "dilation", "groups")
CONV_DEFAULTS = {"bias": None, "stride": 1, "padding": 0, "dilation": 1, "groups": 1}


def conv_params(rec: OpRecord) -> dict:
    """A recorded convolution's arguments by name (``input``, ``weight``, ``bias``, ``stride``, ``padding``,
    ``dilation``, ``groups``), defaults filled in."""
    params = dict(CONV_DEFAULTS)
    params.update(zip(CONV_ARGS, rec.args))
    params.update(rec.kwargs)
    return params


def pool_params(rec: OpRecord) -> dict:
    names = ("input", "kernel_size", "stride", "padding", "dilation")
    params = dict(zip(names, rec.args))
    params.update({n: v for n, v in rec.kwargs.items() if n in names})
    return params


def numeric_padding(padding, weight: torch.Tensor, dilation: tuple[int, ...]) -> tuple[int, ...] | None:
    """Symmetric padding per spatial dim; None for a 'same' padding that torch makes asymmetric."""
    dims = weight.dim() - 2
    if padding == "valid":
        return (0,) * dims
    if padding == "same":
        total = [d * (k - 1) for k, d in zip(weight.shape[2:], dilation)]
        return None if any(t % 2 for t in total) else tuple(t // 2 for t in total)
    return as_tuple(padding, dims)


def eval_batch_norm(rec: OpRecord) -> bool:
    return rec.name == "batch_norm" and not kwarg(rec, "training", 5, False)


def bn_scale(rec: OpRecord, g: torch.Tensor) -> torch.Tensor:
    """Per-channel gain of an eval-mode batch norm, shaped to broadcast against ``g``."""
    names = ("input", "running_mean", "running_var", "weight", "bias", "training", "momentum", "eps")
    if rec.is_aten:  # aten::batch_norm orders its tensors differently from F.batch_norm
        names = ("input", "weight", "bias", "running_mean", "running_var", "training", "momentum", "eps")
    params = {"weight": None, "eps": 1e-5}
    params.update(zip(names, rec.args))
    params.update(rec.kwargs)
    scale = torch.rsqrt(params["running_var"] + params["eps"])
    if params["weight"] is not None:
        scale = scale * params["weight"]
    return scale.view(1, 1, -1, *([1] * (g.dim() - 3)))


def kwarg(rec: OpRecord, name: str, position: int, default):
    if name in rec.kwargs:
        return rec.kwargs[name]
    return rec.args[position] if len(rec.args) > position else default


def as_tuple(value, dims: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
