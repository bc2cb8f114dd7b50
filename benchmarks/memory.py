"""Peak memory of `auralise export` on long songs, against the budget plus the process's fixed footprint.

Usage: ``python benchmarks/memory.py [--minutes 10 60] [--memory 1]``. Each song is the dance demo looped, written
at 22050 Hz (so it is decoded and resampled as a real file would be); each export runs in a fresh process (layer 1,
features 0 and 1). Prints, per length: peak RSS, the fixed footprint (imports and model, measured in the same
kind of process), the budget, and peak / (budget + fixed).
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
MODEL = ROOT / "models" / "choi2016-synth.pt"

PROBE = """
import json, resource, sys
import auralise.listening.export, auralise.engine.deconv, librosa, matplotlib, PIL.Image
from auralise.io.modelfile import load_model
load_model(sys.argv[1])
fixed = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
if len(sys.argv) > 2:
    from auralise.cli import main
    try:
        main(["export", sys.argv[1], sys.argv[2], "--out", sys.argv[3], "--layers", "1", "--features", "0,1",
              "--memory", sys.argv[4], "--quiet", "--device", "cpu"])
    except SystemExit as exc:
        assert exc.code == 0, exc.code
print(json.dumps({"fixed": fixed, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def _run(*args: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, nargs="+", default=[10, 60])
    parser.add_argument("--memory", type=float, default=1.0, help="--memory of the export, GiB")
    args = parser.parse_args()
    y, sr = sf.read(ROOT / "demo_audio" / "dance.ogg", dtype="float32")
    y = y.mean(axis=1) if y.ndim > 1 else y
    fixed = _run(str(MODEL))["fixed"]
    budget = args.memory * (1 << 30)
    print(f"fixed footprint (imports + model): {fixed / 2**20:.0f} MiB; budget {budget / 2**20:.0f} MiB")
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in args.minutes:
            n = int(minutes * 60 * sr)
            song = Path(tmp) / f"song{minutes:g}.wav"
            sf.write(song, np.tile(y, n // len(y) + 1)[:n], sr, subtype="PCM_16")
            start = time.perf_counter()
            peak = _run(str(MODEL), str(song), str(Path(tmp) / f"out{minutes:g}"), str(args.memory))["peak"]
            seconds = time.perf_counter() - start
            ratio = peak / (budget + fixed)
            print(f"{minutes:g} min: peak RSS {peak / 2**20:.0f} MiB = {ratio:.2f} x (budget + fixed), {seconds:.0f} s")


if __name__ == "__main__":
    main()
