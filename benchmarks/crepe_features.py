"""What CREPE's auralised features sound like, by measurement: band, spectral centroid and pitch tracking.

    python benchmarks/crepe_features.py SONG [--model models/crepe-tiny.pt] [--offset 10] [--duration 10]
        [--layers 1,6,7] [--top 4] [--json FILE]

For each layer, the ``--top`` features with the most activation energy on the song (``auralise rank``) are
auralised (deconvnet, whole map, block tap; the projection is audio: per-frame scaling undone and overlap-added)
and measured against the song:

- ``centroid``: spectral centroid in Hz (of the long-term power spectrum);
- ``bands``: share of the energy below 250 Hz, 250-1000, 1000-4000 and above 4000 Hz;
- ``voiced``: share of frames CREPE itself (the same model, ``named_outputs``) calls voiced (confidence >= 0.5) on
  the auralisation; ``follows``: on frames voiced in both the song and the auralisation, the share whose pitch is
  within 50 cents of the song's; ``octave``: the same share ignoring octaves (pitch class within 50 cents);
  ``median_cents``: the median absolute pitch difference there.

Layer 7 (the classifier, one feature per pitch bin) is measured on the bins of the song's median pitch and an
octave above it, not the top-energy ones. Nothing here is tested; it prints what it measures.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np

BANDS = (0.0, 250.0, 1000.0, 4000.0, np.inf)


def spectrum_measures(y: np.ndarray, sr: int) -> dict:
    """Spectral centroid (Hz) and the share of energy per band of :data:`BANDS`, from a Welch power spectrum."""
    import scipy.signal

    f, p = scipy.signal.welch(y.astype(np.float64), fs=sr, nperseg=2048)
    total = float(p.sum()) or 1.0
    bands = [float(p[(f >= lo) & (f < hi)].sum() / total) for lo, hi in zip(BANDS[:-1], BANDS[1:])]
    return {"centroid": round(float((f * p).sum() / total), 1), "bands": [round(b, 3) for b in bands]}


def pitch_track(module, fe, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CREPE's pitch (Hz) and confidence per 10-ms frame of ``y``."""
    import torch

    with torch.inference_mode():
        out = module.named_outputs(fe.model_input(None, y=y))
    return out["pitch_hz"].numpy(), out["confidence"].numpy()


def tracking(song: tuple[np.ndarray, np.ndarray], aural: tuple[np.ndarray, np.ndarray]) -> dict:
    """How the auralisation's pitch track follows the song's (module docstring)."""
    (p0, c0), (p1, c1) = song, aural
    both = (c0 >= 0.5) & (c1 >= 0.5)
    out = {"voiced": round(float((c1 >= 0.5).mean()), 3), "frames_compared": int(both.sum())}
    if both.any():
        cents = 1200.0 * np.log2(p1[both] / p0[both])
        octave = np.abs((cents + 600.0) % 1200.0 - 600.0)
        out |= {"follows": round(float((np.abs(cents) <= 50).mean()), 3),
                "octave": round(float((octave <= 50).mean()), 3),
                "median_cents": round(float(np.median(np.abs(cents))), 1)}  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("song")
    parser.add_argument("--model", default="models/crepe-tiny.pt")
    parser.add_argument("--offset", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--layers", default="1,6,7")
    parser.add_argument("--top", type=int, default=4)
    parser.add_argument("--json", default=None)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)

    from auralise.nets.crepe import bin_hz
    from auralise.session import RenderOptions, Session

    session = Session(args.model, device=args.device, options=RenderOptions(normalize="none"))
    module, fe = session.module, session.frontend
    song = session.song(args.song, offset=args.offset, duration=args.duration)
    song_pitch = pitch_track(module, fe, song.y)
    voiced = song_pitch[1] >= 0.5
    median = float(np.median(song_pitch[0][voiced])) if voiced.any() else 440.0
    report = {"song": args.song, "model": args.model, "offset": args.offset, "duration": args.duration,
              "song_measures": spectrum_measures(song.y, fe.sr) | {"voiced": round(float(voiced.mean()), 3),
                                                                  "median_pitch_hz": round(median, 1)},
              "layers": {}}  # fmt: skip
    layers = [int(n) for n in args.layers.split(",")]
    ranks = session.rank(song, [n for n in layers if n != 7])
    for n in layers:
        if n == 7:  # the pitch-bin features at the song's median pitch and an octave above
            centre = int(round((1200 * np.log2(median / 10.0) - 1997.3794084376191) / 20))
            feats = [f for f in (centre, centre + 60) if 0 <= f < 360]
        else:
            feats = [r.feature for r in ranks[n][: args.top]]
        projection = session.project(song, n, feats)
        rendered = session.render(song, projection.D, activation_max=projection.activation_max)
        rows = []
        for f, wave, silent in zip(feats, rendered.waves, rendered.silent):
            row = {"feature": f}
            if n == 7:
                row["bin_hz"] = round(float(bin_hz(f)), 1)
            if silent:
                rows.append(row | {"silent": True})
                continue
            row |= spectrum_measures(wave, fe.sr) | tracking(song_pitch, pitch_track(module, fe, wave))
            rows.append(row)
        report["layers"][n] = rows
    text = json.dumps(report, indent=1)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            fh.write(text + "\n")
    sys.stdout.write(text + "\n")


if __name__ == "__main__":
    main()
