"""The session (auralise.session): one model, one song loaded once, and the same numbers as the functions it serves.

On the shipped demo model and demo song: the song is decoded once however much is asked of it; projections and
resynthesis equal ``auralise.deconvolve`` + ``auralise.resynthesise`` exactly; ranking and tagging equal the
set-up chain they replaced, written out here step by step; bad options are one-line errors before any work.
"""

from __future__ import annotations

from dataclasses import FrozenInstanceError
from pathlib import Path

import numpy as np
import pytest
import torch

import auralise
from auralise.errors import BadParameterError
from auralise.io import audio as audio_module
from auralise.io.digest import file_sha256
from auralise.session import RenderOptions, Session, resolve_device

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "choi2016-synth.pt"
SONG = ROOT / "demo_audio" / "dance.ogg"


@pytest.fixture(scope="module")
def session() -> Session:
    return Session(MODEL, device="cpu", options=RenderOptions(select="max", resynth="mask"))


@pytest.fixture(scope="module")
def reference():
    """The song and model as the old set-up chain made them: load_model, load_audio, stft, model_input."""
    loaded = auralise.load_model(MODEL)
    fe = loaded.frontend
    y, _ = auralise.load_audio(SONG, sr=fe.sr)
    X = fe.stft(y)
    return loaded, y, X, fe.model_input(X, y=y)


def test_the_song_is_decoded_once(session, monkeypatch):
    calls = []
    real = audio_module.load_audio

    def counting(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(audio_module, "load_audio", counting)
    lay = session.layer(3)
    song = session.song(SONG, min_samples=session.min_samples([lay]))
    projection = session.project(song, lay, [38])
    session.render(song, projection.D, activation_max=projection.activation_max)
    session.rank(song, [1, 3])
    session.tag(song)
    assert song.X is song.X and song.S is song.S and song.magnitude is song.magnitude  # made once, kept
    assert len(calls) == 1


def test_project_and_render_equal_deconvolve_and_resynthesise(session, reference):
    loaded, y, X, S = reference
    fe = loaded.frontend
    song = session.song(SONG)
    projection = session.project(song, 3, [38, 5])
    D = auralise.deconvolve(loaded, S, layer=3, features=[38, 5], select="max")
    assert torch.equal(projection.D, D)
    rendered = session.render(song, projection.D, activation_max=projection.activation_max)
    assert not rendered.silent.any()
    waves, gains = auralise.resynthesise(X, fe.to_grid(D), frontend=fe, length=len(y))
    np.testing.assert_array_equal(rendered.waves, waves)
    np.testing.assert_array_equal(rendered.gains, gains)
    np.testing.assert_array_equal(rendered.grid, fe.to_grid(D))


def test_render_follows_the_options(reference):
    loaded, y, X, S = reference
    fe = loaded.frontend
    options = RenderOptions(method="guided", tap="activation", resynth="magnitude", normalize="none")
    session = Session(loaded, device="cpu", options=options)
    song = session.song(SONG)
    projection = session.project(song, "features.4", [1])
    D = auralise.deconvolve(loaded, S, layer=2, features=[1], method="guided", tap="activation")
    assert torch.equal(projection.D, D)
    waves, _, _ = session.render(song, projection.D)
    expected, _ = auralise.resynthesise(X, fe.to_grid(D), frontend=fe, mode="magnitude", normalize="none",
                                        length=len(y))  # fmt: skip
    np.testing.assert_array_equal(waves, expected)


def test_rank_equals_the_set_up_chain_it_replaced(session, reference):
    from auralise.engine.deconv import make_projector
    from auralise.studies.ranking import rank_features

    loaded, _, _, S = reference
    ranked = session.rank(session.song(SONG), [1, 3, 5])
    projector = make_projector(loaded.module, S, [1, 3, 5], method="deconvnet", select="map", tap="block",
                               example=loaded.example_input(), layout=loaded.frontend.layout)  # fmt: skip
    with torch.inference_mode():
        stats = projector.statistics()
    assert list(ranked) == [1, 3, 5]
    for number, rows in ranked.items():
        st = stats[number]
        ranks = st.ranks()
        assert [r.feature for r in rows] == sorted(range(len(ranks)), key=lambda f: ranks[f])
        assert [r.energy for r in rows] == [float(st.energy[r.feature]) for r in rows]
        assert [r.maximum for r in rows] == [float(st.maximum[r.feature]) for r in rows]
        assert [r.dead for r in rows] == [bool(st.nonzero[r.feature] == 0) for r in rows]
    assert rank_features(MODEL, SONG, layers=[1, 3, 5], device="cpu") == ranked


def test_tag_equals_the_set_up_chain_it_replaced(session, reference):
    from auralise.studies.tagging import tag_song

    loaded, _, _, S = reference
    result = session.tag(session.song(SONG))
    frames = loaded.frontend.frames_for(loaded.frontend.patch_seconds or 4.0)
    count = S.shape[3] // frames  # BCFT: time is axis 3
    patches = torch.cat([S[..., k * frames : (k + 1) * frames] for k in range(count)])
    with torch.inference_mode():
        expected = torch.softmax(loaded.module.eval()(patches).float(), dim=1).numpy()
    np.testing.assert_allclose(result.probabilities, expected, rtol=1e-6, atol=1e-7)
    assert result.labels == list(loaded.labels) and len(result.starts) == count
    again = tag_song(MODEL, SONG, device="cpu")
    np.testing.assert_array_equal(again.probabilities, result.probabilities)
    assert again.top(3) == result.top(3)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("method", "lrp", "unknown method 'lrp'; choose one of: deconvnet, guided, gradient"),
        ("tap", "pool", "unknown tap point 'pool'; choose one of: block, activation, conv"),
        ("resynth", "phase", "unknown resynthesis mode 'phase'; choose one of: distinct, mask"),
        ("phase", "random", "unknown phase 'random'; choose one of: original, griffinlim"),
        ("normalize", "rms", "unknown normalisation 'rms'; choose one of: peak, none"),
        ("select", "topk:0", "unknown selection 'topk:0'"),
    ],
)
def test_bad_render_options_are_one_line_errors(field, value, message):
    with pytest.raises(BadParameterError) as info:
        RenderOptions(**{field: value})
    text = str(info.value)
    assert text.startswith(message) and "\n" not in text


