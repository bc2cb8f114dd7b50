"""Import Basic Pitch (Spotify; Bittner et al., ICASSP 2022) as an auralise checkpoint, without TensorFlow.

The PyPI package ``basic-pitch`` 0.4.0 (Apache-2.0) ships its trained ``icassp_2022`` model as ONNX, TFLite, CoreML
and a TF SavedModel; the SavedModel's variables are a TF tensor bundle. The package pins an old TensorFlow, so it is
never installed: :func:`basic_pitch_wheel` finds or downloads the wheel (``pip download basic-pitch==0.4.0
--no-deps``), the two variable files are read out of it and checked against their published SHA-256,
:mod:`auralise.importers.tfbundle` reads the tensors, :mod:`auralise.nets.basic_pitch` rebuilds the network, and
:func:`import_basic_pitch` writes one checkpoint with the ``hcqt`` front-end (:mod:`auralise.frontends.hcqt`), whose
input batch norm is the model's first layer frozen to an affine map. Nothing in the wheel is imported or run.

Example
-------
>>> from auralise.importers.basic_pitch import import_basic_pitch
>>> import_basic_pitch("models")                                   # doctest: +SKIP
PosixPath('models/basic_pitch.pt')
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from auralise.errors import BadModelError, OutputError

if TYPE_CHECKING:
    import torch

PACKAGE, VERSION = "basic-pitch", "0.4.0"
WHEEL = "basic_pitch-0.4.0-py2.py3-none-any.whl"
CHECKPOINT = "basic_pitch.pt"
_PREFIX = "basic_pitch/saved_models/icassp_2022/nmp/variables/variables"
# SHA-256 of the SavedModel's variable files in the published wheel (its RECORD says the same)
VARIABLE_SHA256 = {
    "variables.index": "356aa1a00095cf2dba17386144e8b289cb04195ae090aa7f324312b08220115e",
    "variables.data-00000-of-00001": "f5d12cd7245fecea0c956c963751f3519c263615ea954b5948d5e8c9c3376f9b",
}
# basic_pitch/constants.py: 22050 Hz, hop 256 (FFT_HOP), N_FFT = 8 * hop for the STFT grid of resynthesis; the CQT
# from 27.5 Hz, 3 bins per semitone, 103 semitones (MAX_N_SEMITONES); harmonics 0.5, 1..7; 88 keys x 3 bins kept.
# patch_seconds: one inference window, AUDIO_N_SAMPLES = 2 * 22050 - 256 samples (172 frames).
BASIC_PITCH_FRONTEND = {
    "kind": "hcqt",
    "sr": 22050,
    "n_fft": 2048,
    "hop_length": 256,
    "layout": "BCTF",
    "fmin": 27.5,
    "n_bins": 309,
    "bins_per_octave": 36,
    "harmonics": [0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0],
    "n_output_bins": 264,
    "patch_seconds": 43844 / 22050,
}


def basic_pitch_wheel(path: str | os.PathLike | None = None, *, download: bool = True) -> Path:
    """The basic-pitch 0.4.0 wheel: ``path``, else ``$AURALISE_BASIC_PITCH_WHEEL``, else the cache, else downloaded."""
    from auralise.importers.wheels import published_wheel

    return published_wheel(PACKAGE, VERSION, WHEEL, path=path, env="AURALISE_BASIC_PITCH_WHEEL", download=download)


def read_variables(wheel: str | os.PathLike) -> tuple[dict, dict[str, str]]:
    """The SavedModel's model variables (optimiser slots and metrics left out) and the files' SHA-256 (hex).

    Raises
    ------
    BadModelError
        Not a readable wheel, a variable file missing, or not the published bytes.
    """
    from auralise.importers.tfbundle import read_bundle
    from auralise.importers.wheels import read_member, sha256_bytes

    digests = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, want in VARIABLE_SHA256.items():
            data = read_member(wheel, f"{_PREFIX}{name[len('variables') :]}")
            digests[name] = sha256_bytes(data)
            if digests[name] != want:
                raise BadModelError(
                    f"{Path(wheel).name}: {name} does not match the published basic-pitch 0.4.0 file; "
                    "download the wheel again (pip download basic-pitch==0.4.0 --no-deps)"
                )
            Path(tmp, name).write_bytes(data)
        arrays = read_bundle(Path(tmp, "variables"), skip=_not_a_weight)
    return arrays, digests


def _not_a_weight(name: str) -> bool:
    return not name.startswith("layer_with_weights-") or ".OPTIMIZER_SLOT" in name


def load_pretrained(arrays: dict) -> tuple[torch.nn.Module, dict]:
    """The port with the released weights (eval mode) and its front-end dict (with the input batch norm)."""
    from auralise.nets.basic_pitch import BasicPitch, input_affine, load_basic_pitch_weights

    gain, offset = input_affine(arrays)
    frontend = dict(BASIC_PITCH_FRONTEND, input_gain=gain, input_offset=offset)
    return load_basic_pitch_weights(BasicPitch(), arrays).eval(), frontend


def import_basic_pitch(
    out_dir: str | os.PathLike,
    *,
    wheel: str | os.PathLike | None = None,
    force: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Write ``out_dir/basic_pitch.pt`` from the basic-pitch 0.4.0 wheel and return its path.

    Parameters
    ----------
    out_dir : path
        Folder for the checkpoint (created).
    wheel : path, optional
        The wheel; default the cache, else ``pip download`` into it.
    force : bool
        Overwrite an existing checkpoint.
    progress : callable, optional
        Called with one line per step.

    Raises
    ------
    OutputError
        The checkpoint exists and ``force`` is False.
    BadParameterError, BadModelError, AuraliseError
        The wheel is missing, not basic-pitch 0.4.0, or cannot be downloaded.
    """
    from auralise.importers.wheels import sha256_bytes
    from auralise.io.modelfile import save_model

    target = Path(out_dir) / CHECKPOINT
    if target.exists() and not force:
        raise OutputError(f"{target} already exists; pass --force to overwrite or choose another --out")
    path = basic_pitch_wheel(wheel)
    if progress is not None:
        progress(f"reading the icassp_2022 weights from {path.name}")
    arrays, digests = read_variables(path)
    module, frontend = load_pretrained(arrays)
    provenance = {
        "source": f"basic-pitch {VERSION} (Apache-2.0), saved_models/icassp_2022/nmp, read from {path.name} "
        "without TensorFlow",
        "package": PACKAGE,
        "version": VERSION,
        "wheel": path.name,
        "wheel_sha256": sha256_bytes(path.read_bytes()),
        "files_sha256": {f"nmp/variables/{k}": v for k, v in digests.items()},
        "output_activation": "sigmoid",
        "outputs": {"contour": "T x 264 (3 bins/semitone from 27.5 Hz)", "note": "T x 88", "onset": "T x 88"},
        "paper": "Bittner, Bosch, Rubinstein, Meseguer-Brocal & Ewert, A lightweight instrument-agnostic model for "
        "polyphonic note transcription and multipitch estimation (ICASSP 2022)",
    }
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create {target.parent}: {exc.strerror or exc}; choose a writable --out") from None
    return save_model(module, target, frontend=frontend, provenance=provenance)
