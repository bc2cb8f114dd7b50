"""One class per front-end kind: dispatch on "kind", loading shipped and imported checkpoints, dict round trips,
equality and hashing (front-ends are cache keys), and the capabilities the rest of the package asks of them."""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import pickle

import numpy as np
import pytest
import torch

from auralise import load_model, save_model
from auralise.choices import COMPRESSIONS, FRONTEND_KINDS, LAYOUT_AXES, LAYOUTS
from auralise.errors import AuraliseError, BadModelError, BadParameterError
from auralise.frontends import (
    CqtFrontend,
    FramedFrontend,
    Frontend,
    HcqtFrontend,
    MelFrontend,
    StftFrontend,
    WaveformFrontend,
    compression,
)
from auralise.frontends.base import kinds
from auralise.importers.musicnn import MUSICNN_FRONTEND

STFT = {"sr": 11025, "n_fft": 512, "hop_length": 256}
MEL = {"kind": "mel", "sr": 16000, "n_fft": 512, "hop_length": 256, "n_mels": 40, "compression": "log1p"}
CQT = {"kind": "cqt", "sr": 22050, "n_fft": 1024, "hop_length": 512, "n_bins": 72, "bins_per_octave": 24, "fmin": 65.0}
WAVEFORM = {"kind": "waveform", "sr": 8000, "n_fft": 256, "hop_length": 64, "layout": "BFT", "patch_seconds": 1.0}
FRAMED = {"kind": "framed", "sr": 16000, "n_fft": 1024, "hop_length": 160, "frame_length": 1024}
DICTS = {"stft": STFT, "mel": MEL, "musicnn": MUSICNN_FRONTEND, "cqt": CQT, "waveform": WAVEFORM, "framed": FRAMED}
CLASSES = {"stft": StftFrontend, "mel": MelFrontend, "cqt": CqtFrontend, "waveform": WaveformFrontend,
           "framed": FramedFrontend, "hcqt": HcqtFrontend}  # fmt: skip


def kind_of(d: dict) -> str:
    return d.get("kind", "stft")


# --------------------------------------------------------------------------- dispatch


def test_one_class_per_kind_registered_in_the_order_of_choices():
    assert kinds() == FRONTEND_KINDS == tuple(CLASSES)
    for kind, cls in CLASSES.items():
        assert issubclass(cls, Frontend) and cls is not Frontend and cls.kind == kind
        assert cls.__module__ == f"auralise.frontends.{kind}"


@pytest.mark.parametrize("name", DICTS)
def test_from_dict_and_constructor_build_the_kinds_class(name):
    d = DICTS[name]
    fe = Frontend.from_dict(d)
    assert type(fe) is CLASSES[kind_of(d)] and isinstance(fe, Frontend) and fe.kind == kind_of(d)
    assert Frontend(**d) == fe
    assert CLASSES[kind_of(d)](**d) == fe  # the kind's class directly, with or without "kind"
    assert CLASSES[kind_of(d)](**{k: v for k, v in d.items() if k != "kind"}) == fe


def test_kind_mismatch_and_foreign_keys_are_model_errors():
    with pytest.raises(BadModelError, match="'kind'.*'mel' for a MelFrontend"):
        MelFrontend(**{**CQT, "kind": "cqt"})
    with pytest.raises(BadModelError, match="applies only to kind 'mel', not 'stft'"):
        StftFrontend(**STFT, n_mels=40)
    with pytest.raises(BadModelError, match="applies only to kind 'mel' or 'cqt'.*, not 'waveform'"):
        Frontend(**WAVEFORM, fmin=30.0)
    with pytest.raises(BadModelError, match="unknown front-end key.*'hop'"):
        Frontend(**STFT, hop=3)
    for kind in ("wavelet", 3, None, ["mel"]):
        with pytest.raises(BadModelError, match="one of stft, mel, cqt, waveform"):
            Frontend(**STFT, kind=kind)


# --------------------------------------------------------------------------- checkpoints and dicts