def test_render_options_are_frozen_and_keep_the_export_keys():
    from auralise.listening.export import ExportOptions

    options = RenderOptions()
    with pytest.raises(FrozenInstanceError):
        options.method = "guided"  # type: ignore[misc]
    keys = ["layers", "features", "method", "select", "tap", "resynth", "phase", "normalize", "figures"]
    assert list(ExportOptions().to_dict()) == keys  # the journal header and manifest "options" of earlier exports
    assert ExportOptions(render=RenderOptions(phase="griffinlim")).to_dict()["phase"] == "griffinlim"
    with pytest.raises(BadParameterError):
        Session(MODEL, device="cpu", options={"method": "guided"})  # type: ignore[arg-type]


def test_devices():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == resolve_device(None) in ("cpu", "cuda")
    with pytest.raises(BadParameterError, match="unknown device 'tpu'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BadParameterError, match="CUDA is not available"):
            resolve_device("cuda")


def test_layers_and_receptive_fields(session):
    assert [lay.number for lay in session.layers()] == [1, 2, 3, 4, 5]
    assert [lay.number for lay in session.layers([3, "features.0", 3])] == [3, 1]
    rows = session.layer_table()
    assert [r["rf_frames"] for r in rows] == [session.receptive_field(n)[0] for n in range(1, 6)]
    deepest = session.receptive_field(5)[0]
    assert session.min_samples([2, 5]) == session.frontend.min_samples_for(deepest)
    assert session.model_sha256 == file_sha256(MODEL)
