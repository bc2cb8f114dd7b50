"""Tests of the synthetic music generator :mod:`auralise.demo.synth`."""

from __future__ import annotations

import json
import time

import librosa
import numpy as np
import pytest

from auralise.demo import synth
from auralise.errors import BadParameterError


def band_fraction(x: np.ndarray, sr: int, lo: float, hi: float) -> float:
    """Fraction of the energy of ``x`` between ``lo`` and ``hi`` Hz."""
    power = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    return float(power[(freqs >= lo) & (freqs < hi)].sum() / power.sum())


@pytest.mark.parametrize("style", synth.STYLES)
def test_same_seed_is_bit_identical(style):
    a = synth.generate(style, seconds=2.0, seed=7)
    b = synth.generate(style, seconds=2.0, seed=7)
    assert a.mix.tobytes() == b.mix.tobytes()
    assert all(a.stems[k].tobytes() == b.stems[k].tobytes() for k in synth.STEMS)
    assert a.params == b.params


@pytest.mark.parametrize("style", synth.STYLES)
def test_different_seeds_differ(style):
    a = synth.generate(style, seconds=2.0, seed=1)
    b = synth.generate(style, seconds=2.0, seed=2)
    assert not np.allclose(a.mix, b.mix)
    assert a.params["tempo"] != b.params["tempo"]


@pytest.mark.parametrize("style", synth.STYLES)
@pytest.mark.parametrize("sr", [11025, 16000, 22050])
def test_excerpt_shape_mix_and_stems(style, sr):
    ex = synth.generate(style, seconds=3.3, sr=sr, seed=3)
    n = round(3.3 * sr)
    assert (ex.sr, ex.style) == (sr, style)
    assert ex.mix.shape == (n,) and ex.mix.dtype == np.float32
    assert tuple(ex.stems) == synth.STEMS
    for stem in ex.stems.values():
        assert stem.shape == (n,) and stem.dtype == np.float32
        assert np.all(np.isfinite(stem))
    np.testing.assert_allclose(sum(ex.stems.values()), ex.mix, atol=1e-6)
    assert np.all(np.isfinite(ex.mix))
    assert 0.89 <= np.max(np.abs(ex.mix)) <= 0.9 + 1e-6
    json.dumps(ex.params)  # serialisable
    assert ex.params["seed"] == 3 and ex.params["style"] == style


@pytest.mark.parametrize("seconds", [0.001, 0.25, 1.0, 4.0, 10.5])
def test_exact_length(seconds):
    assert synth.generate("hiphop", seconds=seconds, sr=11025).mix.shape == (round(seconds * 11025),)


def test_tempo_ranges_and_params():
    for seed in range(5):
        for style, (lo, hi) in {"ballad": (60, 80), "dance": (120, 130), "hiphop": (85, 95)}.items():
            params = synth.generate(style, seconds=1.0, seed=seed).params
            assert lo <= params["tempo"] <= hi
            assert params["mode"] in ("major", "minor") and len(params["progression"]) == 4
            assert set(params["levels"]) == set(synth.STEMS)


def test_ballad_has_no_percussion_and_others_use_every_stem():
    for seed in range(3):
        ballad = synth.generate("ballad", seed=seed)
        for stem in ("kick", "snare", "hats"):
            assert not ballad.stems[stem].any()
            assert ballad.params["levels"][stem] is None
        for stem in ("bass", "chords", "melody"):
            assert np.sqrt(np.mean(ballad.stems[stem] ** 2)) > 1e-3
        for style in ("dance", "hiphop"):
            ex = synth.generate(style, seed=seed)
            for stem in ("kick", "snare", "hats", "bass", "chords"):
                assert np.sqrt(np.mean(ex.stems[stem] ** 2)) > 1e-3, (style, stem)


@pytest.mark.parametrize("sr", [11025, 22050])
def test_drum_stems_live_in_their_bands(sr):
    for style in ("dance", "hiphop"):
        for seed in range(3):
            ex = synth.generate(style, sr=sr, seed=seed)
            assert band_fraction(ex.stems["kick"], sr, 0, 150) > 0.95
            assert band_fraction(ex.stems["hats"], sr, 3000, sr / 2) > 0.95
            assert band_fraction(ex.stems["snare"], sr, 150, sr / 2) > 0.9
            assert band_fraction(ex.stems["bass"], sr, 0, 400) > 0.8


def test_no_energy_near_nyquist():
    """Pitched voices keep their partials below 0.45 sr: nothing folds back (little energy at the top)."""
    for style in synth.STYLES:
        ex = synth.generate(style, sr=11025, seed=4)
        for stem in ("bass", "chords", "melody"):
            assert band_fraction(ex.stems[stem], 11025, 0.46 * 11025, 11025 / 2) < 1e-4


def test_styles_differ_measurably():
    """Ballads have little low end and slow onsets; dance has a dense low end and more onsets."""

    def features(style, seed):
        ex = synth.generate(style, seed=seed)
        onsets = librosa.onset.onset_detect(y=ex.mix, sr=ex.sr, hop_length=256)
        spec = np.abs(librosa.stft(ex.mix, n_fft=512, hop_length=256))
        centroid = librosa.feature.spectral_centroid(S=spec, sr=ex.sr).mean()
        return band_fraction(ex.mix, ex.sr, 0, 150), len(onsets), centroid

    ballad = np.array([features("ballad", s) for s in range(4)])
    dance = np.array([features("dance", s) for s in range(4)])
    hiphop = np.array([features("hiphop", s) for s in range(4)])
    assert ballad[:, 0].max() < 0.3 < min(dance[:, 0].min(), hiphop[:, 0].min())
    assert ballad[:, 1].mean() < dance[:, 1].mean()
    assert hiphop[:, 2].mean() < dance[:, 2].mean()


