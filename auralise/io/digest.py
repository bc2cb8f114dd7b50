"""File digests: the SHA-256 that names a model file or a song in manifests, journals and notes.

>>> file_sha256("models/choi2016-synth.pt")[:12]   # doctest: +SKIP
'3f1c0a9be2d4'
"""

from __future__ import annotations

import hashlib
import os

__all__ = ["file_sha256"]


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read 1 MiB at a time.

    Parameters
    ----------
    path : str or PathLike
        The file.

    Returns
    -------
    str
        64 lowercase hex digits.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