@pytest.mark.parametrize("path", ["models/choi2016-synth.pt", "models/pons-synth.pt"])
def test_shipped_models_load_with_their_stft_front_end(path):
    fe = load_model(path).frontend
    assert type(fe) is StftFrontend and isinstance(fe, Frontend)
    assert fe.to_dict() == {**STFT, "kind": "stft", "win_length": None, "window": "hann", "center": True,
                            "pad_mode": "constant", "compression": "linear", "amin": 1e-5, "scale": 1.0,
                            "layout": "BCFT", "patch_seconds": 4.0}  # fmt: skip
    assert list(fe.to_dict())[:4] == ["kind", "sr", "n_fft", "hop_length"]  # the key order files always had
    assert Frontend.from_dict(fe.to_dict()) == fe


def test_a_musicnn_style_checkpoint_loads_a_mel_front_end(tmp_path):
    from auralise.nets import zoo

    torch.manual_seed(0)
    path = save_model(zoo.build("musicnn-vgg"), tmp_path / "vgg.pt", frontend=MUSICNN_FRONTEND)
    fe = load_model(path).frontend
    assert type(fe) is MelFrontend and fe == Frontend.from_dict(MUSICNN_FRONTEND)
    assert (fe.n_mels, fe.fmin, fe.mel_fmax, fe.power, fe.compression, fe.log_scale) == (
        96, 0.0, 8000.0, 2.0, "log10p", 10000.0)  # fmt: skip
    assert fe.frames_for(fe.patch_seconds) == 187 and fe.input_shape(187) == (1, 187, 96)


def test_an_imported_musicnn_checkpoint_loads_a_mel_front_end(tmp_path):
    from auralise.importers.musicnn import import_musicnn, musicnn_wheel

    try:
        wheel = musicnn_wheel(download=False)
    except AuraliseError as exc:
        pytest.skip(f"musicnn 0.1.0 wheel not at hand: {exc}")
    (path,) = import_musicnn(tmp_path, models=["MTT_musicnn"], wheel=wheel)
    fe = load_model(path).frontend
    assert type(fe) is MelFrontend and fe == Frontend.from_dict(MUSICNN_FRONTEND)
    assert fe.to_dict() == Frontend.from_dict(json.loads(json.dumps(fe.to_dict()))).to_dict()


@pytest.mark.parametrize("name", DICTS)
def test_sidecar_json_loads_every_kind(name, tmp_path):
    from auralise.nets import zoo

    path = tmp_path / "whole.pt"
    torch.save(zoo.build("choi2016", {"channels": 4, "hidden": 8}), path)
    (tmp_path / "whole.pt.frontend.json").write_text(json.dumps(DICTS[name]))
    fe = load_model(path, trust=True).frontend
    assert type(fe) is CLASSES[kind_of(DICTS[name])] and fe == Frontend.from_dict(DICTS[name])


@pytest.mark.parametrize("name", DICTS)
def test_dict_round_trips_through_json(name):
    fe = Frontend.from_dict(DICTS[name])
    d = json.loads(json.dumps(fe.to_dict()))
    again = Frontend.from_dict(d)
    assert again == fe and hash(again) == hash(fe) and again.to_dict() == d
    assert set(d) == {f.name for f in dataclasses.fields(fe)} - ({"log_scale"} if fe.compression != "log10p" else set())


# --------------------------------------------------------------------------- equality, hashing, copies


def test_equality_and_hash_make_front_ends_cache_keys():
    a, b = Frontend.from_dict(MEL), Frontend(**MEL)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    calls = []

    @functools.lru_cache(maxsize=4)
    def cached(fe):
        calls.append(fe)
        return fe.n_input_freq

    assert cached(a) == cached(b) == 40 and len(calls) == 1
    others = [Frontend.from_dict(d) for d in DICTS.values()]
    assert len(set(others)) == len(others)
    assert Frontend(**STFT) != Frontend(**STFT, compression="db")
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.n_mels = 3  # type: ignore[misc]


@pytest.mark.parametrize("name", DICTS)
def test_copies_pickles_and_replace_keep_the_class(name):
    fe = Frontend.from_dict(DICTS[name])
    for other in (copy.copy(fe), copy.deepcopy(fe), pickle.loads(pickle.dumps(fe))):
        assert type(other) is type(fe) and other == fe and hash(other) == hash(fe)
    assert dataclasses.replace(fe, patch_seconds=2.0).patch_seconds == 2.0


# --------------------------------------------------------------------------- capabilities


