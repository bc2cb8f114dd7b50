"""Listening modes (issue 13): the contrast mask against a slow reference written here, the partition of the song
among a layer's features (its masks against a slow reference, and the layer's auralisations adding up to the song's
claimed cells on the Choi demo model), resynthesis at another sample rate (``--output-sr``, ``--above-band``), the
seeded units printed by the main command, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import auralise
from auralise.cli import main
from auralise.render.contrast import (
    KAPPA,
    PARTITION_TOLERANCE,
    MeanMask,
    WinnerMap,
    contrast_masks,
    distinct_masks,
    distinct_spectra,
    layer_references,
    partition_masks,
)
from auralise.render.rate import RateGrid
from auralise.render.resynth import NEVER_ACTIVE, NUMERICALLY_ZERO, ZERO_PEAK, render_waves

ROOT = Path(__file__).resolve().parents[1]


class Ran:
    def __init__(self, code: int, out: str, err: str):
        self.exit_code, self.output, self.err = code, out + err, err


def run(capsys, args: list) -> Ran:
    """``auralise ARGS`` in-process through the console entry point (exit code, stdout + stderr)."""
    with pytest.raises(SystemExit) as exc:
        main([str(a) for a in args])
    captured = capsys.readouterr()
    return Ran(exc.value.code, captured.out, captured.err)


def slow_contrast(G: np.ndarray, active: np.ndarray, picked: list[int]) -> np.ndarray:
    """C_f = max(M_f - KAPPA * mean of the active features' M_g, 0), peak 1: loops, float64."""
    masks = []
    for g in range(len(G)):
        R = np.maximum(G[g].astype(np.float64), 0)
        masks.append(R / R.max() if R.max() > 0 else R)
    mean = np.mean([masks[g] for g in range(len(G)) if active[g] and masks[g].max() > 0], axis=0)
    out = []
    for f in picked:
        C = np.maximum(masks[f] - KAPPA * mean, 0)
        out.append(C / C.max() if C.max() > 0 else C)
    return np.array(out)


def test_contrast_masks_match_the_slow_reference():
    rng = np.random.default_rng(0)
    G = rng.standard_normal((6, 9, 11)).astype(np.float32) * rng.uniform(0.1, 10, (6, 1, 1)).astype(np.float32)
    G[4] = -1.0  # never positive: a silent projection, left out of the mean
    active = np.array([1, 1, 1, 0, 1, 1], dtype=float)  # feature 3 is never active: left out too
    acc = MeanMask(zero_peak=ZERO_PEAK)
    acc.add(G[:4], active[:4])
    acc.add(G[4:], active[4:])  # in two batches, as the session feeds it
    assert acc.count == 4
    C = contrast_masks(G[[0, 2, 5]], acc.mean(), ZERO_PEAK)
    np.testing.assert_allclose(C, slow_contrast(G, active, [0, 2, 5]), atol=1e-6)


def test_contrast_through_the_session_is_the_slow_reference(choi_model, music_files):
    session = auralise.Session(choi_model, device="cpu", options=auralise.RenderOptions(resynth="contrast"))
    song = session.song(music_files["wav"])
    projection = session.project(song, 2, list(range(8)))
    G = session.frontend.to_grid(projection.D)
    active = projection.activation_max.double().numpy()
    rendered = session.render(song, projection.D[[1, 6]], activation_max=projection.activation_max[[1, 6]], layer=2)
    Y = slow_contrast(G, active > 0, [1, 6]) * song.X[None]
    expected = session.frontend.istft(Y.astype(np.complex64), song.n_samples)
    peaks = np.abs(expected).max(axis=1, keepdims=True)
    np.testing.assert_allclose(rendered.waves, 0.99 * expected / peaks, atol=2e-5)
    assert rendered.sr == session.frontend.sr


def test_contrast_of_features_that_share_nothing_is_their_mask():
    """Features on disjoint cells: the mean is M_f / K on f's cells, so C_f = M_f renormalised = Choi's mask."""
    fe = auralise.Frontend(sr=11025, n_fft=64, hop_length=16, compression="linear")
    rng = np.random.default_rng(1)
    y = rng.standard_normal(4000).astype(np.float32)
    X = fe.stft(y)
    G = np.zeros((3, *X.shape), dtype=np.float32)
    for k, (lo, hi) in enumerate(((1, 8), (10, 18), (20, 30))):
        G[k, lo:hi] = rng.uniform(0.1, 1.0, (hi - lo, X.shape[1]))
    acc = MeanMask(zero_peak=ZERO_PEAK)
    acc.add(G, np.ones(3))
    common = dict(frontend=fe, phase="original", length=len(y), normalize="none")
    masked = render_waves(X, G[:, None], mode="mask", **common)
    contrasted = render_waves(X, G[:, None], mode="contrast", reference=acc.mean(), **common)
    np.testing.assert_allclose(contrasted.waves, masked.waves, atol=1e-6)


def test_rate_grid_carries_time_frequency_and_the_band_above():
    fe = auralise.Frontend(sr=11025, n_fft=512, hop_length=256, compression="linear")
    G = np.zeros((1, fe.n_freq, 40), dtype=np.float32)
    G[0, 100, 20] = 1.0  # one cell: 2153 Hz, 0.464 s
    G[0, fe.n_freq // 2 :, 30] = 0.5  # the top octave at frame 30
    for above, top in (("extend", 0.5), ("silent", 0.0)):
        grid = RateGrid(fe, 44100, above_band=above)
        C = grid.carry(G, 40)[0]
        hz = np.arange(grid.out.n_freq) * 44100 / grid.out.n_fft
        f, t = np.unravel_index(np.argmax(C[:, :25]), C[:, :25].shape)
        assert abs(hz[f] - 100 * 11025 / 512) < 1.0
        assert t * grid.out.hop_length / 44100 == pytest.approx(20 * 256 / 11025)
        assert np.allclose(C[hz > 11025 / 2, 30], top, atol=1e-6)  # the mean of the top octave (all 0.5), or 0
        assert np.all(C[hz > 11025 / 2, 20] < 1e-6)  # the lone cell is below the top octave


def test_output_sr_original_keeps_the_recordings_band(tmp_path):
    """An all-ones projection at the file's own rate gives the 44.1 kHz song back, 8 kHz tone and all (extend);
    with --above-band silent the tone above the model's 5.5 kHz is gone."""
    sr = 44100
    t = np.arange(2 * sr) / sr
    y = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.3 * np.sin(2 * np.pi * 8000 * t)).astype(np.float32)
    path = tmp_path / "two_tones.wav"
    sf.write(path, y, sr, subtype="FLOAT")
    fe = auralise.Frontend(sr=11025, n_fft=512, hop_length=256, compression="linear")
    for above, keeps in (("extend", True), ("silent", False)):
        grid = RateGrid(fe, sr, above_band=above)
        X = grid.out.stft(y)
        D = np.ones((1, fe.n_freq, fe.n_frames(2 * 11025)), dtype=np.float32)
        rendered = render_waves(fe.stft(np.zeros(2 * 11025, np.float32)), D[:, None], frontend=fe, length=2 * 11025,
                                normalize="none", output=(grid, X, len(y)))  # fmt: skip
        assert rendered.sr == sr
        spectrum = np.abs(np.fft.rfft(rendered.waves[0]))
        freqs = np.fft.rfftfreq(len(y), 1 / sr)
        at = {f: spectrum[np.argmin(np.abs(freqs - f))] / spectrum.max() for f in (440, 8000)}
        assert at[440] > 0.9
        assert (at[8000] > 0.9) if keeps else (at[8000] < 1e-3)


def test_cli_output_sr_writes_at_the_files_rate_and_names_it(capsys, tmp_path, choi_model, music_files):
    out = tmp_path / "o"
    args = [str(choi_model), str(music_files["stereo44k"]), "--layer", "2", "--feature", "3", "--out", str(out)]
    r = run(capsys, [*args, "--output-sr", "original", "--resynth", "contrast", "--no-plot"])
    assert r.exit_code == 0, r.output
    wav = out / "layer2_feature3_contrast_origsr.wav"
    assert sf.info(wav).samplerate == 44100 and sf.info(wav).frames == 4 * 44100
    record = json.loads(wav.with_suffix(".json").read_text())
    assert record["options"]["output_sr"] == "original" and record["options"]["resynth"] == "contrast"
    assert record["audio"]["wav_sr"] == 44100 and record["audio"]["sr"] == 11025
    r = run(capsys, [*args, "--output-sr", "16000", "--above-band", "silent", "--no-plot"])
    assert r.exit_code == 0, r.output
    assert sf.info(out / "layer2_feature3_sr16000_nohigh.wav").samplerate == 16000


def test_output_sr_model_is_choi_unchanged(capsys, tmp_path, choi_model, music_files):
    """--output-sr original on a file at the model's rate is the model's grid: the same bytes as the default."""
    names = []
    for extra in ([], ["--output-sr", "original"]):
        out = tmp_path / f"o{len(extra)}"
        r = run(capsys, [str(choi_model), str(music_files["wav"]), "--layer", "3", "--feature", "1",
                                      "--out", str(out), "--no-plot", *extra])  # fmt: skip
        assert r.exit_code == 0, r.output
        names.append(next(out.glob("*.wav")))
    assert names[0].read_bytes() == names[1].read_bytes()


def test_select_max_prints_where_the_seeded_units_are(capsys, tmp_path, choi_model, music_files):
    r = run(capsys, [str(choi_model), str(music_files["wav"]), "--layer", "3", "--feature", "2",
                                  "--select", "topk:2", "--out", str(tmp_path / "s"), "--no-plot"])  # fmt: skip
    assert r.exit_code == 0, r.output
    line = next(x for x in r.output.splitlines() if "seeded at" in x)
    record = json.loads(next((tmp_path / "s").glob("*.json")).read_text())
    first = record["seeds"][0]
    assert line.startswith("layer 3 feature 2 seeded at ") and f"{first['time_in_file']:.2f} s" in line
    assert f"{first['hz']:.0f} Hz" in line


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--output-sr", "123"], "--output-sr must be model, original or a rate in Hz"),
        (["--output-sr", "fast"], "--output-sr must be model, original or a rate in Hz"),
        (["--above-band", "loud"], "Invalid value for '--above-band'"),
    ],
)
def test_bad_listening_options_are_one_line_usage_errors(capsys, tmp_path, choi_model, music_files, extra, message):
    r = run(capsys, [str(choi_model), str(music_files["wav"]), "--layer", "1", "--feature", "0",
                                  "--out", str(tmp_path / "b"), *extra])  # fmt: skip
    assert r.exit_code == 2 and message in r.output, r.output
    assert "Traceback" not in r.output and not (tmp_path / "b").exists()