def test_sequence_sections_and_crossfades():
    ex = synth.generate_sequence(["ballad", "dance", "hiphop"], seconds_each=2.0, sr=11025, seed=5)
    assert ex.style == "mix" and ex.mix.shape == (round(6.0 * 11025),)
    np.testing.assert_allclose(sum(ex.stems.values()), ex.mix, atol=1e-6)
    assert 0.89 <= np.max(np.abs(ex.mix)) <= 0.9 + 1e-6
    params = ex.params
    json.dumps(params)
    assert params["boundaries"] == [2.0, 4.0]
    assert [s["style"] for s in params["sections"]] == ["ballad", "dance", "hiphop"]
    assert [(s["start"], s["end"]) for s in params["sections"]] == [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)]
    sr = ex.sr
    kick = ex.stems["kick"]  # the ballad section has no drums until the crossfade into dance
    assert not kick[: round((2.0 - params["crossfade"]) * sr)].any() and kick[2 * sr : 4 * sr].any()
    again = synth.generate_sequence(["ballad", "dance", "hiphop"], seconds_each=2.0, sr=11025, seed=5)
    assert again.mix.tobytes() == ex.mix.tobytes()


@pytest.mark.parametrize("sr", [11025, 16000, 22050])
def test_tone_timbres_differ(sr):
    notes = [57 + i for i in synth.CHORDS["major"]]  # A major around A3
    centroids = {}
    for instrument in ("sine", "strings", "acoustic_guitar", "saxophone", "piano", "electric_guitar"):
        x = synth.tone(instrument, notes, seconds=1.0, sr=sr)
        assert x.shape == (sr,) and x.dtype == np.float32 and np.all(np.isfinite(x))
        assert np.max(np.abs(x)) == pytest.approx(0.9, abs=1e-6)
        spec = np.abs(librosa.stft(x, n_fft=512, hop_length=256))
        centroids[instrument] = float(librosa.feature.spectral_centroid(S=spec, sr=sr).mean())
    values = sorted(centroids.values())
    assert min(np.diff(values)) > 40, centroids  # all clearly distinct
    assert centroids["sine"] == values[0] and centroids["electric_guitar"] == values[-1]
    assert np.array_equal(synth.tone("piano", notes, seconds=0.5), synth.tone("piano", notes, seconds=0.5))
    assert synth.tone("sine", 69, seconds=0.1, sr=sr).shape == (round(0.1 * sr),)


def test_chords_table():
    assert synth.CHORDS["interval"] == (0, 7)
    assert synth.CHORDS["major"] == (0, 4, 7) and synth.CHORDS["minor"] == (0, 3, 7)
    assert set(synth.CHORDS) >= {"interval", "major", "minor", "sus4", "dom7", "maj7", "min7", "dim"}
    assert all(c[0] == 0 for c in synth.CHORDS.values())


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: synth.generate("jazz"), "ballad, dance, hiphop"),
        (lambda: synth.generate("dance", seconds=0), "seconds"),
        (lambda: synth.generate("dance", seconds=-1.0), "seconds"),
        (lambda: synth.generate("dance", seconds=float("nan")), "seconds"),
        (lambda: synth.generate("dance", sr=3000), "4000"),
        (lambda: synth.generate("dance", seed=-1), "seed"),
        (lambda: synth.generate_sequence([], seconds_each=1.0, sr=11025, seed=0), "non-empty"),
        (lambda: synth.generate_sequence(["dance", "polka"], seconds_each=1.0, sr=11025, seed=0), "polka"),
        (lambda: synth.generate_sequence(["dance"], seconds_each=0.0, sr=11025, seed=0), "seconds_each"),
        (lambda: synth.tone("kazoo", [60], seconds=1.0, sr=11025), "acoustic_guitar"),
        (lambda: synth.tone("piano", [], seconds=1.0, sr=11025), "midi_notes"),
        (lambda: synth.tone("piano", [130], seconds=1.0, sr=11025), "midi_notes"),
        (lambda: synth.tone("piano", [60], seconds=0.0, sr=11025), "seconds"),
        (lambda: synth.tone("piano", [60], seconds=1.0, sr=2000), "4000"),
    ],
)
def test_bad_arguments(call, match):
    with pytest.raises(BadParameterError, match=match):
        call()


def test_generation_time_is_reported():
    """Measures (does not assert tightly) the time of a 4-s excerpt at 11025 Hz; see ``-rP`` output."""
    times = {}
    for style in synth.STYLES:
        synth.generate(style, seed=0)
        runs = []
        for seed in range(5):
            start = time.perf_counter()
            synth.generate(style, seed=seed)
            runs.append(time.perf_counter() - start)
        times[style] = float(np.median(runs))
    print({k: f"{v * 1e3:.1f} ms" for k, v in times.items()})
    assert max(times.values()) < 2.0  # generous: only catches a pathological slowdown