@pytest.mark.parametrize("name", DICTS)
def test_lengths_agree_with_the_model_input(name):
    fe = Frontend.from_dict(DICTS[name])
    for n in (fe.n_fft, fe.n_fft + 1, 3 * fe.hop_length + 7, fe.sr):
        y = (0.1 * np.random.default_rng(n).standard_normal(n)).astype(np.float32)
        X, S = fe.analyse(y)
        T = S.shape[LAYOUT_AXES[fe.layout][0]]
        assert fe.n_frames(n) == T == fe.frames_for(n / fe.sr)
        assert T == (n if fe.kind == "waveform" else X.shape[1])  # a waveform's frames are its samples
    assert fe.n_frames(0) == 0
    for rf in (1, 2, 9, 40):
        n = fe.min_samples_for(rf)
        fe.stft(np.zeros(n, np.float32))  # long enough for the STFT
        assert fe.n_frames(n) >= rf


def test_receptive_field_conversions():
    stft = Frontend(**STFT, win_length=400)
    assert stft.field_samples(1) == 400 and stft.field_samples(3) == 2 * 256 + 400
    assert stft.field_hz(3) == 3 * 11025 / 512
    for d in (MEL, CQT):
        fe = Frontend.from_dict(d)
        assert fe.field_hz(3) is None and fe.field_samples(3) == 2 * fe.hop_length + fe.n_fft
    wave = Frontend.from_dict(WAVEFORM)
    assert wave.field_samples(100) == 100 and wave.field_hz(3) is None
    assert wave.min_samples_for(10) == 256 and wave.min_samples_for(1000) == 1000


def test_capability_flags():
    flags = {k: (cls.streamable, cls.projection_is_audio) for k, cls in CLASSES.items()}
    assert flags == {"stft": (True, False), "mel": (True, False), "cqt": (False, False), "waveform": (False, True),
                     "framed": (False, True), "hcqt": (False, False)}  # fmt: skip
    for d in DICTS.values():
        fe = Frontend.from_dict(d)
        assert fe.streamable == (fe.kind in ("stft", "mel"))
        assert fe.projection_is_audio == (fe.kind in ("waveform", "framed"))


def test_only_audio_projections_are_audio_and_waveforms_have_no_grid_matrix():
    D = np.zeros((2, 1, 100), np.float32)
    assert Frontend.from_dict(WAVEFORM).projected_audio(D).shape == (2, 100)
    with pytest.raises(BadParameterError, match="only waveform and framed"):
        Frontend.from_dict(MEL).projected_audio(D)
    with pytest.raises(BadParameterError, match="no frequency axis"):
        Frontend.from_dict(WAVEFORM).grid_matrix()


@pytest.mark.parametrize("name", ["stft", "mel", "cqt"])
def test_grid_matrix_shape_and_rows(name):
    fe = Frontend.from_dict(DICTS[name])
    A = fe.grid_matrix()
    assert A.shape == (fe.n_freq, fe.n_input_freq) and A.dtype == np.float32 and not A.flags.writeable
    assert fe.input_freqs().shape == (fe.n_input_freq,)
    rows = A.astype(np.float64).sum(axis=1)  # 1 inside the mapped range, 0 outside, in between at a CQT's edges
    assert np.all((rows >= 0) & (rows <= 1 + 1e-5))
    assert np.mean((np.abs(rows - 1) < 1e-5) | (rows == 0)) > 0.95


# --------------------------------------------------------------------------- compression table and layouts


def test_one_compression_table_for_numpy_and_torch():
    assert tuple(compression.TABLE) == tuple(compression.NAMES) == COMPRESSIONS
    m = np.array([0.0, 1e-3, 0.5, 3.0], dtype=np.float32)
    for name in COMPRESSIONS:
        fe = Frontend(**STFT, compression=name, scale=2.0)
        v = fe.compress(m)
        assert v.dtype == np.float32
        np.testing.assert_allclose(fe.compress(torch.from_numpy(m)).numpy(), v, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(fe.decompress(v), m, rtol=1e-5, atol=1e-6 if name != "db" else 1e-5)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_axes_are_the_engines(layout):
    fe = Frontend(**STFT, layout=layout)
    S = fe.model_input(fe.stft(np.ones(2000, np.float32)))
    time_axis, freq_axis = LAYOUT_AXES[layout]
    assert S.shape[time_axis] == fe.n_frames(2000) and S.shape[freq_axis] == fe.n_freq
