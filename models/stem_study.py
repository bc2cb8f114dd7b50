"""Which features of a shipped model isolate a stem? Measured with the per-stem access of ``auralise.demo.synth``.

For held-out synthetic songs (test-range seeds), every feature of every layer is deconvolved (whole map,
deconvnet) and turned into a mask on the song's STFT, exactly as ``auralise`` does for its WAVs. The energy
envelope of the auralised feature over time, ``sum_f (M * |X|)^2``, is correlated (Pearson, over all frames of
all songs) with each stem's own envelope ``sum_f |X_stem|^2``. A feature "isolates" a stem when its correlation
with that stem is high and clearly above its correlation with every other stem.

Run from the repository root (a few minutes on 2 cores)::

    python models/stem_study.py models/choi2016-synth.pt --out models/choi2016-synth.stems.json
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch

import auralise
from auralise.demo import synth
from auralise.demo.train import SPLIT_SEED_BASE

SONGS = (("dance", 0), ("hiphop", 1), ("dance", 2), ("hiphop", 3), ("ballad", 4), ("ballad", 5))


def envelopes(model, seconds: float) -> tuple[dict[int, np.ndarray], dict[str, np.ndarray]]:
    """Per layer (features, frames) envelopes of the auralised features; per stem (frames,) envelopes."""
    fe = model.frontend
    feats: dict[int, list[np.ndarray]] = {}
    stems: dict[str, list[np.ndarray]] = {s: [] for s in synth.STEMS}
    graph = auralise.engine.layers.discover(model.module, model.example_input())
    for style, i in SONGS:
        clip = synth.generate(style, seconds=seconds, sr=fe.sr, seed=SPLIT_SEED_BASE["test"] + 100 + i)
        X = fe.stft(clip.mix)
        S = fe.model_input(X)
        for name, y in clip.stems.items():
            stems[name].append((np.abs(fe.stft(y)) ** 2).sum(axis=0))
        for lay in graph.layers:
            D = fe.to_grid(
                auralise.project_features(
                    model.module, S, layer=lay.number, features=range(lay.channels), example=model.example_input()
                ).D
            )
            R = np.maximum(D, 0)
            peak = R.reshape(len(R), -1).max(axis=1)
            M = R / np.where(peak > 0, peak, 1)[:, None, None]
            feats.setdefault(lay.number, []).append(((M * np.abs(X)[None]) ** 2).sum(axis=1))
    return {k: np.concatenate(v, axis=1) for k, v in feats.items()}, {k: np.concatenate(v) for k, v in stems.items()}


def correlations(feature_env: np.ndarray, stem_env: dict[str, np.ndarray]) -> np.ndarray:
    """Pearson correlation (features, stems); a silent feature gets 0."""
    F = feature_env - feature_env.mean(axis=1, keepdims=True)
    out = np.zeros((len(F), len(stem_env)))
    for j, env in enumerate(stem_env.values()):
        e = env - env.mean()
        denom = np.linalg.norm(F, axis=1) * np.linalg.norm(e)
        out[:, j] = np.where(denom > 0, F @ e / np.where(denom > 0, denom, 1), 0.0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--top", type=int, default=3)
    parser.add_argument("--out", default=None, help="write all correlations as JSON")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = auralise.load_model(args.model)
    feats, stems = envelopes(model, args.seconds)
    names = list(stems)
    table = {layer: correlations(env, stems) for layer, env in feats.items()}
    print("| stem | feature | r with stem | highest r with another stem |")
    print("|---|---|---|---|")
    for j, stem in enumerate(names):
        ranked = sorted(
            ((r[k, j] - np.delete(r[k], j).max(), layer, k) for layer, r in table.items() for k in range(len(r))),
            reverse=True,
        )
        for _margin, layer, k in ranked[: args.top]:
            r = table[layer][k]
            other = int(np.argmax(np.delete(r, j)))
            other_name = [n for n in names if n != stem][other]
            print(f"| {stem} | {layer}-{k} | {r[j]:.2f} | {np.delete(r, j)[other]:.2f} ({other_name}) |")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(
                {
                    "stems": names,
                    "songs": SONGS,
                    "seconds": args.seconds,
                    "correlations": {str(k): v.round(4).tolist() for k, v in table.items()},
                },
                fh,
            )


if __name__ == "__main__":
    main()
