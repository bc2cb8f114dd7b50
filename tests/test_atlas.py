"""The feature atlas on a generated corpus with known stems: top-K against brute force, the model card's detectors
against the stems, engines, shards and resume give one atlas, and bad input is one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from auralise.cli import main
from auralise.demo import synth
from auralise.io.modelfile import load_model
from auralise.listening import atlas as atlas_module
from auralise.listening.atlas import AtlasOptions, atlas, merge, song_key

MODEL = "models/choi2016-synth.pt"
SR = 11025
N_SONGS = 60
STYLES = ("dance", "hiphop", "ballad")
LAYERS = (2, 3, 5)
FEATURES = (2, 22, 52, 57, 60)  # the model card's atlas view (models/README.md): kick 2-22, 2-52; melody 3-2


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """60 generated 3-s songs (dance, hip-hop, ballad, seeds 0..59) with their stems."""
    folder = tmp_path_factory.mktemp("corpus")
    stems = {}
    for i in range(N_SONGS):
        song = synth.generate(STYLES[i % 3], seconds=3.0, sr=SR, seed=i)
        path = folder / f"{STYLES[i % 3]}{i:02d}.wav"
        sf.write(path, song.mix, SR, subtype="FLOAT")
        stems[song_key(path)] = song.stems
    return folder, stems


@pytest.fixture(scope="module")
def built(corpus, tmp_path_factory):
    folder, _ = corpus
    out = tmp_path_factory.mktemp("atlas") / "atlas"
    options = AtlasOptions(layers="2,3,5", features="2,22,52,57,60", top=9)
    return atlas(MODEL, [folder], out, options=options), out


def block_taps(model, y):
    """The block taps of layers 2, 3 and 5 of choi2016 by a plain forward pass with hooks on its pools."""
    fe, net = model.frontend, model.module
    taps = {}
    hooks = [net.features[4 * (n - 1) + 2].register_forward_hook(lambda m, i, o, n=n: taps.__setitem__(n, o[0]))
             for n in LAYERS]  # fmt: skip
    with torch.no_grad():
        net.features(fe.model_input(fe.stft(y), y=y))
    for h in hooks:
        h.remove()
    return taps


def test_top_k_equals_brute_force_over_every_song_and_unit(corpus, built):
    folder, _ = corpus
    result, _ = built
    model = load_model(MODEL)
    maxima = {}
    for path in sorted(folder.glob("*.wav")):
        y = sf.read(path, dtype="float32")[0]
        for n, tap in block_taps(model, y).items():
            for f in FEATURES:
                maxima.setdefault((n, f), []).append((-float(tap[f].max()), song_key(path)))
    assert len(result["songs"]) == N_SONGS and not result["skipped"]
    for entry in result["features"]:
        # ties go to the song key; a unit that never fired (activation <= 0) is not an occurrence
        want = [(m, s) for m, s in sorted(maxima[(entry["layer"], entry["feature"])])[:9] if m < 0]
        assert [(-x["activation"], x["song"]) for x in entry["excerpts"]] == pytest.approx(want)
        assert [x["song"] for x in entry["excerpts"]] == [s for _, s in want]
        values = [-m for m, _ in maxima[(entry["layer"], entry["feature"])]]
        assert entry["stats"]["max"] == pytest.approx(max(values))
        assert entry["stats"]["active_fraction"] == pytest.approx(np.mean([v > 0 for v in values]))


def stem_level(stems, x, stem: str, seconds: float) -> float:
    """RMS of a song's stem within ``seconds`` of an excerpt's unit, over the stem's RMS in the whole song."""
    s = stems[x["song"]][stem]
    at, w = int(x["time"] * SR), int(seconds * SR)
    typical = np.sqrt(np.mean(s**2))
    return float(np.sqrt(np.mean(s[max(0, at - w) : at + w] ** 2)) / typical) if typical > 0 else 0.0