@pytest.mark.parametrize("mode", ["contrast", "partition", "distinct"])
def test_the_atlas_refuses_the_layer_relative_modes(mode):
    from auralise.errors import BadParameterError
    from auralise.listening.atlas import AtlasOptions

    with pytest.raises(BadParameterError, match=mode):
        AtlasOptions(resynth=mode).check()


def test_export_records_seeds_and_the_page_plays_from_there(capsys, tmp_path, choi_model, music_files, browser):
    from conftest import open_page

    out = tmp_path / "x"
    r = run(capsys, ["export", choi_model, music_files["wav"], "--out", out, "--layers", "3", "--features", "0-2",
                     "--select", "topk:2", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    items = json.loads((out / "manifest.json").read_text())["songs"][0]["items"]
    seeds = [s for item in items for s in (item.get("seeds") or [])]
    assert seeds and all(0 <= s["time"] <= 4.0 and s["hz"] > 0 for s in seeds)
    with open_page(browser, out / "index.html") as page:
        buttons = page.locator("button.seek")
        assert buttons.count() == len(seeds)
        first = buttons.first
        want = float(first.get_attribute("data-time"))
        first.click()
        audio = first.locator("xpath=ancestor::article").locator("audio.feat")
        page.wait_for_function("(a) => a.currentTime > 0 || !a.paused", arg=audio.element_handle())
        assert abs(audio.evaluate("a => a.currentTime") - want) < 0.5


# ------------------------------------------------------------------------------------------------ partition


def slow_partition(G: np.ndarray, active: np.ndarray, picked: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """P_f = [N_f > 0 and N_f >= (1 - tol) max_g N_g], N_g = max(G_g, 0) / its mean over all cells, the maximum over
    the active features with a positive projection: loops, float64. Returns (P for ``picked``, W)."""
    normalised = []
    for g in range(len(G)):
        R = np.maximum(G[g].astype(np.float64), 0)
        normalised.append(R / R.mean() if R.max() > 0 else R)
    W = np.zeros(G.shape[1:])
    for g in range(len(G)):
        if active[g] and normalised[g].max() > 0:
            W = np.maximum(W, normalised[g])
    P = [(normalised[f] > 0) & (normalised[f] >= W * (1 - PARTITION_TOLERANCE)) for f in picked]
    return np.array(P, dtype=np.float64), W


def test_winner_map_in_batches_is_the_one_shot_and_the_slow_reference():
    rng = np.random.default_rng(2)
    G = rng.standard_normal((7, 9, 11)).astype(np.float32) * rng.uniform(0.1, 10, (7, 1, 1)).astype(np.float32)
    G[4] = -1.0  # never positive: a silent projection, takes no part
    active = np.array([1, 1, 1, 0, 1, 1, 1], dtype=float)  # feature 3 is never active: takes no part either
    batched, one_shot = WinnerMap(zero_peak=ZERO_PEAK), WinnerMap(zero_peak=ZERO_PEAK)
    for lo, hi in ((0, 2), (2, 5), (5, 7)):  # as the session feeds it
        batched.add(G[lo:hi], active[lo:hi])
    one_shot.add(G, active)
    assert batched.count == one_shot.count == 5
    assert batched.reference().dtype == np.float32 and batched.reference().shape == (9, 11)
    np.testing.assert_array_equal(batched.reference(), one_shot.reference())
    P, W = slow_partition(G, active, list(range(7)))
    np.testing.assert_allclose(batched.reference(), W, rtol=1e-5)
    np.testing.assert_array_equal(partition_masks(G, batched.reference(), ZERO_PEAK), P)
    with pytest.raises(auralise.AuraliseError, match="no projections yet"):
        WinnerMap(zero_peak=ZERO_PEAK).reference()


def test_partition_gives_each_feature_its_band():
    """Four features, each strong in its own band and weak elsewhere: each gets exactly its band; a never-active
    feature (however strong) and an all-zero one get nothing; rows nobody responds to are nobody's."""
    fe = auralise.Frontend(sr=11025, n_fft=64, hop_length=16, compression="linear")
    rng = np.random.default_rng(3)
    y = rng.standard_normal(3000).astype(np.float32)
    X = fe.stft(y)
    F, T = X.shape
    bands = ((0, 4), (4, 12), (12, 15), (15, 28))  # rows 28 to 32 are nobody's
    G = np.zeros((6, F, T), dtype=np.float32)
    for k, (lo, hi) in enumerate(bands):
        G[k, :28] = rng.uniform(0.01, 0.05, (28, T))
        G[k, lo:hi] = rng.uniform(0.8, 1.0, (hi - lo, T))
    G[4] = 5.0  # never active: takes no part, and its WAV is silence
    active = np.array([1, 1, 1, 1, 0, 1.0])  # feature 5's projection is all zero
    acc = WinnerMap(zero_peak=ZERO_PEAK)
    acc.add(G[:3], active[:3])
    acc.add(G[3:], active[3:])
    assert acc.count == 4
    P = partition_masks(G, acc.reference(), ZERO_PEAK)
    assert set(np.unique(P)) <= {0.0, 1.0}
    for k, (lo, hi) in enumerate(bands):
        band = np.zeros((F, T), dtype=np.float32)
        band[lo:hi] = 1.0
        np.testing.assert_array_equal(P[k], band)
    assert not P[5].any() and not acc.reference()[28:].any()
    assert P[:4].sum(axis=0).max() == 1.0  # disjoint
    rendered = render_waves(X, G[:, None], frontend=fe, mode="partition", length=len(y), normalize="none",
                            activation_max=active, reference=acc.reference())  # fmt: skip
    assert rendered.reasons[4] == NEVER_ACTIVE and rendered.reasons[5] == NUMERICALLY_ZERO
    assert not rendered.silent[:4].any()
    claimed = np.zeros((F, T), dtype=np.complex64)
    claimed[:28] = X[:28]
    np.testing.assert_allclose(rendered.waves.sum(axis=0), fe.istft(claimed[None], len(y))[0], atol=1e-5)
    with pytest.raises(auralise.AuraliseError, match="partition resynthesis needs the layer's reference"):
        render_waves(X, G[:, None], frontend=fe, mode="partition", length=len(y))


def near_ties(G: np.ndarray, active: np.ndarray) -> np.ndarray:
    """(F, T) bool: cells where two taking-part features' N are within PARTITION_TOLERANCE (both claim them)."""
    from auralise.render.contrast import mean_normalised

    N, loud = mean_normalised(G, ZERO_PEAK)
    top = np.sort(N[loud & active], axis=0)[-2:].astype(np.float64)
    return (top[0] > 0) & (top[0] >= top[1] * (1 - PARTITION_TOLERANCE))


def test_a_layers_partition_adds_up_to_the_songs_claimed_cells():
    """All 64 layer-1 features of the Choi demo model on 3 s of a demo song, --normalize none: their waves add up to
    the song's claimed cells (the iSTFT of X times the cells some feature claims); one projection of the layer
    makes the references of both layer-relative modes, cached per mode."""
    from auralise.session import layer_reference
    from auralise.studies.evaluation import _with_options

    session = auralise.Session(ROOT / "models" / "choi2016-synth.pt", device="cpu",
                               options=auralise.RenderOptions(resynth="partition", normalize="none"))  # fmt: skip
    song = session.song(ROOT / "demo_audio" / "dance.ogg", duration=3.0)
    projection = session.project(song, 1, list(range(64)))
    rendered = session.render(song, projection.D, activation_max=projection.activation_max, layer=1)
    W = layer_reference(session, song, 1)
    G = session.frontend.to_grid(projection.D)
    active = projection.activation_max.double().numpy() > 0
    claimed = W > 0
    covered = partition_masks(G, W, ZERO_PEAK)[active].sum(axis=0)
    ties = near_ties(G, active)
    assert claimed.mean() > 0.5 and ties.mean() < 1e-3  # most of the song is claimed; ties are rare
    np.testing.assert_array_equal(covered[~ties], claimed[~ties])  # each claimed cell once
    expected = session.frontend.istft((covered * song.X)[None].astype(np.complex64), song.n_samples)[0]
    total = rendered.waves.sum(axis=0)
    assert np.linalg.norm(total - expected) <= 1e-5 * np.linalg.norm(expected)
    if not ties.any():
        np.testing.assert_array_equal(covered, claimed)
    assert {key[0] for key in song.references} == {"partition", "contrast", "distinct"}
    contrast = _with_options(session, auralise.RenderOptions(resynth="contrast"))
    mean = MeanMask(zero_peak=ZERO_PEAK)
    mean.add(G, active)
    np.testing.assert_allclose(layer_reference(contrast, song, 1), mean.mean(), rtol=1e-6, atol=1e-9)


def test_partition_at_the_files_rate_adds_up_too(choi_model, music_files):
    """--output-sr original (44.1 kHz, four times the model's rate): the masks are made on the model's grid and
    carried, so the layer's waves add up to the song's own STFT times the carried claimed cells."""
    from auralise.session import layer_reference

    options = auralise.RenderOptions(resynth="partition", normalize="none", output_sr="original")
    session = auralise.Session(choi_model, device="cpu", options=options)
    song = session.song(music_files["stereo44k"])
    lay = session.layer(1)
    projection = session.project(song, 1, list(range(lay.channels)))
    rendered = session.render(song, projection.D, activation_max=projection.activation_max, layer=1)
    assert rendered.sr == 44100
    W = layer_reference(session, song, 1)
    G = session.frontend.to_grid(projection.D)
    active = projection.activation_max.double().numpy() > 0
    covered = partition_masks(G, W, ZERO_PEAK)[active].sum(axis=0)
    y_out, X_out = song.at_rate(44100)
    grid = RateGrid(session.frontend, 44100, above_band="extend")
    expected = grid.out.istft(grid.carry(covered[None], X_out.shape[1]) * X_out[None], len(y_out))[0]
    total = rendered.waves.sum(axis=0)
    assert rendered.waves.shape[1] == len(y_out) == 4 * 44100
    assert np.linalg.norm(total - expected) <= 1e-5 * np.linalg.norm(expected)


def test_cli_partition_writes_tagged_wavs(capsys, tmp_path, choi_model, music_files):
    from auralise.io.naming import parse_output_name

    out = tmp_path / "p"
    r = run(capsys, [choi_model, music_files["wav"], "--layer", "1", "--feature", "3", "--feature", "5",
                     "--resynth", "partition", "--out", out, "--no-plot"])  # fmt: skip
    assert r.exit_code == 0, r.output
    for f in (3, 5):
        wav = out / f"layer1_feature{f}_partition.wav"
        assert sf.info(wav).frames == 4 * 11025
        assert parse_output_name(wav.name).options["resynth"] == "partition"
        assert json.loads(wav.with_suffix(".json").read_text())["options"]["resynth"] == "partition"


@pytest.mark.parametrize("mode", ["distinct", "contrast"])  # partition's claims are distinct's
def test_a_streamed_export_equals_the_in_memory_one(capsys, tmp_path, choi_model, music_files, mode, monkeypatch):
    """A song streamed at the --memory budget: each part projects the whole layer, against every feature's peak and
    mean over the song from a first pass; the WAVs equal the in-memory export's to one PCM step."""
    from auralise.render import streaming

    layers, first_passes = [], []
    real, real_stats = streaming.stream_layer_relative, streaming._song_stats
    monkeypatch.setattr(streaming, "stream_layer_relative", lambda *a, **k: layers.append(a[2]) or real(*a, **k))
    monkeypatch.setattr(streaming, "_song_stats", lambda *a: first_passes.append(a[2][0][0]) or real_stats(*a))
    common = ["export", choi_model, music_files["wav"], "--layers", "1,3", "--features", "0,3,5", "--quiet",
              "--resynth", mode]  # fmt: skip
    r = run(capsys, [*common, "--out", tmp_path / "streamed", "--memory", "0.0005"])
    assert r.exit_code == 0, r.output
    assert sorted(set(layers)) == [1, 3] and first_passes == [1, 3]  # streamed; each layer's first pass once
    assert len(layers) > 2  # in groups, which reuse their layer's first pass
    assert run(capsys, [*common, "--out", tmp_path / "whole"]).exit_code == 0
    streamed, whole = (sorted((tmp_path / d).rglob("layer*.wav")) for d in ("streamed", "whole"))
    assert len(whole) == 6 and [p.name for p in streamed] == [p.name for p in whole]
    loud = 0
    for a, b in zip(streamed, whole):
        x, y = sf.read(a, dtype="int16")[0].astype(int), sf.read(b, dtype="int16")[0].astype(int)
        assert np.abs(x - y).max() <= 1, a.name
        loud += bool(np.abs(y).max() > 1000)
    assert loud >= 3  # not a comparison of silences


def slow_distinct(G: np.ndarray, active: np.ndarray) -> np.ndarray:
    """The distinct masks by loops in float64: the feature wins the cell (largest max(G, 0) / its mean among the
    active, non-zero features) and its peak-normalised mask exceeds the mean of theirs by more than 0.05."""
    K, F, T = G.shape
    R = np.maximum(G.astype(np.float64), 0)
    part = [k for k in range(K) if active[k] and R[k].max() > ZERO_PEAK]
    M = np.array([R[k] / R[k].max() if k in part else np.zeros((F, T)) for k in range(K)])
    N = np.array([R[k] / R[k].mean() if k in part else np.zeros((F, T)) for k in range(K)])
    mean = M[part].mean(axis=0)
    out = np.zeros((K, F, T), dtype=np.float32)
    for i in range(F):
        for j in range(T):
            best = max(N[k, i, j] for k in part)
            for k in part:
                out[k, i, j] = N[k, i, j] > 0 and N[k, i, j] >= best * (1 - PARTITION_TOLERANCE) and \
                    M[k, i, j] > mean[i, j] + 0.05  # fmt: skip
    return out


def test_distinct_masks_match_the_slow_reference():
    """Random projections of a layer (one feature never active, one all zero), references made in two batches."""
    rng = np.random.default_rng(11)
    G = rng.standard_normal((6, 9, 14)).astype(np.float32) * rng.uniform(0.1, 5, (6, 1, 1)).astype(np.float32)
    G[5] = 0.0
    active = np.array([1, 1, 0, 1, 1, 1.0])
    refs = layer_references(G, active, ZERO_PEAK)
    halves = [layer_references(G[:3], active[:3], ZERO_PEAK), layer_references(G[3:], active[3:], ZERO_PEAK)]
    assert refs["distinct"].shape == (2, 9, 14)
    np.testing.assert_array_equal(refs["distinct"][1], np.maximum(halves[0]["partition"], halves[1]["partition"]))
    D = distinct_masks(G, refs["distinct"], ZERO_PEAK)
    taking_part = active > 0  # a never-active feature's masks are not used: render_waves silences it
    np.testing.assert_array_equal(D[taking_part], slow_distinct(G, active)[taking_part])
    P = partition_masks(G, refs["partition"], ZERO_PEAK)
    assert 0 < D.sum() < P.sum() and np.all(D <= P)  # a subset of the partition's cells
    with pytest.raises(auralise.AuraliseError, match="distinct reference must have shape"):
        distinct_masks(G, refs["partition"], ZERO_PEAK)


def test_the_references_folded_together_are_each_accumulators_own_bit_for_bit():
    """add_to_all folds a batch into the mean mask and the winner map in one pass: the same float64 sums and
    float32 maxima, bit for bit, as each accumulator's own fold, over batches with a silent feature, a never
    active one, a barely active one and negative zeros."""
    from auralise.render.contrast import add_to_all, layer_accumulators, peak_normalised

    rng = np.random.default_rng(4)
    together, apart = layer_accumulators(zero_peak=ZERO_PEAK), layer_accumulators(zero_peak=ZERO_PEAK)
    for i in range(4):
        G = (rng.standard_normal((5, 31, 47)) ** 3).astype(np.float32)
        G[i], G[(i + 1) % 5] = 0.0, G[(i + 1) % 5] * np.float32(1e-36)
        G[(i + 2) % 5, :3] = -0.0
        active = np.ones(5)
        active[(i + 3) % 5] = -1.0
        add_to_all(together, G, active)
        M, loud = peak_normalised(G, ZERO_PEAK)
        for acc in apart.values():
            acc.add_peak_normalised(M, loud, active)
    for mode in ("contrast", "partition"):
        a, b = together[mode], apart[mode]
        assert a.count == b.count == 8  # 2 of 5 a batch: one silent, one never active, one numerically zero
        assert a.state.dtype == b.state.dtype and np.array_equal(a.state.view(np.uint8), b.state.view(np.uint8))


def test_distinct_spectra_are_the_masks_times_the_stft_bit_for_bit():
    """The default mode's spectra, masks made and applied in one pass: bit for bit (zero signs included) the masks
    times the STFT as numpy multiplies them, on real projections of the Choi demo model (a silent feature among
    them) and on an STFT with exact zeros of both signs; other shapes or dtypes take the numpy way."""
    session = auralise.Session(ROOT / "models" / "choi2016-synth.pt")
    song = session.song(ROOT / "demo_audio" / "dance.ogg", duration=4.0)
    G = session.frontend.to_grid(session.project(song, 2, list(range(12))).D)
    G[3] = 0.0
    refs = layer_references(G, np.ones(len(G)), ZERO_PEAK)
    X = song.X.astype(np.complex64)
    X[:5, :7], X[5, :9] = -0.0, complex(-0.0, 0.0)
    for spectrum in (X, np.asarray(song.X, dtype=np.complex64)):
        want = distinct_masks(G, refs["distinct"], ZERO_PEAK) * spectrum[None]
        got = distinct_spectra(G, refs["distinct"], ZERO_PEAK, spectrum)
        assert got.dtype == np.complex64 and np.count_nonzero(got) > 100
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    wide = distinct_spectra(G, refs["distinct"], ZERO_PEAK, X.astype(np.complex128))
    assert wide.dtype == np.complex128 and np.array_equal(wide, distinct_masks(G, refs["distinct"], ZERO_PEAK) * X)
    with pytest.raises(auralise.AuraliseError, match="distinct reference must have shape"):
        distinct_spectra(G, refs["partition"], ZERO_PEAK, X)


def test_cli_distinct_writes_tagged_wavs_that_keep_only_the_features_cells(capsys, tmp_path, choi_model, music_files):
    """Two layer-3 features through the CLI: the WAVs are the song on the distinct cells (normalize none), so each
    has less energy than the song and the partition's WAV of the same feature."""
    from auralise.io.naming import parse_output_name

    energies = {}
    for mode in ("distinct", "partition"):
        out = tmp_path / mode
        r = run(capsys, [choi_model, music_files["wav"], "--layer", "3", "--feature", "0", "--feature", "5",
                         "--resynth", mode, "--normalize", "none", "--out", out, "--no-plot"])  # fmt: skip
        assert r.exit_code == 0, r.output
        for f in (0, 5):
            wav = out / f"layer3_feature{f}{'' if mode == 'distinct' else '_' + mode}_nonorm.wav"  # the default
            assert parse_output_name(wav.name).options["resynth"] == mode
            energies[mode, f] = float(np.sum(sf.read(wav)[0] ** 2))
    song = float(np.sum(auralise.load_audio(music_files["wav"], sr=11025)[0] ** 2))
    for f in (0, 5):
        assert 0 < energies["distinct", f] < energies["partition", f] < song


def test_a_layer_relative_export_projects_each_feature_once(
    capsys, tmp_path, choi_model, music_files, monkeypatch, projected_features
):
    """export --resynth distinct: the layer's first group projects every feature of the layer once, the reference
    is made from those projections and the chosen features are rendered from them (none projected twice); the WAVs
    equal the single-song command's, whose reference comes from the session's own projections."""
    r = run(capsys, ["export", choi_model, music_files["wav"], "--out", tmp_path / "set", "--layers", "1",
                     "--features", "0-3,6", "--resynth", "distinct", "--quiet"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert sorted(projected_features) == list(range(8))  # each of the test model's 8 layer-1 features once
    monkeypatch.undo()
    r = run(capsys, [choi_model, music_files["wav"], "--layer", "1", "--feature", "3", "--feature", "6",
                     "--resynth", "distinct", "--out", tmp_path / "one", "--no-plot"])  # fmt: skip
    assert r.exit_code == 0, r.output
    song = next(p for p in (tmp_path / "set").iterdir() if p.is_dir())
    for f in (3, 6):
        exported, _ = sf.read(song / f"layer1_feature{f}.wav", dtype="int16")  # the manifest names the options
        single, _ = sf.read(tmp_path / "one" / f"layer1_feature{f}.wav", dtype="int16")  # the default mode
        np.testing.assert_array_equal(exported, single)
