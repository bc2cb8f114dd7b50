"""Atlas benchmark: scan throughput, render time per excerpt, peak memory, local vs Ray-local, in one run.

Usage: ``python benchmarks/atlas.py [--minutes 10] [--song-seconds 30] [--ray] [--workers 2]``. The corpus is the
demo songs cut into ``--song-seconds`` pieces at different offsets (looped), ``--minutes`` of audio in all, written
at the model's rate. Printed, all measured here and now:

- scan: seconds of audio per second of wall time (Choi demo model, all 5 layers), against a loop of
  ``auralise.studies.ranking.rank_features`` per song (what ``auralise rank`` computes: one forward pass per song);
- render: seconds per excerpt (all 320 features, top 9);
- the whole atlas's wall time and peak RSS (a fresh process);
- with ``--ray``: the scan on a local Ray instance (``--workers`` actors) against the local engine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
MODEL = str(ROOT / "models" / "choi2016-synth.pt")
SR = 11025


def make_corpus(folder: Path, minutes: float, song_seconds: float) -> list[Path]:
    from auralise.io.audio import load_audio

    demos = [load_audio(p, sr=SR)[0] for p in sorted((ROOT / "demo_audio").glob("*.ogg"))]
    n_songs = max(1, int(round(minutes * 60 / song_seconds)))
    length = int(song_seconds * SR)
    paths = []
    for i in range(n_songs):
        y = demos[i % len(demos)]
        start = (i * 7919) % len(y)
        piece = np.roll(np.tile(y, length // len(y) + 2), -start)[:length]
        paths.append(folder / f"song{i:04d}.wav")
        sf.write(paths[-1], piece, SR, subtype="PCM_16")
    return paths


def scan_rate(paths, engine: str = "local", workers: int = 1) -> float:
    """Seconds of audio scanned per second (all layers, every feature), scan only (a shard of 1/1)."""
    from auralise.listening.atlas import AtlasOptions, atlas

    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        atlas(MODEL, paths, out, options=AtlasOptions(), shard="1/1", engine=engine, workers=workers)
        seconds = time.perf_counter() - start
    return len(paths) * sf.info(paths[0]).duration / seconds, seconds


def rank_loop_rate(paths) -> float:
    from auralise.studies.ranking import rank_features

    start = time.perf_counter()
    for p in paths:
        rank_features(MODEL, p)
    return len(paths) * sf.info(paths[0]).duration / (time.perf_counter() - start)


def whole_atlas(paths, out: Path) -> dict:
    """The whole atlas in a fresh process: wall time, peak RSS, excerpts and the render time per excerpt."""
    code = (
        "import json, resource, sys, time\n"
        "from auralise.listening.atlas import atlas, AtlasOptions\n"
        "t = time.perf_counter()\n"
        "r = atlas(sys.argv[1], sys.argv[3:], sys.argv[2], options=AtlasOptions(),"
        " progress=lambda s, d, n: print(s, d, n, time.perf_counter() - t, file=sys.stderr) if d == n else None)\n"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'excerpts': sum(len(f['excerpts']) for f in"
        " r['features']), 'peak': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))\n"
    )
    run = subprocess.run([sys.executable, "-c", code, MODEL, str(out), *map(str, paths)], capture_output=True,
                         text=True, check=True)  # fmt: skip
    result = json.loads(run.stdout.splitlines()[-1])
    lines = [line.split() for line in run.stderr.splitlines() if line[:4] in ("scan", "rend")]
    stages = {parts[0]: float(parts[3]) for parts in lines}
    result["scan_seconds"] = stages.get("scan", 0.0)
    result["render_seconds"] = result["seconds"] - result["scan_seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--song-seconds", type=float, default=30.0)
    parser.add_argument("--ray", action="store_true", help="also scan on a local Ray instance")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_corpus(Path(tmp), args.minutes, args.song_seconds)
        audio = len(paths) * args.song_seconds
        print(f"corpus: {len(paths)} songs x {args.song_seconds:g} s = {audio / 60:.1f} min (Choi demo model)")
        rate, seconds = scan_rate(paths)
        rank = rank_loop_rate(paths[: max(1, len(paths) // 4)])
        print(f"scan (local, 1 process): {rate:.0f} x real time ({seconds:.1f} s); rank loop {rank:.0f} x real time; "
              f"ratio {rate / rank:.2f}")  # fmt: skip
        if args.ray:
            ray_rate, ray_seconds = scan_rate(paths, engine="ray", workers=args.workers)
            pool_rate, pool_seconds = scan_rate(paths, workers=args.workers)
            print(f"scan, {args.workers} workers: local processes {pool_rate:.0f} x real time ({pool_seconds:.1f} s); "
                  f"Ray local {ray_rate:.0f} x ({ray_seconds:.1f} s, start-up included); local / Ray wall time "
                  f"{pool_seconds / ray_seconds:.2f}")  # fmt: skip
        whole = whole_atlas(paths, Path(tmp) / "atlas")
        per_excerpt = 1000 * whole["render_seconds"] / max(1, whole["excerpts"])
        hour = whole["scan_seconds"] * 60 / (audio / 60) + whole["render_seconds"]
        print(f"whole atlas (320 features, top 9): {whole['seconds']:.0f} s wall, peak RSS {whole['peak'] / 2**20:.0f} "
              f"MiB; {whole['excerpts']} excerpts rendered in {whole['render_seconds']:.0f} s = {per_excerpt:.0f} ms "
              f"per excerpt; projected for 1 h of audio: {hour:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
