"""A real recording for measurements: Kevin MacLeod, "Vibe Ace" (CC BY 3.0, incompetech.com), 61 s, 44.1 kHz stereo.

librosa 0.7.2's source distribution on PyPI ships it as ``librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg``.
:func:`vibe_ace` returns its path: ``$AURALISE_REAL_AUDIO`` if set, else the copy in the cache, else it runs
``pip download --no-deps --no-binary :all: librosa==0.7.2`` into the cache and extracts that one file (nothing is
installed). Used by the benchmarks and tests only; the library never fetches anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MEMBER = "librosa-0.7.2/librosa/util/example_data/Kevin_MacLeod_-_Vibe_Ace.ogg"
CREDIT = 'Kevin MacLeod, "Vibe Ace" (incompetech.com), CC BY 3.0; from the librosa 0.7.2 sdist'


def vibe_ace(cache: str | os.PathLike | None = None) -> Path:
    """The recording's path (see the module docstring); RuntimeError when it cannot be had."""
    given = os.environ.get("AURALISE_REAL_AUDIO")
    if given:
        return Path(given)
    base = Path(cache) if cache else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "auralise"
    target = base / "Kevin_MacLeod_-_Vibe_Ace.ogg"
    if target.is_file():
        return target
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=base) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--no-build-isolation",
               "librosa==0.7.2", "-d", tmp, "-q"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        sdists = list(Path(tmp).glob("librosa-0.7.2*.tar.gz"))
        if done.returncode or not sdists:
            raise RuntimeError(f"cannot download librosa 0.7.2's sdist: {done.stderr.strip()[-300:]}")
        with tarfile.open(sdists[0]) as tar:
            member = tar.getmember(MEMBER)
            if not member.isfile() or member.size > 10 << 20:
                raise RuntimeError("librosa 0.7.2's sdist does not hold the expected recording")
            data = tar.extractfile(member).read()
        partial = target.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(target)
    return target
