"""Shared fixtures: a small choi2016 checkpoint with the default STFT front-end, and synthetic music files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SR = 11025
FRONTEND = {
    "kind": "stft",
    "sr": SR,
    "n_fft": 512,
    "hop_length": 256,
    "compression": "linear",
    "layout": "BCFT",
    "patch_seconds": 4.0,
}
# choi2016 at the reference input size, but narrow: 8 features per layer, a 16-unit hidden layer.
CHOI_SMALL = {"channels": 8, "hidden": 16}


def build_choi_small(seed: int = 0):
    """A freshly initialised (eval-mode) small choi2016; the same seed gives the same weights."""
    import torch

    from auralise import zoo

    torch.manual_seed(seed)
    return zoo.build("choi2016", dict(CHOI_SMALL)).eval()


@pytest.fixture(scope="session")
def choi_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An auralise checkpoint of a small choi2016 (5 conv layers of 8 features) with the default front-end."""
    from auralise import save_model

    path = tmp_path_factory.mktemp("models") / "choi_small.pt"
    return save_model(build_choi_small(), path, frontend=FRONTEND, labels=[f"class{i}" for i in range(10)])


@pytest.fixture(scope="session")
def music() -> np.ndarray:
    """Four seconds of synthetic dance music at the model's rate, shape (n,), float32."""
    from auralise import synth

    return synth.generate("dance", seconds=4.0, sr=SR, seed=1).mix.astype(np.float32)


@pytest.fixture(scope="session")
def music_files(tmp_path_factory: pytest.TempPathFactory, music: np.ndarray) -> dict[str, Path]:
    """The music written in every supported container (mono, model rate) plus a stereo 44.1 kHz WAV."""
    import soundfile as sf

    from auralise import synth

    d = tmp_path_factory.mktemp("music")
    files = {}
    for ext, subtype in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS"), ("mp3", "MPEG_LAYER_III")):
        files[ext] = d / f"dance.{ext}"
        sf.write(files[ext], music, SR, subtype=subtype)
    left = synth.generate("hiphop", seconds=4.0, sr=44100, seed=2).mix
    right = synth.generate("ballad", seconds=4.0, sr=44100, seed=3).mix
    files["stereo44k"] = d / "stereo44k.wav"
    sf.write(files["stereo44k"], np.stack([left, right], axis=1), 44100, subtype="PCM_16")
    return files
