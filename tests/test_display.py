"""Tests for auralise.figures.display: spectrogram panels, the feature figure, atomic saving."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from auralise.errors import BadParameterError, OutputError
from auralise.figures.display import (
    DB_LABEL,
    DECONV_LABEL,
    feature_figure,
    new_figure,
    save_figure,
    spectrogram_image,
)
from auralise.frontends.base import Frontend

SR = 11025
FE = Frontend(sr=SR, n_fft=512, hop_length=256)


def signal(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.5 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * 2000 * t) * (t > 1)
    return y.astype(np.float32)


def test_lazy_imports_and_no_pyplot() -> None:
    """Importing the modules pulls in no heavy library; making and saving a figure never imports pyplot."""
    import subprocess

    code = (
        "import sys\n"
        "import auralise.io.audio, auralise.frontends.base, auralise.render.resynth, auralise.figures.display\n"
        "heavy = [m for m in ('torch', 'librosa', 'matplotlib', 'soundfile', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from auralise.figures.display import new_figure, save_figure\n"
        "import tempfile, os\n"
        "fig = new_figure(); fig.add_subplot().plot([0, 1])\n"
        "save_figure(fig, os.path.join(tempfile.mkdtemp(), 'f.png'))\n"
        "assert type(fig.canvas).__name__ == 'FigureCanvasAgg'\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spectrogram_image_axes() -> None:
    X = FE.stft(signal())
    fig = new_figure()
    ax = fig.add_subplot()
    im = spectrogram_image(ax, np.abs(X), frontend=FE)
    assert ax.get_xlabel() == "Time (s)" and ax.get_ylabel() == "Frequency (Hz)"
    left, right, bottom, top = im.get_extent()
    assert left < 0 < right and right == pytest.approx(2.0, abs=0.05)
    assert ax.get_ylim() == (0, SR / 2)
    assert im.origin == "lower"
    arr = im.get_array()
    assert arr.max() == pytest.approx(0.0) and arr.min() == pytest.approx(-80.0)
    assert im.get_clim() == (-80.0, 0.0)
    # linear scale keeps values
    im2 = spectrogram_image(fig.add_subplot(212), np.abs(X), frontend=FE, db=False, vmin=0, vmax=1)
    np.testing.assert_allclose(im2.get_array(), np.abs(X), rtol=1e-6)
    with pytest.raises(BadParameterError):
        spectrogram_image(ax, np.abs(X)[:10], frontend=FE)


def test_spectrogram_all_zero() -> None:
    fig = new_figure()
    im = spectrogram_image(fig.add_subplot(), np.zeros((257, 10)), frontend=FE)
    assert np.all(im.get_array() == -80.0)


def figure_texts(fig) -> list[str]:
    texts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    for ax in fig.axes:
        texts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
    return texts


def test_feature_figure_png(tmp_path: Path) -> None:
    import matplotlib.image

    y = signal()
    X = FE.stft(y)
    D = np.zeros(X.shape, dtype=np.float32)
    D[20:25, 10:60] = np.abs(X[20:25, 10:60])  # a feature that "hears" the 440 Hz partial
    D[100:110, :] = -1.0  # negative parts are not shown
    fig = feature_figure(np.abs(X), D, frontend=FE, title="Feature 3-38", method="deconvnet")
    texts = figure_texts(fig)
    assert "Feature 3-38" in texts
    assert "Input spectrogram (dB, ref max)" in texts and "Deconvolved (deconvnet)" in texts
    assert "Time (s)" in texts and "Frequency (Hz)" in texts
    assert DB_LABEL in texts and DECONV_LABEL in texts  # colour bar labels
    assert tuple(fig.get_size_inches()) == (8.0, 6.0)

    out = save_figure(fig, tmp_path / "layer3_feature38.png", dpi=100)
    assert out == tmp_path / "layer3_feature38.png"
    assert [p.name for p in tmp_path.iterdir()] == ["layer3_feature38.png"]
    img = matplotlib.image.imread(out)
    assert img.shape[:2] == (600, 800) and img.shape[2] in (3, 4)
    rgb = img[..., :3]
    assert rgb.std() > 0.05  # not blank
    assert (rgb.min(axis=2) < 0.5).mean() > 0.05  # a good part of the image is drawn (dark colormap)


def test_feature_figure_silent_D(tmp_path: Path) -> None:
    import matplotlib.image

    X = FE.stft(signal(1.0))
    fig = feature_figure(np.abs(X), np.zeros(X.shape), frontend=FE, title="Feature 1-0", method="guided")
    titles = [ax.get_title() for ax in fig.axes]
    assert any("Deconvolved (guided)" in t and "silent" in t for t in titles)
    img = matplotlib.image.imread(save_figure(fig, tmp_path / "silent.png"))
    assert img.shape[:2] == (720, 960)  # 8 x 6 in at the default 120 dpi


@pytest.mark.parametrize("ext", ["pdf", "svg"])
def test_save_other_formats(tmp_path: Path, ext: str) -> None:
    X = FE.stft(signal(0.5))
    fig = feature_figure(np.abs(X), np.abs(X), frontend=FE, title="t")
    p = save_figure(fig, tmp_path / f"f.{ext}")
    head = p.read_bytes()[:5]
    assert head.startswith(b"%PDF") if ext == "pdf" else b"<?xml" in head or b"<svg" in head


def test_save_errors_leave_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fig = new_figure()
    fig.add_subplot().plot([0, 1])
    with pytest.raises(OutputError, match="unknown image extension"):
        save_figure(fig, tmp_path / "f.xyz")
    with pytest.raises(OutputError, match="cannot write"):
        save_figure(fig, tmp_path / "missing" / "f.png")

    def boom(*a, **k):
        Path(a[0]).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(fig, "savefig", boom)
    with pytest.raises(KeyboardInterrupt):
        save_figure(fig, tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []


def test_feature_figure_shape_mismatch() -> None:
    with pytest.raises(BadParameterError):
        feature_figure(np.ones((257, 10)), np.ones((257, 11)), frontend=FE, title="x")
