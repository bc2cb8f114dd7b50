"""Issue 16, items 1-3: where `auralise` writes (``OUT/<model>/<song>/``, the one naming template, the JSON record
beside each WAV), several songs, layers and features in one run (export's list syntax), and ``--offset``/
``--duration`` on every command that reads audio (a slice equals the same samples cut from a whole-file decode).

Everything runs real audio through a real model file, through :func:`auralise.cli.main`, and reads the files back.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import FRONTEND, SR, build_choi_small
from test_cli import assert_error, listing, run_cli, run_ok, wrote

from auralise import choices
from auralise.errors import BadParameterError, OutputError
from auralise.io.audio import load_audio
from auralise.io.naming import DEFAULT_OPTIONS, option_tags, output_folder, output_name, parse_output_name


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def long_song(tmp_path_factory) -> Path:
    """Ten seconds of synthetic music at the model's rate, 16-bit PCM (so a cut of it is the same samples)."""
    from auralise.demo import synth

    path = tmp_path_factory.mktemp("long") / "long song.wav"
    sf.write(path, synth.generate("dance", seconds=10.0, sr=SR, seed=5).mix, SR, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def other_model(tmp_path_factory) -> Path:
    """A second model file (other weights, other stem) with the same architecture and front-end."""
    from auralise import save_model

    path = tmp_path_factory.mktemp("models2") / "choi_other.pt"
    return save_model(build_choi_small(seed=7), path, frontend=FRONTEND, labels=[f"class{i}" for i in range(10)])


# --------------------------------------------------------------------------- 1. the naming template


def test_naming_template_reads_back_for_every_option_combination() -> None:
    selects = ["map", "max", "topk:1", "topk:3", "topk:12"]
    rates = [*choices.OUTPUT_RATES, "44100", "16000"]
    seen = set()
    for values in itertools.product(choices.METHODS, selects, choices.TAPS, choices.RESYNTH_MODES, choices.PHASES,
                                    choices.NORMALISATIONS, rates, choices.ABOVE_BANDS):  # fmt: skip
        options = dict(zip(DEFAULT_OPTIONS, values))
        name = output_name(3, 38, "wav", options)
        back = parse_output_name(name)
        assert (back.layer, back.feature, back.options, back.ext) == (3, 38, options, "wav")
        seen.add(name)
    n_values = len(choices.METHODS) * 3 * len(choices.RESYNTH_MODES) * 2 * 2 * len(rates) * 2
    assert len(seen) == len(selects) * n_values  # no two option sets share a name
    # the defaults keep the plain name (README, export layouts and pinned sums); others are named
    assert output_name(3, 38, "wav", DEFAULT_OPTIONS) == output_name(3, 38, "wav") == "layer3_feature38.wav"
    assert output_name(3, 38, "wav", {"method": "guided", "select": "max"}) == "layer3_feature38_guided_max.wav"
    assert option_tags({"select": "topk:3", "tap": "conv", "normalize": "none"}) == ["top3", "conv", "nonorm"]


@pytest.mark.parametrize(
    "name",
    ["layer3_feature38_max_guided.wav", "layer3_feature38_bogus.wav", "layer3_feature38_top0.wav",
     "layer3_feature38_max_max.wav", "layer3_feature38_top03.wav", "feature38.wav", "layer3_feature38"],
)  # fmt: skip
def test_names_outside_the_template_are_refused(name: str) -> None:
    with pytest.raises(BadParameterError, match="is not an output name"):
        parse_output_name(name)


def test_folder_template() -> None:
    assert output_folder("auralised/{model}/{song}", model="m", song="s") == Path("auralised/m/s")
    assert output_folder("plain", model="m", song="s") == Path("plain")
    assert output_folder("a/{{x}}/{song}", model="m", song="s") == Path("a/{x}/s")
    for bad in ("a/{x}", "a/{song!r}", "a/{", "a/{}"):
        with pytest.raises(BadParameterError, match="--out"):
            output_folder(bad, model="m", song="s")


# --------------------------------------------------------------------------- 1. the layout of runs


def test_default_layout_keeps_models_and_methods_apart(capsys, tmp_path, monkeypatch, choi_model, other_model,
                                                       music_files) -> None:  # fmt: skip
    """The runs that collided before (another model, another method, same song) now all land, side by side."""
    monkeypatch.chdir(tmp_path)
    song = music_files["ogg"]  # dance.ogg
    run_ok(capsys, choi_model, song, "--layer", 1, "--feature", 2, "--no-plot")
    run_ok(capsys, choi_model, song, "--layer", 1, "--feature", 2, "--no-plot", "--method", "guided")
    out, _ = run_ok(capsys, other_model, song, "--layer", 1, "--feature", 2, "--no-plot")
    assert wrote(out) == [str(Path("auralised/choi_other/dance/layer1_feature2.wav")),
                          str(Path("auralised/choi_other/dance/layer1_feature2.json"))]  # fmt: skip
    files = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert files == [
        "auralised/choi_other/dance/layer1_feature2.json",
        "auralised/choi_other/dance/layer1_feature2.wav",
        "auralised/choi_small/dance/layer1_feature2.json",
        "auralised/choi_small/dance/layer1_feature2.wav",
        "auralised/choi_small/dance/layer1_feature2_guided.json",
        "auralised/choi_small/dance/layer1_feature2_guided.wav",
    ]
    a, b = (sf.read(tmp_path / f"auralised/{m}/dance/layer1_feature2.wav")[0] for m in ("choi_small", "choi_other"))
    assert not np.allclose(a, b)  # two models, two sounds, two files
    # the same run again collides with itself, and --force overwrites
    code, _, err = run_cli(capsys, choi_model, song, "--layer", 1, "--feature", 2, "--no-plot")
    assert_error(code, err, 2, "layer1_feature2.wav already exists", "--force")
    run_ok(capsys, choi_model, song, "--layer", 1, "--feature", 2, "--no-plot", "--force")


def test_out_template_and_literal_folder(capsys, tmp_path, choi_model, music_files, long_song) -> None:
    template = str(tmp_path / "res" / "{model}" / "x-{song}")
    out, _ = run_ok(capsys, choi_model, music_files["wav"], long_song, "-l", 2, "-f", 1, "--no-plot", "--out", template)
    assert listing(tmp_path / "res" / "choi_small") == ["x-dance", "x-long song"]
    assert len(wrote(out)) == 4
    # without {song}, two songs would share a folder: refused before anything is read or written
    code, _, err = run_cli(capsys, choi_model, music_files["wav"], long_song, "-l", 2, "-f", 1, "--out",
                           tmp_path / "one")  # fmt: skip
    assert_error(code, err, 2, "would all write into", "{song}")
    assert not (tmp_path / "one").exists()
    code, _, err = run_cli(capsys, choi_model, music_files["wav"], "-l", 2, "-f", 1, "--out", tmp_path / "{sng}")
    assert_error(code, err, 2, "unknown placeholder {sng}", "{model}", "{song}")


def test_json_record_beside_each_wav(capsys, tmp_path, choi_model, music_files) -> None:
    from auralise.io.digest import file_sha256
    from auralise.studies.ranking import rank_features

    out_dir = tmp_path / "out"
    run_ok(capsys, choi_model, music_files["wav"], "-l", 2, "-f", "0,5", "--out", out_dir, "--select", "topk:2")
    assert listing(out_dir) == [f"layer2_feature{f}_top2.{e}" for f in (0, 5) for e in ("json", "png", "wav")]
    ranks = {r.feature: r for r in rank_features(choi_model, music_files["wav"], layers=[2], device="cpu")[2]}
    for f in (0, 5):
        record = json.loads((out_dir / f"layer2_feature{f}_top2.json").read_text())
        assert record["format"] == "auralise-feature" and record["version"] == 1
        assert record["model"] == {"path": str(choi_model), "sha256": file_sha256(choi_model), "name": "choi2016"}
        assert record["audio"]["sha256"] == file_sha256(music_files["wav"])
        assert record["audio"]["offset"] == 0.0 and record["audio"]["duration"] is None
        assert record["audio"]["seconds"] == pytest.approx(4.0)
        assert record["options"] == {**DEFAULT_OPTIONS, "select": "topk:2"}
        assert (record["layer"], record["layer_path"], record["feature"]) == (2, "features.4", f)
        # the statistics are the ranking's (measured by another path through the engine)
        assert record["activation_max"] == pytest.approx(ranks[f].maximum, rel=1e-6)
        assert record["activation_energy"] == pytest.approx(ranks[f].energy, rel=1e-5)
        assert record["silent"] is False and record["silent_reason"] is None
        # peak normalisation: the WAV's peak is 0.99, reached by the recorded gain
        assert record["gain"] > 0 and np.abs(sf.read(out_dir / record["files"]["wav"])[0]).max() == pytest.approx(
            0.99, abs=1e-3
        )
        assert record["files"] == {e: f"layer2_feature{f}_top2.{e}" for e in ("wav", "png", "json")}
        seeds = record["seeds"]
        assert len(seeds) == 2 and seeds[0]["activation"] == pytest.approx(record["activation_max"])
        assert seeds[0]["activation"] >= seeds[1]["activation"] > 0
        for seed in seeds:
            assert 0 <= seed["time"] <= 4.0 and seed["time_in_file"] == seed["time"]
            assert 0 <= seed["hz"] <= SR / 2


@pytest.mark.parametrize("offset", [0.0, 1.5])
def test_seeded_position_is_where_the_projection_is(capsys, tmp_path, choi_model, long_song, offset) -> None:
    """--select max at layer 1 (3x3 conv and 2x2 pool: a 4x4 field): the deconvnet projection of the single seeded
    unit is non-zero only inside its receptive field, so its support's centre is the recorded time and frequency."""
    from auralise.session import RenderOptions, Session

    out_dir = tmp_path / "out"
    args = ["-l", 1, "-f", 3, "--select", "max", "--out", out_dir, "--no-plot", "--offset", offset, "--duration", 4]
    run_ok(capsys, choi_model, long_song, *args)
    record = json.loads((out_dir / "layer1_feature3_max.json").read_text())
    (seed,) = record["seeds"]
    session = Session(choi_model, device="cpu", options=RenderOptions(select="max"))
    song = session.song(long_song, offset=offset, duration=4.0)
    D = session.project(song, 1, [3]).D[0, 0].numpy()  # (F, T)
    bins, frames = np.nonzero(D)
    hop, bin_hz = FRONTEND["hop_length"], SR / FRONTEND["n_fft"]
    assert frames.max() - frames.min() < 4 and bins.max() - bins.min() < 4  # one unit's field
    assert seed["time"] == pytest.approx((frames.min() + frames.max()) / 2 * hop / SR, abs=1.5 * hop / SR)
    assert seed["hz"] == pytest.approx((bins.min() + bins.max()) / 2 * bin_hz, abs=1.5 * bin_hz)
    assert record["audio"]["offset"] == pytest.approx(offset, abs=0.5 / SR)  # on the sample grid
    assert seed["time_in_file"] == pytest.approx(seed["time"] + record["audio"]["offset"], abs=1e-6)


def test_json_is_all_or_nothing_and_follows_force(capsys, tmp_path, monkeypatch, choi_model, music_files) -> None:
    import auralise.listening.single as single

    out_dir = tmp_path / "out"
    args = [choi_model, music_files["wav"], "-l", 1, "-f", "0,1", "--out", out_dir, "--no-plot"]
    real, calls = single._stage_json, []

    def fail_second(*a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OutputError("cannot write layer1_feature1.json: No space left on device")
        return real(*a, **k)

    monkeypatch.setattr(single, "_stage_json", fail_second)
    code, out, err = run_cli(capsys, *args)
    assert_error(code, err, 2, "No space left on device")
    assert out == "" and not out_dir.exists()  # no WAV, no JSON, no folder
    monkeypatch.undo()
    (out_dir).mkdir()
    (out_dir / "layer1_feature1.json").write_text("mine")  # an existing record blocks the run like a WAV
    code, _, err = run_cli(capsys, *args)
    assert_error(code, err, 2, "layer1_feature1.json already exists", "--force")
    assert listing(out_dir) == ["layer1_feature1.json"]
    run_ok(capsys, *args, "--force")
    assert json.loads((out_dir / "layer1_feature1.json").read_text())["feature"] == 1


# --------------------------------------------------------------------------- 2. several songs, layers, features


def test_feature_lists_and_ranges_equal_repeated_features(capsys, tmp_path, choi_model, music_files) -> None:
    song = music_files["wav"]
    run_ok(capsys, choi_model, song, "-l", 3, "-f", 1, "-f", 2, "--out", tmp_path / "repeated", "--no-plot")
    run_ok(capsys, choi_model, song, "-l", 3, "-f", "1,2", "--out", tmp_path / "list", "--no-plot")
    run_ok(capsys, choi_model, song, "-l", 3, "-f", "0-3", "--out", tmp_path / "range", "--no-plot")
    for f in (1, 2):
        name = f"layer3_feature{f}.wav"
        assert (
            digest(tmp_path / "list" / name)
            == digest(tmp_path / "repeated" / name)
            == digest(tmp_path / "range" / name)
        )
    assert listing(tmp_path / "range") == [f"layer3_feature{f}.{e}" for f in range(4) for e in ("json", "wav")]


def test_several_layers_and_all_and_top(capsys, tmp_path, choi_model, music_files) -> None:
    from auralise.studies.ranking import rank_features

    song = music_files["wav"]
    run_ok(capsys, choi_model, song, "--layer", "1,3", "-f", 0, "--out", tmp_path / "two", "--no-plot")
    run_ok(capsys, choi_model, song, "--layer", 3, "-f", 0, "--out", tmp_path / "one", "--no-plot")
    assert listing(tmp_path / "two") == [f"layer{n}_feature0.{e}" for n in (1, 3) for e in ("json", "wav")]
    assert digest(tmp_path / "two" / "layer3_feature0.wav") == digest(tmp_path / "one" / "layer3_feature0.wav")
    run_ok(capsys, choi_model, song, "--layer", "2-3", "-f", "all", "--out", tmp_path / "all", "--no-plot")
    assert len(listing(tmp_path / "all")) == 2 * 8 * 2
    with pytest.MonkeyPatch.context() as patch:  # features go batch by batch: the same files
        patch.setattr("auralise.listening.single.BATCH", 3)
        run_ok(capsys, choi_model, song, "--layer", "2-3", "-f", "all", "--out", tmp_path / "batches", "--no-plot")
    for name in listing(tmp_path / "all"):
        if name.endswith(".wav"):
            assert digest(tmp_path / "batches" / name) == digest(tmp_path / "all" / name), name
    run_ok(capsys, choi_model, song, "--layer", "features.0", "-l", 4, "-f", "top:2", "--out", tmp_path / "top",
           "--no-plot")  # fmt: skip
    ranked = rank_features(choi_model, song, layers=[1, 4], device="cpu")
    expected = sorted(
        f"layer{n}_feature{r.feature}.{e}" for n in (1, 4) for r in ranked[n][:2] for e in ("json", "wav")
    )
    assert listing(tmp_path / "top") == expected


def test_several_songs_each_in_its_folder(capsys, tmp_path, monkeypatch, choi_model, music_files, long_song) -> None:
    monkeypatch.chdir(tmp_path)
    twin = tmp_path / "elsewhere" / "dance.wav"  # the same stem as music_files["wav"]: dance, dance-2
    twin.parent.mkdir()
    sf.write(twin, sf.read(long_song)[0][: 4 * SR], SR, subtype="PCM_16")
    out, err = run_ok(capsys, choi_model, music_files["wav"], twin, music_files["stereo44k"], "-l", 2, "-f", 3,
                      "--no-plot")  # fmt: skip
    assert sorted(listing(tmp_path / "auralised" / "choi_small")) == ["dance", "dance-2", "stereo44k"]
    assert "note: stereo44k: downmixed 2 channels to mono" in err  # which song a note is about
    assert len(wrote(out)) == 6
    # each song's files equal those of a run on that song alone
    for song, folder in ((music_files["wav"], "dance"), (twin, "dance-2"), (music_files["stereo44k"], "stereo44k")):
        run_ok(capsys, choi_model, song, "-l", 2, "-f", 3, "--no-plot", "--out", tmp_path / "alone" / folder)
        assert digest(tmp_path / "alone" / folder / "layer2_feature3.wav") == digest(
            tmp_path / "auralised" / "choi_small" / folder / "layer2_feature3.wav"
        )


def test_an_unreadable_song_stops_the_run_before_any_song_is_written(capsys, tmp_path, choi_model,
                                                                     music_files) -> None:  # fmt: skip
    bad = tmp_path / "notes.wav"
    bad.write_text("not audio\n" * 50)
    template = str(tmp_path / "out" / "{song}")
    code, out, err = run_cli(capsys, choi_model, music_files["wav"], bad, "-l", 1, "-f", 0, "--out", template)
    assert_error(code, err, 2, "notes.wav")
    assert out == "" and not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "args, phrases",
    [
        (["-l", 2, "-f", "3-1"], ["--feature", "'3-1'"]),
        (["-l", 2, "-f", "all,3"], ["--feature", "'all,3'"]),
        (["-l", 2, "-f", "top:0"], ["--feature", "top:K"]),
        (["-l", 2, "-f", "0-8"], ["feature 8 is out of range", "0-7"]),
        (["-l", "1,9", "-f", 0], ["layer 9 is out of range", "1-5"]),
        (["-l", "1,", "-f", 0], ["--layer", "'1,'"]),
        (["-l", "features.3", "-f", 0], ["no convolution layer named 'features.3'"]),
    ],
)
def test_bad_layer_and_feature_lists(capsys, tmp_path, choi_model, music_files, args, phrases) -> None:
    code, out, err = run_cli(capsys, choi_model, music_files["wav"], *args, "--out", tmp_path / "out")
    assert_error(code, err, 2, *phrases)
    assert out == "" and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 3. --offset / --duration


@pytest.mark.parametrize("fmt", ["wav", "flac", "ogg", "mp3"])
def test_a_slice_is_the_same_samples_as_a_cut_of_the_whole_file(tmp_path, music, fmt) -> None:
    subtype = {"wav": "PCM_16", "flac": "PCM_16", "ogg": "VORBIS", "mp3": "MPEG_LAYER_III"}[fmt]
    path = tmp_path / f"song.{fmt}"
    sf.write(path, music, SR, subtype=subtype)
    whole, _ = load_audio(path, sr=SR)
    n = len(whole)
    tolerance = 1e-6 if fmt == "mp3" else 0.0  # libmpg123's float rounding after a seek; the rest are exact
    # ... including the last page of an Ogg Vorbis file, where libsndfile's own seek lands off
    for start, count in ((0, 1000), (SR // 3, SR), (2 * SR + 17, SR // 2), (n - 2000, 1500), (n - 300, None)):
        duration = None if count is None else count / SR
        part, info = load_audio(path, sr=SR, offset=start / SR, duration=duration)
        expected = whole[start:] if count is None else whole[start : start + count]
        assert len(part) == len(expected) and round(info.offset * SR) == start
        np.testing.assert_allclose(part, expected, rtol=0, atol=tolerance)
        assert info.notes[0] == f"read {start / SR:.3f}-{(start + len(expected)) / SR:.3f} s of the file " \
                                "(--offset/--duration)"  # fmt: skip


@pytest.mark.parametrize("target", [SR, 16000, 22050])
def test_a_resampled_slice_equals_the_resampled_whole_away_from_its_edges(tmp_path, target) -> None:
    from auralise.demo import synth

    path = tmp_path / "song44k.wav"
    sf.write(path, synth.generate("ballad", seconds=6.0, sr=44100, seed=3).mix, 44100, subtype="FLOAT")
    whole, _ = load_audio(path, sr=target)
    for offset, duration in ((1.0, 2.0), (2.5, 1.5), (0.3127, 3.3), (4.2, None)):
        part, info = load_audio(path, sr=target, offset=offset, duration=duration)
        start = info.offset * target
        assert start == pytest.approx(round(start), abs=1e-6)  # on both sample grids
        assert abs(info.offset - offset) <= 0.5 * 441 / 44100  # moved by at most half a common step (10 ms at 16 k)
        cut = whole[round(start) : round(start) + len(part)]
        assert abs(len(cut) - len(part)) <= 1  # the last sample may round either way
        m, edge = min(len(cut), len(part)), 128  # the resampler's filter reaches under 100 samples into the part
        np.testing.assert_allclose(part[edge : m - edge], cut[edge : m - edge], rtol=0, atol=1e-5)


def test_only_the_slice_is_decoded(tmp_path, monkeypatch, long_song) -> None:
    import soundfile

    frames = []
    real = soundfile.SoundFile.read

    def counting(self, frames_=-1, *a, **k):
        data = real(self, frames_, *a, **k)
        frames.append(len(data))
        return data

    monkeypatch.setattr(soundfile.SoundFile, "read", counting)
    y, _ = load_audio(long_song, sr=SR, offset=6.0, duration=1.5)
    assert len(y) == round(1.5 * SR) and sum(frames) == round(1.5 * SR)  # a 10-s file: 1.5 s decoded
    ogg = tmp_path / "long.ogg"
    sf.write(ogg, sf.read(long_song)[0], SR, subtype="VORBIS")
    frames.clear()
    y, _ = load_audio(ogg, sr=SR, offset=6.0, duration=1.5)
    assert len(y) == round(1.5 * SR) and sum(frames) < 9 * SR  # lossy: the preroll too, never the whole file


def test_run_on_a_slice_equals_a_run_on_the_cut_file(capsys, tmp_path, choi_model, long_song) -> None:
    y, _ = sf.read(long_song, dtype="int16")
    cut = tmp_path / "cut.wav"
    sf.write(cut, y[3 * SR : 7 * SR], SR, subtype="PCM_16")
    args = ["-l", 3, "-f", "2,5", "--no-plot"]
    _, err = run_ok(capsys, choi_model, long_song, *args, "--out", tmp_path / "slice", "--offset", 3, "--duration", 4)
    assert "note: read 3.000-7.000 s of the file (--offset/--duration)" in err
    run_ok(capsys, choi_model, cut, *args, "--out", tmp_path / "cut")
    for f in (2, 5):
        assert digest(tmp_path / "slice" / f"layer3_feature{f}.wav") == digest(
            tmp_path / "cut" / f"layer3_feature{f}.wav"
        )
    record = json.loads((tmp_path / "slice" / "layer3_feature2.json").read_text())
    assert record["audio"]["offset"] == 3.0 and record["audio"]["duration"] == 4.0
    assert record["audio"]["seconds"] == 4.0
    assert record["audio"]["notes"] == ["read 3.000-7.000 s of the file (--offset/--duration)"]
    # a duration past the end reads to the end, and says so
    _, err = run_ok(capsys, choi_model, long_song, *args, "--out", tmp_path / "end", "--offset", 8, "--duration", 5)
    assert "note: --duration 5 s runs past the end of the file: read up to its end" in err
    assert sf.info(tmp_path / "end" / "layer3_feature2.wav").frames == 2 * SR


def test_export_rank_tag_and_grid_on_a_slice(capsys, tmp_path, choi_model, long_song) -> None:
    y, _ = sf.read(long_song, dtype="int16")
    cut = tmp_path / "cut.wav"
    sf.write(cut, y[2 * SR : 6 * SR], SR, subtype="PCM_16")
    part = ["--offset", 2, "--duration", 4]

    out = tmp_path / "set"
    run_ok(capsys, "export", choi_model, long_song, "--out", out, "--layers", 2, "--features", "0-1", "--quiet", *part)
    manifest = json.loads((out / "manifest.json").read_text())
    assert (manifest["options"]["offset"], manifest["options"]["duration"]) == (2.0, 4.0)
    (entry,) = manifest["songs"]
    assert (entry["offset"], entry["duration"]) == (2.0, 4.0)
    assert "read 2.000-6.000 s of the file (--offset/--duration)" in entry["notes"]
    np.testing.assert_array_equal(sf.read(out / entry["original"]["wav"], dtype="int16")[0], y[2 * SR : 6 * SR])
    run_ok(capsys, "export", choi_model, cut, "--out", tmp_path / "cutset", "--layers", 2, "--features", "0-1",
           "--quiet")  # fmt: skip
    for item in entry["items"]:
        name = Path(item["wav"]).name
        assert digest(out / item["wav"]) == digest(tmp_path / "cutset" / "cut" / name)
    # a resumed export must use the same part of the songs
    code, _, err = run_cli(capsys, "export", choi_model, long_song, "--out", out, "--layers", 2, "--features", "0-1",
                           "--quiet", "--resume", "--offset", 1)  # fmt: skip
    assert_error(code, err, 2, "--offset")

    out_slice, _ = run_ok(capsys, "rank", choi_model, long_song, "--json", "--layer", 3, *part)
    out_cut, _ = run_ok(capsys, "rank", choi_model, cut, "--json", "--layer", 3)
    sliced, whole_cut = json.loads(out_slice), json.loads(out_cut)
    assert (sliced["offset"], sliced["duration"]) == (2.0, 4.0)
    assert sliced["layers"] == whole_cut["layers"]

    out_slice, _ = run_ok(capsys, "tag", choi_model, long_song, "--json", *part)
    out_cut, _ = run_ok(capsys, "tag", choi_model, cut, "--json")
    sliced, whole_cut = json.loads(out_slice), json.loads(out_cut)
    assert (sliced["offset"], sliced["duration"]) == (2.0, 4.0)
    assert sliced["mean"] == pytest.approx(whole_cut["mean"], abs=1e-6)

    figure = tmp_path / "grid.png"
    out, _ = run_ok(capsys, "figure", "grid", choi_model, long_song, "--features", "1-0,3-2", "--out", figure, *part)
    assert figure.is_file() and figure.stat().st_size > 10_000


def test_atlas_on_a_slice_of_every_song(capsys, tmp_path, choi_model, long_song, music_files) -> None:
    out = tmp_path / "atlas"
    args = ["atlas", choi_model, long_song, music_files["wav"], "--out", out, "--layers", 2, "--features", "0,3",
            "--top", 2, "--quiet", "--offset", 1, "--duration", 2.5]  # fmt: skip
    run_ok(capsys, *args)
    atlas = json.loads((out / "atlas.json").read_text())
    assert (atlas["options"]["offset"], atlas["options"]["duration"]) == (1.0, 2.5)
    assert sorted(s["seconds"] for s in atlas["songs"]) == [2.5, 2.5]
    excerpts = [x for f in atlas["features"] for x in f["excerpts"]]
    assert excerpts and all(1.0 <= x["time"] <= 3.5 and x["start"] >= 1.0 for x in excerpts)  # the file's seconds
    for x in excerpts:  # an excerpt lies inside the part that was read
        assert sf.info(out / x["original_wav"]).duration <= 2.5 + 1e-3
    # a part past the end of one song skips that song, with the reason
    code, _, err = run_cli(capsys, *args[:-4], "--offset", 5, "--force")
    assert code == 0, err
    atlas = json.loads((out / "atlas.json").read_text())
    assert [s["path"] for s in atlas["songs"]] == [str(long_song)]
    assert "past the end" in atlas["skipped"][0]["reason"]


@pytest.mark.parametrize(
    "command",
    [[], ["export", "--out", "{tmp}/set"], ["rank"], ["tag"], ["figure", "grid", "--features", "1-0", "--out",
     "{tmp}/g.png"], ["atlas", "--out", "{tmp}/atlas"]],
    ids=["run", "export", "rank", "tag", "grid", "atlas"],
)  # fmt: skip
@pytest.mark.parametrize(
    "part, phrases",
    [
        (["--offset", -1], ["--offset must be a number of seconds >= 0", "-1"]),
        (["--duration", 0], ["--duration must be a number of seconds > 0", "0"]),
        (["--duration", "nan"], ["--duration must be a number of seconds > 0", "nan"]),
        (["--offset", "x"], ["--offset", "'x' is not a valid float"]),
        (["--offset", 30], ["--offset 30 s is past the end of", "4.000 s long"]),
    ],
    ids=["negative", "zero", "nan", "text", "past-end"],
)
def test_bad_offset_and_duration_are_one_line(capsys, tmp_path, choi_model, music_files, command, part, phrases):
    if command[:1] == ["atlas"] and part == ["--offset", 30]:
        pytest.skip("the atlas skips a song it cannot read (tested above); it never fails on one")
    words = 2 if command[:1] == ["figure"] else 1  # the command's own words come before MODEL AUDIO
    head, options = command[:words], [str(o).replace("{tmp}", str(tmp_path)) for o in command[words:]]
    extra = ["-l", 1, "-f", 0, "--out", tmp_path / "run"] if not command else []
    code, out, err = run_cli(capsys, *head, choi_model, music_files["wav"], *options, *extra, *part)
    assert_error(code, err, 2, *phrases)
    assert out == "" and [p for p in tmp_path.rglob("*") if p.is_file()] == []
