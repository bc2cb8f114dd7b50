"""Import published models as auralise checkpoints: the musicnn taggers (Pons & Serra), without TensorFlow.

The PyPI package ``musicnn`` 0.1.0 (ISC licence) carries four trained TensorFlow-1 checkpoints in its wheel:
``MTT_musicnn``, ``MSD_musicnn`` (musically motivated filter shapes) and ``MTT_vgg``, ``MSD_vgg`` (five 3x3 conv
layers), trained on MagnaTagATune and the Million Song Dataset, 50 tags each. The wheel pins an old TensorFlow and
numpy, so it is never installed: :func:`musicnn_wheel` finds or downloads the file (``pip download musicnn==0.1.0
--no-deps``), :mod:`auralise.importers.tfbundle` reads and checksums the weights,
:mod:`auralise.nets.musicnn` rebuilds the networks, and :func:`import_musicnn` writes auralise checkpoints with
musicnn's own front-end.

Example
-------
>>> from auralise.importers.musicnn import import_musicnn
>>> import_musicnn("models", models=["MTT_musicnn"])            # doctest: +SKIP
[PosixPath('models/MTT_musicnn.pt')]
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from auralise.errors import BadModelError, BadParameterError, OutputError
from auralise.importers.wheels import cache_dir as cache_dir  # re-exported: tests and callers import it from here
from auralise.importers.wheels import published_wheel

if TYPE_CHECKING:
    import torch

WHEEL = "musicnn-0.1.0-py3-none-any.whl"
# musicnn's preprocessing (musicnn/extractor.py): 16 kHz audio, power mel spectrogram (librosa defaults: Slaney
# mel scale and norm), 96 bands, log10(10000 x + 1), patches of 187 frames (time x mel). 2.976 s is the audio
# length whose centred STFT has exactly 187 frames (frames_for(2.976) = 1 + 47616 // 256).
MUSICNN_FRONTEND = {
    "kind": "mel",
    "sr": 16000,
    "n_fft": 512,
    "hop_length": 256,
    "n_mels": 96,
    "power": 2,
    "htk": False,
    "mel_norm": "slaney",
    "compression": "log10p",
    "log_scale": 10000.0,
    "layout": "BCTF",
    "patch_seconds": 2.976,
}


def musicnn_wheel(path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The musicnn 0.1.0 wheel: ``path``, else ``$AURALISE_MUSICNN_WHEEL``, else the cache, else downloaded there
    (:func:`auralise.importers.wheels.published_wheel`)."""
    return published_wheel("musicnn", "0.1.0", WHEEL, path=path, env="AURALISE_MUSICNN_WHEEL", download=download)


def import_musicnn(
    out_dir: str | os.PathLike,
    *,
    models: Sequence[str] = ("MTT_musicnn",),
    wheel: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> list[Path]:
    """Write ``out_dir/<model>.pt`` for each released model (``"all"`` for the four); returns the paths."""
    from auralise.importers.tfbundle import extract_musicnn
    from auralise.io.modelfile import save_model
    from auralise.nets import musicnn

    names = list(musicnn.PRETRAINED) if list(models) == ["all"] else list(dict.fromkeys(models))
    unknown = [n for n in names if n not in musicnn.PRETRAINED]
    if unknown or not names:
        raise BadParameterError(f"unknown musicnn model {unknown[0] if unknown else ''!r}; use "
                                f"{', '.join(musicnn.PRETRAINED)} or all")  # fmt: skip
    out = Path(out_dir)
    targets = [out / f"{n}.pt" for n in names]
    existing = [t for t in targets if t.exists()]
    if existing and not force:
        raise OutputError(f"{existing[0]} already exists; pass --force to overwrite or choose another --out")
    path = musicnn_wheel(wheel)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        folders = extract_musicnn(path, tmp)
        for name, target in zip(names, targets):
            if progress is not None:
                progress(f"importing {name}")
            module = load_pretrained(name, folders[name])
            provenance = {
                "source": f"musicnn 0.1.0 (ISC licence), {name}, read from {path.name} without TensorFlow",
                "output_activation": "sigmoid",
                "paper": "Pons & Serra, musicnn: pre-trained convolutional neural networks for music audio "
                "tagging (ISMIR 2019 LBD)",
            }
            out.mkdir(parents=True, exist_ok=True)
            written.append(
                save_model(module, target, frontend=MUSICNN_FRONTEND, labels=list(module.labels), provenance=provenance)
            )
    return written


def load_pretrained(name: str, folder: str | os.PathLike) -> torch.nn.Module:
    """One released musicnn model, built and loaded from its extracted checkpoint folder, in eval mode.

    Parameters
    ----------
    name : {"MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"}
    folder : path
        The model's folder from :func:`auralise.importers.tfbundle.extract_musicnn`.

    Returns
    -------
    Musicnn or MusicnnVGG
        With ``labels`` (the 50 tag names) set as an attribute.
    """
    from auralise.importers.tfbundle import read_bundle
    from auralise.nets.musicnn import PRETRAINED, Musicnn, MusicnnVGG, load_musicnn_weights

    if name not in PRETRAINED:
        raise BadModelError(f"unknown musicnn model {name!r}; choose one of {', '.join(PRETRAINED)}")
    arch, config, labels = PRETRAINED[name]
    module = (Musicnn if arch == "musicnn" else MusicnnVGG)(**config)
    load_musicnn_weights(module, read_bundle(folder))
    module.labels = list(labels)
    return module.eval()
