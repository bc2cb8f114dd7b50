"""Listening modes compared by the faithfulness measures, in one run: the table of issue 13.

Usage: ``python benchmarks/faithfulness.py [--model models/choi2016-synth.pt] [--seconds 30] [--features 64]
[--modes mask,contrast,partition,distinct] [--songs real,dance,ballad]``.

For each song (``real``: Kevin MacLeod's "Vibe Ace", CC BY 3.0, from librosa 0.7.2's sdist via :mod:`real_audio`;
the others: ``demo_audio/NAME.ogg``), each layer and each listening mode, with ``--normalize none``: the median
pairwise distinguishability (dB), median specificity, retention and deletion over ``--features`` features spread
evenly over the layer (all of them by default; features never active on the song have no auralisation and are left
out), and the ratio of each mode's distinguishability to ``mask``'s
(:func:`auralise.studies.faithfulness.evaluate_layer`)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def song_path(name: str) -> Path:
    if name == "real":
        from real_audio import vibe_ace

        return vibe_ace()
    return ROOT / "demo_audio" / f"{name}.ogg"


def main() -> None:
    import torch

    from auralise.session import RenderOptions, Session
    from auralise.studies.faithfulness import evaluate_layer

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=str(ROOT / "models" / "choi2016-synth.pt"))
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--features", type=int, default=64)
    ap.add_argument("--modes", default="mask,contrast,partition,distinct")
    ap.add_argument("--songs", default="real,dance")
    ap.add_argument("--layers", default="1,2,3,4,5")
    args = ap.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    modes = args.modes.split(",")
    print(f"model {args.model}; {args.seconds:g} s per song; normalize none; torch threads {torch.get_num_threads()}")
    print("song    layer  mode        dist_dB  x_mask  specificity  retention  deletion  seconds")
    for name in args.songs.split(","):
        sessions = {m: Session(args.model, options=RenderOptions(resynth=m, normalize="none")) for m in modes}
        for number in (int(x) for x in args.layers.split(",")):
            base = None
            for mode in modes:
                session = sessions[mode]
                song = session.song(song_path(name), duration=args.seconds)
                channels = session.layer(number).channels
                feats = sorted(set(np.linspace(0, channels - 1, min(args.features, channels)).round().astype(int)))
                start = time.perf_counter()
                r = evaluate_layer(session, song, number, [int(f) for f in feats])
                dist = r.median_distinguishability()
                base = dist if mode == modes[0] else base
                print(f"{name:7s} {number:5d}  {mode:10s} {dist:8.2f} {dist / base:7.2f} "
                      f"{np.nanmedian(r.specificity):12.3f} {np.nanmedian(r.retention):10.3f} "
                      f"{np.nanmedian(r.deletion):9.3f} {time.perf_counter() - start:8.1f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
