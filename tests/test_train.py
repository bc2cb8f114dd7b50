"""Training recipes (tiny versions) and the shipped demo checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import auralise
from auralise.demo import synth
from auralise.demo.train import RECIPES, evaluate, get_recipe, make_split, train

MODELS = Path(__file__).resolve().parent.parent / "models"
TINY = {
    "choi2016-synth": {"n_classes": 3, "n_bins": 257, "n_frames": 173, "channels": 6, "hidden": 8, "dropout": 0.0},
    "pons-synth": {"n_classes": 3, "n_bins": 257, "branch_channels": 3, "mid_channels": 8, "n_mid": 2, "dropout": 0.0},
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_tiny_recipe_learns_saves_loads_and_auralises(tmp_path, name):
    rec = get_recipe(name, config=TINY[name], n_train=24, n_val=6, n_test=6, epochs=4, lr=3e-3)
    ckpt = tmp_path / f"{name}.pt"
    _, provenance = train(rec, out=ckpt)
    losses = [h["loss"] for h in provenance["history"]]
    assert losses[-1] < losses[0], f"training loss did not fall: {losses}"
    raw = torch.load(ckpt, weights_only=True)
    assert raw["provenance"]["recipe"]["name"] == name and raw["labels"] == list(synth.STYLES)
    assert raw["provenance"]["test_accuracy"] == provenance["test_accuracy"]
    song = tmp_path / "song.wav"
    sf.write(song, synth.generate("dance", seconds=5.0, sr=11025, seed=7).mix, 11025)
    result = auralise.auralise_file(ckpt, song, layer=2, features=[0, 1], out_dir=tmp_path / "out", device="cpu")
    wav, sr = sf.read(result.features[0].wav)
    assert sr == 11025 and len(wav) == 5 * 11025 and np.isfinite(wav).all()


def test_splits_are_disjoint_and_balanced():
    rec = get_recipe("choi2016-synth")
    _, train_labels = make_split(rec, "train", n=6)
    assert train_labels.tolist() == [0, 1, 2, 0, 1, 2]
    a, _ = make_split(rec, "test", n=3)
    b, _ = make_split(rec, "test", n=3)
    assert torch.equal(a, b), "test data must regenerate bit for bit"
    c, _ = make_split(rec, "val", n=3)
    assert not torch.equal(a, c)


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_shipped_checkpoint_reproduces_its_test_accuracy(name):
    path = MODELS / f"{name}.pt"
    if not path.exists():
        pytest.skip(f"{path} is not in this checkout")
    raw = torch.load(path, weights_only=True)  # a plain dict: no code runs on load
    recorded = raw["provenance"]["test_accuracy"]
    model = auralise.load_model(path)
    stored = raw["provenance"]["recipe"]
    rec = get_recipe(name, n_test=stored["n_test"], frontend=stored["frontend"], styles=tuple(stored["styles"]))
    result = evaluate(model.module, *make_split(rec, "test"), len(rec.styles))
    assert abs(result["accuracy"] - recorded) <= 0.01
    assert path.stat().st_size < 4_000_000
