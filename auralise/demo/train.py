"""Training recipes for the shipped demo models: genre-style classifiers on synthetic music
(:mod:`auralise.demo.synth`).

Every clip is generated from its seed, so the data needs no download and the split is exact: train, validation
and test clips come from disjoint seed ranges. A recipe is seeded end to end (data, initialisation, batch order);
the same recipe on the same machine and torch version gives the same checkpoint.

Example
-------
>>> from auralise import train
>>> model = train.train("choi2016-synth", out="models/choi2016-synth.pt")   # doctest: +SKIP
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from auralise.demo import synth
from auralise.errors import BadParameterError
from auralise.frontends.base import Frontend
from auralise.nets import zoo

SPLIT_SEED_BASE = {"train": 0, "val": 1_000_000, "test": 2_000_000}
STFT_11K = {
    "kind": "stft",
    "sr": 11025,
    "n_fft": 512,
    "hop_length": 256,
    "compression": "linear",
    "layout": "BCFT",
    "patch_seconds": 4.0,
}


@dataclass(frozen=True)
class Recipe:
    """Everything that determines a trained model."""

    name: str
    architecture: str
    config: dict
    frontend: dict = field(default_factory=lambda: dict(STFT_11K))
    styles: tuple[str, ...] = synth.STYLES
    n_train: int = 900
    n_val: int = 90
    n_test: int = 150
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    gain_range: tuple[float, float] = (0.25, 1.0)  # random level per training clip (linear magnitude scales)


RECIPES: dict[str, Recipe] = {
    "choi2016-synth": Recipe(
        "choi2016-synth",
        "choi2016",
        {"n_classes": 3, "n_bins": 257, "n_frames": 173, "channels": 64, "hidden": 128, "dropout": 0.25},
    ),
    "pons-synth": Recipe("pons-synth", "pons-synth", {"n_classes": 3, "n_bins": 257}),
}


def get_recipe(name: str, **overrides) -> Recipe:
    """A registered recipe, optionally with fields replaced (e.g. ``n_train=32`` for a quick test)."""
    if name not in RECIPES:
        raise BadParameterError(f"unknown recipe {name!r}; choose one of: {', '.join(RECIPES)}")
    return replace(RECIPES[name], **overrides)


def make_split(recipe: Recipe, split: str, n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Model inputs (n, *input_shape) and labels (n,) for ``split``; clip i has style i mod len(styles)."""
    fe = Frontend.from_dict(recipe.frontend)
    count = {"train": recipe.n_train, "val": recipe.n_val, "test": recipe.n_test}[split] if n is None else n
    seconds = fe.patch_seconds or 4.0
    inputs, labels = [], []
    for i in range(count):
        label = i % len(recipe.styles)
        clip = synth.generate(recipe.styles[label], seconds=seconds, sr=fe.sr, seed=SPLIT_SEED_BASE[split] + i)
        inputs.append(fe.analyse(clip.mix)[1][0])
        labels.append(label)
    return torch.stack(inputs), torch.tensor(labels)


def evaluate(module: torch.nn.Module, inputs: torch.Tensor, labels: torch.Tensor, n_classes: int) -> dict:
    """Accuracy and confusion matrix (rows: true class, columns: predicted) of ``module`` on a split."""
    module.eval()
    with torch.no_grad():
        pred = torch.cat([module(inputs[i : i + 32]).argmax(1) for i in range(0, len(inputs), 32)])
    confusion = np.zeros((n_classes, n_classes), dtype=int)
    for t, p in zip(labels.tolist(), pred.tolist()):
        confusion[t, p] += 1
    return {"accuracy": float((pred == labels).float().mean()), "confusion": confusion.tolist()}


def train(
    recipe: Recipe | str,
    *,
    out: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[torch.nn.Module, dict]:
    """Train ``recipe``; keep the epoch with the best validation accuracy; test it; save it if ``out`` is given.

    Returns the module and its provenance (recipe, seed, data description, per-epoch loss and validation
    accuracy, test accuracy and confusion matrix, training time and machine).
    """
    rec = get_recipe(recipe) if isinstance(recipe, str) else recipe
    say = progress or (lambda _msg: None)
    torch.manual_seed(rec.seed)
    generator = torch.Generator().manual_seed(rec.seed)
    start = time.perf_counter()
    say(f"generating {rec.n_train}/{rec.n_val}/{rec.n_test} train/val/test clips")
    x_train, y_train = make_split(rec, "train")
    x_val, y_val = make_split(rec, "val")
    module = zoo.build(rec.architecture, rec.config)
    optimiser = torch.optim.Adam(module.parameters(), lr=rec.lr)
    history, best, best_state = [], -1.0, None
    for epoch in range(1, rec.epochs + 1):
        module.train()
        order = torch.randperm(len(x_train), generator=generator)
        losses = []
        for i in range(0, len(order), rec.batch_size):
            idx = order[i : i + rec.batch_size]
            low, high = rec.gain_range
            gain = low + (high - low) * torch.rand((len(idx), *([1] * (x_train.dim() - 1))), generator=generator)
            loss = torch.nn.functional.cross_entropy(module(x_train[idx] * gain), y_train[idx])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            losses.append(loss.item())
        val = evaluate(module, x_val, y_val, len(rec.styles))["accuracy"]
        history.append(
            {"epoch": epoch, "loss": float(np.mean(losses)), "first_batch_loss": losses[0], "val_accuracy": val}
        )
        say(f"epoch {epoch}/{rec.epochs}: loss {np.mean(losses):.4f}, validation accuracy {val:.3f}")
        if val > best:
            best, best_state = val, {k: v.clone() for k, v in module.state_dict().items()}
    module.load_state_dict(best_state)
    test = evaluate(module, *make_split(rec, "test"), len(rec.styles))
    say(f"test accuracy {test['accuracy']:.3f}")
    provenance = {
        "recipe": {**asdict(rec), "styles": list(rec.styles), "gain_range": list(rec.gain_range)},
        "seed": rec.seed,
        "data": (
            f"auralise.demo.synth excerpts of {(rec.frontend.get('patch_seconds') or 4.0):g} s, styles "
            f"{', '.join(rec.styles)} (clip i has style i mod {len(rec.styles)}); seeds: train "
            f"{SPLIT_SEED_BASE['train']}+i, validation {SPLIT_SEED_BASE['val']}+i, test {SPLIT_SEED_BASE['test']}+i"
        ),
        "history": history,
        "best_val_accuracy": best,
        "test_accuracy": test["accuracy"],
        "test_confusion": test["confusion"],
        "train_seconds": round(time.perf_counter() - start, 1),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
    }
    if out is not None:
        from auralise.io.modelfile import save_model

        save_model(
            module, out, frontend=rec.frontend, labels=list(rec.styles), config=rec.config, provenance=provenance
        )
    return module.eval(), provenance
