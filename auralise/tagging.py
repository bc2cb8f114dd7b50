"""What the model thinks of a song: its class or tag probabilities, per patch and averaged over the song.

Patches are made as musicnn's own tagger makes them: the model's patch length (``frontend.patch_seconds``; 187
frames for musicnn), one after another without overlap, the remainder dropped. Probabilities are the sigmoid of
the outputs for multi-label taggers (checkpoint provenance ``output_activation: sigmoid``) and the softmax
otherwise.

Example
-------
>>> from auralise.tagging import tag_song
>>> result = tag_song("models/MTT_musicnn.pt", "demo_audio/dance.ogg")    # doctest: +SKIP
>>> result.top(3)                                                          # doctest: +SKIP
[('techno', 0.61), ('electronic', 0.55), ('beat', 0.47)]
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TagResult:
    """``probabilities`` (P, n_tags) per patch starting at ``starts`` (P,) seconds; ``mean`` (n_tags,)."""

    labels: list[str]
    starts: np.ndarray
    probabilities: np.ndarray
    patch_seconds: float
    activation: str

    @property
    def mean(self) -> np.ndarray:
        return self.probabilities.mean(axis=0)

    def top(self, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` tags of highest mean probability (all by default), highest first."""
        order = np.argsort(-self.mean, kind="stable")[: k or len(self.labels)]
        return [(self.labels[i], float(self.mean[i])) for i in order]

    def to_dict(self, k: int | None = None) -> dict:
        return {
            "patch_seconds": self.patch_seconds,
            "activation": self.activation,
            "mean": dict(self.top(k)),
            "patches": [
                {"start": round(float(s), 3), "probabilities": dict(zip(self.labels, map(float, p)))}
                for s, p in zip(self.starts, self.probabilities)
            ],
        }


def tag_song(
    model,
    audio: str | os.PathLike,
    *,
    device: str | None = "auto",
    trust: bool = False,
    frontend: dict | str | None = None,
    batch: int = 16,
) -> TagResult:
    """Run the whole model on non-overlapping patches of the song; see the module docstring."""
    import torch

    from .audio import load_audio
    from .errors import BadAudioError, BadModelError
    from .layers import LAYOUT_AXES
    from .modelfile import LoadedModel, load_model
    from .render import resolve_device

    dev = resolve_device(device)
    loaded = model if isinstance(model, LoadedModel) else load_model(model, frontend=frontend, trust=trust)
    loaded.to(dev)
    fe = loaded.frontend
    seconds = fe.patch_seconds or 4.0
    frames = fe.frames_for(seconds)
    y, _ = load_audio(audio, sr=fe.sr, allow_silent=True)  # silence is a fair question for a tagger
    S = fe.analyse(y)[1]
    axis = LAYOUT_AXES[fe.layout][0]
    count = S.shape[axis] // frames
    if count == 0:
        raise BadAudioError(
            f"{audio} is {len(y) / fe.sr:.2f} s long; the model tags patches of {seconds:g} s: give a longer file"
        )
    patches = S.narrow(axis, 0, count * frames).unflatten(axis, (count, frames)).movedim(axis, 0).squeeze(1)
    activation = str((loaded.meta.get("provenance") or {}).get("output_activation", "softmax"))
    outputs = []
    with torch.inference_mode():
        for i in range(0, count, batch):
            logits = loaded.module.eval()(patches[i : i + batch].to(dev)).float()
            if logits.ndim != 2:
                raise BadModelError(
                    f"the model's output has shape {tuple(logits.shape[1:])} per patch, not one score per tag; "
                    "tag needs a model that ends in a classifier"
                )
            outputs.append(torch.sigmoid(logits) if activation == "sigmoid" else torch.softmax(logits, dim=1))
    probabilities = torch.cat(outputs).cpu().numpy()
    if loaded.labels is not None and len(loaded.labels) != probabilities.shape[1]:
        raise BadModelError(
            f"the model file has {len(loaded.labels)} labels but the model outputs {probabilities.shape[1]} scores; "
            "re-save the model with one label per output"
        )
    labels = list(loaded.labels or [f"class {i}" for i in range(probabilities.shape[1])])
    starts = np.arange(count) * frames * fe.hop_length / fe.sr
    return TagResult(labels, starts, probabilities, seconds, activation)
