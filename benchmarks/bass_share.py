"""How bass-heavy a layer's auralisations are, per listening mode: the issue-13 complaint, measured.

Usage: ``python benchmarks/bass_share.py AUDIO [--layer 1] [--seconds 30] [--modes mask,contrast,partition,distinct]``.

For every feature of the layer of the Choi demo model, rendered with ``--normalize none``: how many keep more than
90 % of their energy below 200 Hz, and the median spectral centroid (with its interquartile range); then the song's
own share below 200 Hz and centroid."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def band_share(w: np.ndarray, sr: int, below: float = 200.0) -> tuple[float, float]:
    """(share of energy below ``below`` Hz, spectral centroid in Hz) of a wave."""
    power = np.abs(np.fft.rfft(w)) ** 2
    freqs = np.fft.rfftfreq(len(w), 1.0 / sr)
    total = max(float(power.sum()), 1e-30)
    return float(power[freqs < below].sum() / total), float((power * freqs).sum() / total)


def main() -> None:
    from auralise.session import RenderOptions, Session

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audio")
    ap.add_argument("--model", default=str(ROOT / "models" / "choi2016-synth.pt"))
    ap.add_argument("--layer", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--modes", default="mask,contrast,partition,distinct")
    args = ap.parse_args()
    for mode in args.modes.split(","):
        session = Session(args.model, device="cpu", options=RenderOptions(resynth=mode, normalize="none"))
        song = session.song(args.audio, duration=args.seconds)
        channels = session.layer(args.layer).channels
        shares = []
        for start in range(0, channels, 16):
            projection = session.project(song, args.layer, list(range(start, min(channels, start + 16))))
            rendered = session.render(song, projection.D, activation_max=projection.activation_max, layer=args.layer)
            shares += [band_share(w, session.frontend.sr) for w, quiet in zip(rendered.waves, rendered.silent)
                       if not quiet]  # fmt: skip
        low, centroid = np.array(shares).T
        q1, median, q3 = np.percentile(centroid, [25, 50, 75])
        print(f"{mode:9s} layer {args.layer}: {int(np.sum(low > 0.9))}/{len(low)} features keep > 90 % below 200 Hz; "
              f"median centroid {median:.0f} Hz (IQR {q1:.0f}-{q3:.0f})")  # fmt: skip
    low, centroid = band_share(song.y, session.frontend.sr)
    print(f"the song: {low:.2f} of its energy below 200 Hz, centroid {centroid:.0f} Hz")


if __name__ == "__main__":
    main()
