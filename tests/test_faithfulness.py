"""Faithfulness measures (groundwork of issue 13) on constructed cases: the whole song keeps everything, a
hand-built band-pass feature keeps its band and is specific, deconvnet beats random masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import auralise
from auralise.nets import zoo
from auralise.studies.faithfulness import band_spectrum, evaluate_layer

SR = 11025
BANDS = ((2, 20), (60, 90), (150, 200))  # STFT bins (n_fft 512): about 43-430 Hz, 1.3-1.9 kHz, 3.2-4.3 kHz


@zoo.register("test-bandpass")
class BandPass(nn.Module):
    """One conv layer whose 3 features each sum the magnitude of one band of STFT bins (a (257, 1) kernel), ReLU."""

    def __init__(self):
        super().__init__()
        self.config = {}
        self.conv = nn.Conv2d(1, len(BANDS), (257, 1))
        with torch.no_grad():
            self.conv.weight.zero_()
            self.conv.bias.zero_()
            for k, (lo, hi) in enumerate(BANDS):
                self.conv.weight[k, 0, lo:hi, 0] = 1.0

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


@pytest.fixture(scope="module")
def bandpass(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "bandpass.pt"
    fe = {"kind": "stft", "sr": SR, "n_fft": 512, "hop_length": 256, "compression": "linear", "layout": "BCFT"}
    auralise.save_model(BandPass(), path, frontend=fe)
    return auralise.Session(path, device="cpu")


@pytest.fixture(scope="module")
def demo_song_path():
    return "demo_audio/dance.ogg"


def test_the_whole_song_keeps_all_of_every_feature(bandpass, demo_song_path):
    song = bandpass.song(demo_song_path)
    result = evaluate_layer(bandpass, song, 1, waves=np.stack([song.y] * 3))
    np.testing.assert_allclose(result.retention, 1.0)
    np.testing.assert_allclose(result.specificity, 1.0)


def test_a_band_pass_feature_keeps_its_band_and_is_specific(bandpass, demo_song_path):
    song = bandpass.song(demo_song_path)
    result = evaluate_layer(bandpass, song, 1)
    # Choi's mask is the band scaled by a(t) / max a (peak-normalised): the feature's response on it is about
    # a(t)^2 / max a, so retention = sum a^4 / (max a^2 sum a^2), below 1 for any varying a(t)
    assert np.all((result.retention > 0.1) & (result.retention < 1.0)), result.retention
    assert np.all(result.specificity > 100), result.specificity  # the other bands hear almost nothing of it
    assert np.all(result.deletion < 0.5), result.deletion
    assert result.median_distinguishability() > 10  # three bands: very different spectra (dB)
    # the auralisation's energy sits in its band
    from auralise.studies.faithfulness import _auralisations

    waves, _ = _auralisations(bandpass, song, 1, [0, 1, 2])
    for k, (lo, hi) in enumerate(BANDS):
        power = np.mean(np.abs(bandpass.frontend.stft(waves[k])) ** 2, axis=1)
        assert power[lo:hi].sum() / power.sum() > 0.95


def test_deconvnet_beats_random_masks(demo_song_path):
    session = auralise.Session("models/choi2016-synth.pt", device="cpu")
    song = session.song(demo_song_path)
    features = list(range(0, 64, 8))
    real = evaluate_layer(session, song, 2, features)
    rng = np.random.default_rng(0)
    masks = rng.random((len(features), *song.X.shape)).astype(np.float32)
    random_waves = session.frontend.istft(masks * song.X[None], song.n_samples)
    random = evaluate_layer(session, song, 2, features, waves=random_waves)
    assert np.nanmedian(real.specificity) > np.nanmedian(random.specificity)
    assert np.nanmedian(real.distance_to_song) > np.nanmedian(random.distance_to_song)


def test_band_spectrum_removes_level():
    y = np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    a, b = band_spectrum(y, SR), band_spectrum(10 * y, SR)
    np.testing.assert_allclose(a, b, atol=1e-4)
    assert abs(a.mean()) < 1e-4 and a.shape == (38,)
