"""The atlas scan (groundwork of issue 12): per-song maxima, positions and sums against a brute-force forward pass
with hooks, and the exact, order-free merge of atlas states."""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction

import numpy as np
import pytest
import torch

from auralise.io.audio import load_audio
from auralise.io.modelfile import load_model
from auralise.studies.atlas_scan import AtlasState, FeatureTop, exact_sum, merge_states, scan_song

MODEL = "models/choi2016-synth.pt"
LAYERS = (1, 3, 5)


@pytest.fixture(scope="module")
def corpus():
    """Eight 6-s songs: the four demo songs cut in two, at the model's rate."""
    songs = {}
    for name in ("dance", "ballad", "hiphop", "mix"):
        y, _ = load_audio(f"demo_audio/{name}.ogg", sr=11025)
        songs[f"{name}-a"], songs[f"{name}-b"] = y[: 6 * 11025], y[6 * 11025 : 12 * 11025]
    return songs


@pytest.fixture(scope="module")
def model():
    return load_model(MODEL)


def brute_force(model, y):
    """Per layer: the block tap of a plain forward pass (hooks on the choi2016 pools), per feature its maximum, the
    earliest (time, then frequency) position of it, and its sum."""
    fe, net = model.frontend, model.module
    taps = {}
    hooks = [net.features[4 * (n - 1) + 2].register_forward_hook(lambda m, i, o, n=n: taps.__setitem__(n, o))
             for n in LAYERS]  # fmt: skip
    with torch.no_grad():
        net.features(fe.model_input(fe.stft(y), y=y))
    for h in hooks:
        h.remove()
    out = {}
    for n, t in taps.items():
        per_time = t[0].permute(0, 2, 1).reshape(t.shape[1], -1)  # (C, T' * F'), time-major
        index = torch.argmax(per_time, dim=1)  # the first maximum in time-major order
        F = t.shape[2]
        out[n] = (per_time.amax(dim=1).double().numpy(), torch.stack([index % F, index // F], 1).numpy(),
                  per_time.double().sum(dim=1).numpy())  # fmt: skip
    return out


def test_song_scan_matches_a_brute_force_forward_pass(model, corpus):
    for key, y in list(corpus.items())[:3]:
        state = scan_song(model, y, layers=LAYERS, song=key)
        reference = brute_force(model, y)
        for n in LAYERS:
            mx, pos, total = reference[n]
            C = len(mx)
            got = [state.features[(n, f)] for f in range(C)]
            np.testing.assert_array_equal([g.maximum for g in got], mx)
            np.testing.assert_array_equal([g.occurrences[0].position for g in got], pos)  # (F', T')
            np.testing.assert_allclose([g.activation_sum for g in got], total, rtol=1e-5)
            assert all(g.occurrences[0].song == key for g in got)


def test_merged_top_k_equals_a_brute_force_ranking_and_ignores_order(model, corpus):
    states = {key: scan_song(model, y, layers=LAYERS, song=key, top=3) for key, y in corpus.items()}
    merged = merge_states(states.values(), top=3)
    shuffled = list(states.values())
    random.Random(0).shuffle(shuffled)
    shard_a, shard_b = merge_states(shuffled[:3], top=3), merge_states(shuffled[3:], top=3)
    assert merge_states([shard_b, shard_a], top=3).to_json() == merged.to_json()
    assert AtlasState.from_json(json.loads(json.dumps(merged.to_json()))).to_json() == merged.to_json()
    for (n, f), ft in merged.features.items():
        ranked = sorted((-states[k].features[(n, f)].maximum, k) for k in states)[:3]  # ties: song key
        assert [(-o.activation, o.song) for o in ft.occurrences] == ranked
        stats = ft.stats()
        songs_max = [states[k].features[(n, f)].maximum for k in states]
        assert stats["max"] == max(songs_max)
        assert stats["active_fraction"] == sum(m > 0 for m in songs_max) / len(songs_max)
    with pytest.raises(ValueError, match="in both atlas states"):
        merged.add(states["dance-a"])


def test_several_occurrences_per_song_are_a_receptive_field_apart(model, corpus):
    """--per-song 3: a brute-force greedy suppression over the whole tap map's time profile gives the same units."""
    y = corpus["dance-a"]
    state = scan_song(model, y, layers=(3,), song="dance-a", per_song=3)
    fe, net = model.frontend, model.module
    taps = {}
    hook = net.features[4 * 2 + 2].register_forward_hook(lambda m, i, o: taps.__setitem__(3, o))
    with torch.no_grad():
        net.features(fe.model_input(fe.stft(y), y=y))
    hook.remove()
    profile = taps[3][0].amax(dim=1).double().numpy()  # (C, T')
    radius = -(-22 // 8)  # layer 3 of choi2016 (block tap): a unit sees 22 frames, units are 8 frames apart
    for f in range(profile.shape[0]):
        chosen = []
        for t in sorted(range(profile.shape[1]), key=lambda t: (-profile[f, t], t)):
            if len(chosen) < 3 and all(abs(t - c) >= radius for c in chosen):
                chosen.append(t)
        got = [o.unit for o in state.features[(3, f)].occurrences]
        assert got == chosen, f
        assert [o.activation for o in state.features[(3, f)].occurrences] == [profile[f, t] for t in chosen]


def test_tied_songs_are_ordered_by_their_key_in_any_merge_order(model, corpus):
    """Three copies of one song tie exactly on every feature: the top 3 are the copies in key order, whatever the
    order of the merges."""
    y = corpus["hiphop-a"]
    states = [scan_song(model, y, layers=(1,), song=key, top=3) for key in ("c-song", "a-song", "b-song")]
    for order in ((0, 1, 2), (2, 0, 1), (1, 2, 0)):
        merged = merge_states([states[i] for i in order], top=3)
        for ft in merged.features.values():
            assert [o.song for o in ft.occurrences] == ["a-song", "b-song", "c-song"]
            assert len({o.activation for o in ft.occurrences}) == 1


def test_sums_merge_to_the_same_bits_in_any_order():
    """A feature's corpus sum is exact: songs' sums chosen so that a plain float sum depends on the order (1e16 and
    1 cancel differently) merge, in every order and through the JSON state, to the correctly rounded exact sum."""
    songs = [1e16, 1.0, -1e16, 3.0e-8, 2.5, 1e16 / 3, -7.25, 1e-3]
    orders = ([*range(8)], [*range(8)][::-1], [2, 0, 1, 3, 4, 5, 6, 7])
    assert len({sum(songs[i] for i in order) for order in orders}) > 1  # a plain sum depends on the order
    exact = float(sum(map(Fraction, songs)))
    rng = random.Random(1)

    def state(i: int) -> AtlasState:
        return AtlasState(top=1, features={(1, 0): FeatureTop([], [songs[i]], 10, 1.0, 1, 1)}, songs=[f"s{i}"])

    means = set()
    for _ in range(20):
        order = rng.sample(range(8), 8)
        cut = rng.randrange(1, 8)
        shards = [merge_states([state(i) for i in order[:cut]], 1), merge_states([state(i) for i in order[cut:]], 1)]
        shards = [AtlasState.from_json(json.loads(json.dumps(s.to_json()))) for s in shards]
        merged = merge_states(shards[::-1], top=1).features[(1, 0)]
        assert merged.activation_sum == exact
        means.add(merged.stats()["mean"])
    assert means == {exact / 80}


def test_exact_sum_is_the_exact_sum_in_one_canonical_form():
    """Against Python's exact fractions, over random floats of 60 orders of magnitude and both signs: the parts add
    up exactly to the sum, their first is the correctly rounded sum, and any order of the values gives the same
    parts."""
    rng = random.Random(2)
    for _ in range(300):
        values = [rng.choice((-1, 1)) * rng.random() * 10.0 ** rng.randint(-30, 30) for _ in range(rng.randint(0, 12))]
        parts = exact_sum(values)
        assert sum(map(Fraction, parts)) == sum(map(Fraction, values))
        assert (parts[0] if parts else 0.0) == float(sum(map(Fraction, values)))
        assert exact_sum(rng.sample(values, len(values))) == parts
        assert exact_sum(parts[::-1]) == parts


def test_a_state_written_without_exact_parts_still_reads():
    """State files of earlier versions kept only the rounded sum: it is read as a one-part exact sum."""
    saved = {"format": "auralise-atlas-state", "version": 1, "top": 1, "songs": ["s"], "features": [
        {"layer": 1, "feature": 0, "occurrences": [],
         "sums": {"activation": 2.5, "units": 4, "max": 1.0, "songs": 1, "active_songs": 1}}]}  # fmt: skip
    feature = AtlasState.from_json(saved).features[(1, 0)]
    assert feature.activation_parts == [2.5] and feature.stats()["mean"] == 2.5 / 4
    feature.merge(FeatureTop([], [math.inf], 1, 0.0, 1, 0), top=1)
    assert feature.activation_sum == math.inf