def test_card_features_point_at_their_stems(corpus, built):
    """The model card's atlas view: the kick features 2-22 and 2-52 have at least 8 of their top 9 within 50 ms of a
    kick 1.2x louder than the song's average kick; the melody feature 3-2 has at least 7 of 9 where the melody is
    1.2x louder than its average, within its receptive field (11 frames, 0.26 s, each side)."""
    _, stems = corpus
    result, _ = built
    found = {(e["layer"], e["feature"]): e["excerpts"] for e in result["features"]}
    for key in ((2, 22), (2, 52)):
        assert len(found[key]) == 9
        assert sum(stem_level(stems, x, "kick", 0.05) > 1.2 for x in found[key]) >= 8, key
    assert len(found[(3, 2)]) == 9
    assert sum(stem_level(stems, x, "melody", 11 * 256 / SR) > 1.2 for x in found[(3, 2)]) >= 7


def test_files_schema_and_the_excerpt_reproduces_the_unit(built):
    result, out = built
    saved = json.loads((out / "atlas.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["format"] == "auralise-atlas" and saved["version"] == 1
    assert set(saved) >= {"model", "options", "songs", "skipped", "features"}
    for entry in saved["features"]:
        assert set(entry["stats"]) == {"mean", "max", "active_fraction"}
        for x in entry["excerpts"]:
            for name in ("wav", "original_wav", "png"):
                assert (out / x[name]).is_file()
            assert x["start"] <= x["time"] <= x["end"] and x["end"] - x["start"] >= 2.9
            assert x["excerpt_activation"] == pytest.approx(x["activation"], rel=1e-4, abs=1e-5)
            wave, sr = sf.read(out / x["wav"])
            assert sr == SR and np.all(np.isfinite(wave))
    excerpts = sum(len(e["excerpts"]) for e in saved["features"])
    assert (out / "index.html").read_text().count('class="excerpt"') == excerpts


def test_shards_merged_equal_one_run(corpus, built, tmp_path):
    folder, _ = corpus
    result, _ = built
    options = AtlasOptions(layers="2,3,5", features="2,22,52,57,60", top=9)
    for i in (1, 2, 3):
        atlas(MODEL, [folder], tmp_path / f"shard{i}", options=options, shard=f"{i}/3")
    merged = merge([tmp_path / f"shard{i}" for i in (3, 1, 2)], tmp_path / "merged")
    assert merged == result


def test_kill_and_resume_equals_an_uninterrupted_run(corpus, built, tmp_path, monkeypatch):
    folder, _ = corpus
    result, _ = built
    options = AtlasOptions(layers="2,3,5", features="2,22,52,57,60", top=9)
    import auralise.listening.atlas_render as render_module

    original, calls = render_module.render_occurrence, [0]

    def dies(*args, **kwargs):
        calls[0] += 1
        if calls[0] == 20:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(render_module, "render_occurrence", dies)
    with pytest.raises(KeyboardInterrupt):
        atlas(MODEL, [folder], tmp_path / "a", options=options)
    monkeypatch.setattr(render_module, "render_occurrence", original)
    scanned = []
    monkeypatch.setattr(atlas_module, "scan_record", lambda *a, **k: scanned.append(a) or {})
    resumed = atlas(MODEL, [folder], tmp_path / "a", options=options, resume=True)
    assert not scanned, "finished songs are not scanned again"
    assert resumed == result


def test_ray_engine_gives_the_same_atlas(corpus, tmp_path):
    pytest.importorskip("ray", reason="Ray is not installed: pip install -e '.[ray]' runs this test")
    folder, _ = corpus
    songs = sorted(folder.glob("*.wav"))[:8]
    options = AtlasOptions(layers="2", features="22", top=3)
    local = atlas(MODEL, songs, tmp_path / "local", options=options)
    ray_run = atlas(MODEL, songs, tmp_path / "ray", options=options, engine="ray", workers=2)
    assert ray_run == local


def test_unreadable_files_are_skipped_and_listed(corpus, tmp_path, capsys):
    folder, _ = corpus
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk")
    listing = tmp_path / "songs.txt"
    listing.write_text(f"{sorted(folder.glob('*.wav'))[0]}\n# a comment\nmissing.wav\n{bad}\n")
    with pytest.raises(SystemExit) as exc:
        main(["atlas", MODEL, str(listing), "--out", str(tmp_path / "out"), "--layers", "1", "--features", "0",
              "--top", "1", "--quiet"])  # fmt: skip
    assert exc.value.code == 0
    result = json.loads((tmp_path / "out" / "atlas.json").read_text())
    assert len(result["songs"]) == 1
    assert {s["path"].split("/")[-1] for s in result["skipped"]} == {"missing.wav", "broken.wav"}


@pytest.mark.parametrize(
    "args, phrase",
    [
        (["--shard", "4/3"], "--shard must be i/N"),
        (["--top", "0"], "--top must be an integer"),
        (["--features", "top:3"], "not an atlas selection"),
        (["--engine", "spark"], "Invalid value for '--engine'"),
    ],
)
def test_bad_options_are_one_line(corpus, tmp_path, capsys, args, phrase):
    folder, _ = corpus
    with pytest.raises(SystemExit) as exc:
        main(["atlas", MODEL, str(folder), "--out", str(tmp_path / "out"), *args])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and phrase in err, err
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_worker_processes_and_metadata(corpus, tmp_path):
    """--workers 2 (two scan processes) gives the one-process atlas; --metadata counts each feature's excerpts'
    tags (the style here), relative paths in the CSV resolved against the CSV's folder."""
    folder, _ = corpus
    songs = sorted(folder.glob("*.wav"))[:6]
    options = AtlasOptions(layers="2", features="22", top=4)
    one = atlas(MODEL, songs, tmp_path / "one", options=options)
    csv = folder / "tags.csv"
    csv.write_text("path,tags\n" + "".join(f"{p.name},{p.stem.rstrip('0123456789')};synth\n" for p in songs))
    two = atlas(MODEL, songs, tmp_path / "two", options=options, workers=2, metadata=csv)
    assert {k: v for k, v in two.items() if k != "features"} == {k: v for k, v in one.items() if k != "features"}
    (entry,) = two["features"]
    tags = entry.pop("tags")
    assert two["features"] == one["features"]
    styles = [x["song"].split("-")[0].rstrip("0123456789") for x in entry["excerpts"]]
    assert tags["synth"] == len(entry["excerpts"]) == 4
    assert sum(v for k, v in tags.items() if k != "synth") == 4 and set(tags) - {"synth"} == set(styles)


@pytest.fixture(scope="module")
def small_shard(corpus, tmp_path_factory):
    """A one-shard scan of 4 songs (layer 2, feature 22, top 2) and its state file's text."""
    folder, _ = corpus
    out = tmp_path_factory.mktemp("shard") / "shard"
    atlas(MODEL, sorted(folder.glob("*.wav"))[:4], out, options=AtlasOptions(layers="2", features="22", top=2),
          shard="1/1")  # fmt: skip
    return out, (out / ".atlas" / "state.json").read_text()


def _damaged(saved: dict, how: str) -> object:
    """The shard state ``saved`` damaged in one way."""
    bad = json.loads(json.dumps(saved))
    if how == "a list":
        return [bad]
    if how == "no options":
        del bad["options"]
    elif how == "an unknown option":
        bad["options"]["bogus"] = 1
    elif how == "a bad option value":
        bad["options"]["top"] = "nine"
    elif how == "an unlisted song":
        bad["state"]["features"][0]["occurrences"][0]["song"] = "someone-else"
    elif how == "a song id that is a number":
        bad["songs"][0]["id"] = 7
    elif how == "a skipped song without a reason":
        bad["skipped"] = [{"path": "x.wav"}]
    elif how == "a sum that is text":
        bad["state"]["features"][0]["sums"]["activation_parts"] = [{"a": 1}]
    elif how == "another model's sha256":
        bad["model"]["sha256"] = "0" * 64
    return bad


@pytest.mark.parametrize("how", ["not JSON", "a list", "no options", "an unknown option", "a bad option value",
                                 "an unlisted song", "a song id that is a number", "a skipped song without a reason",
                                 "a sum that is text", "another model's sha256"])  # fmt: skip
def test_a_damaged_shard_is_refused_in_one_line(small_shard, tmp_path, capsys, how):
    """A shard folder may come from someone else: whatever is wrong with its state file, `atlas merge` says so in
    one line, exits 2 and writes nothing; the undamaged shard merges."""
    shard, text = small_shard
    copy = tmp_path / "shard"
    (copy / ".atlas").mkdir(parents=True)
    state = "{not json" if how == "not JSON" else json.dumps(_damaged(json.loads(text), how))
    (copy / ".atlas" / "state.json").write_text(state)
    with pytest.raises(SystemExit) as exc:
        main(["atlas", "merge", str(copy), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert exc.value.code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    phrase = "is not the model the shards were scanned with" if how == "another model's sha256" else "holds no atlas"
    assert phrase in err, err
    assert not (tmp_path / "out").exists()


def test_damaged_song_records_are_scanned_again(small_shard, corpus, tmp_path, monkeypatch):
    """--resume trusts a song's scan record only when it is one: a record of another song, a list, or one without
    its length is scanned again, and the atlas is the undamaged run's."""
    folder, _ = corpus
    songs = sorted(folder.glob("*.wav"))[:4]
    options = AtlasOptions(layers="2", features="22", top=2)
    first = atlas(MODEL, songs, tmp_path / "a", options=options)
    records = sorted((tmp_path / "a" / ".atlas" / "songs").glob("*.json"))
    other = json.loads(records[1].read_text())
    records[0].write_text(json.dumps(other))  # another song's scan
    records[2].write_text("[]")
    record = json.loads(records[3].read_text())
    del record["seconds"]
    records[3].write_text(json.dumps(record))
    original, scanned = atlas_module.scan_record, []
    monkeypatch.setattr(atlas_module, "scan_record", lambda s, key, *a: scanned.append(key) or original(s, key, *a))
    again = atlas(MODEL, songs, tmp_path / "a", options=options, resume=True)
    assert sorted(scanned) == sorted(p.stem for p in (records[0], records[2], records[3]))
    assert again == first


def test_damaged_render_journal_lines_are_rendered_again(corpus, tmp_path, monkeypatch):
    """--resume keeps an excerpt only when its journal line is whole: lines without a time, with a time that is text
    or not finite, are rendered again, and the atlas is the undamaged run's."""
    folder, _ = corpus
    songs = sorted(folder.glob("*.wav"))[:4]
    options = AtlasOptions(layers="2", features="22,52", top=3)
    first = atlas(MODEL, songs, tmp_path / "a", options=options)
    journal = tmp_path / "a" / ".atlas" / "render.jsonl"
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert len(lines) >= 4
    del lines[0]["time"]
    lines[1]["start"] = "<script>alert(1)</script>"
    lines[2]["excerpt_activation"] = float("nan")
    journal.write_text("".join(json.dumps(x) + "\n" for x in lines) + "[1, 2]\n")
    import auralise.listening.atlas_render as render_module

    original, rendered = render_module.render_occurrence, []

    def counted(*args, **kwargs):
        rendered.append(kwargs["feature"])
        return original(*args, **kwargs)

    monkeypatch.setattr(render_module, "render_occurrence", counted)
    again = atlas(MODEL, songs, tmp_path / "a", options=options, resume=True)
    assert len(rendered) == 3
    assert again == first
