"""Compare two export folders: which files are byte-identical, and how far apart the WAVs that are not are.

    python benchmarks/compare_exports.py BEFORE AFTER

Run the same `auralise export` with two versions of the code (for float waves, add ``--normalize none``), then
compare: the files of each kind that are byte-identical (the journal holds timestamps, so it differs), and, for
WAVs whose bytes differ, whether their samples do (a float WAV's PEAK chunk holds a timestamp) and by how much:
the largest sample difference over the wave's peak, and the rms difference over the wave's rms, with the worst
files listed. This is how "results unchanged" is measured for a change that reorders float sums.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np
import soundfile as sf


def compare(before: Path, after: Path, *, worst: int = 6) -> list[str]:
    """The report's lines for export folders ``before`` and ``after``."""
    a = {p.relative_to(before) for p in before.rglob("*") if p.is_file()}
    b = {p.relative_to(after) for p in after.rglob("*") if p.is_file()}
    lines = []
    if a != b:
        lines.append(f"only in {before}: {sorted(map(str, a - b))[:5]}; only in {after}: {sorted(map(str, b - a))[:5]}")
    same, differ = collections.Counter(), collections.Counter()
    waves = []  # (max over peak, rms over rms, name) of WAVs whose samples differ
    sample_identical = 0
    for rel in sorted(a & b):
        kind = rel.suffix or rel.name
        if (before / rel).read_bytes() == (after / rel).read_bytes():
            same[kind] += 1
            continue
        differ[kind] += 1
        if kind != ".wav":
            continue
        x = sf.read(before / rel, dtype="float64", always_2d=True)[0]
        y = sf.read(after / rel, dtype="float64", always_2d=True)[0]
        if x.shape != y.shape:
            lines.append(f"{rel}: {x.shape} samples before, {y.shape} after")
        elif np.array_equal(x, y):
            sample_identical += 1
        else:
            peak, rms = np.abs(x).max(), np.sqrt(np.mean(x**2))
            waves.append((np.abs(x - y).max() / peak, np.sqrt(np.mean((x - y) ** 2)) / rms, str(rel)))
    lines.append(f"byte-identical: {sum(same.values())} of {len(a & b)} files {dict(same)}; differing: {dict(differ)}")
    lines.append(f"WAVs whose bytes differ but samples do not: {sample_identical}; whose samples differ: {len(waves)}")
    if waves:
        peak_rel, rms_rel = np.array([w[0] for w in waves]), np.array([w[1] for w in waves])
        lines.append(
            f"  largest sample difference / peak: median {np.median(peak_rel):.2g}, max {peak_rel.max():.2g}, "
            f"over 1e-6 in {(peak_rel > 1e-6).sum()}; rms difference / rms: max {rms_rel.max():.2g}"
        )
        lines += [f"  {p:.3g} {r:.3g} {name}" for p, r, name in sorted(waves, reverse=True)[:worst]]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args()
    print("\n".join(compare(args.before, args.after)))


if __name__ == "__main__":
    main()
