"""Raw-waveform models: the model input is the audio, so a feature's projection is itself the sound."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch
from captum.attr import NeuronDeconvolution
from test_cli import assert_error, run_cli, run_ok
from test_deconv import assert_all_match, captum

import auralise
from auralise import save_model
from auralise.demo import synth
from auralise.errors import BadModelError
from auralise.frontends.base import Frontend
from auralise.nets import zoo

SR = 8000
WAVEFORM = {"kind": "waveform", "sr": SR, "n_fft": 256, "hop_length": 64, "layout": "BFT", "patch_seconds": 1.0}


def sample_cnn(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    net = zoo.build("samplecnn", {"channels": 8, "n_blocks": 4}).eval()
    with torch.no_grad():  # a gain per channel, means near zero: random but alive on quiet audio
        for bn in (m for m in net.modules() if isinstance(m, torch.nn.BatchNorm1d)):
            bn.weight.uniform_(0.5, 2.0)
            bn.running_var.uniform_(0.05, 0.2)
    return net


@pytest.fixture(scope="module")
def song() -> np.ndarray:
    return synth.generate("dance", seconds=3.0, sr=SR, seed=2).mix.astype(np.float32)


def test_front_end_feeds_the_samples(song):
    fe = Frontend.from_dict(WAVEFORM)
    X, S = fe.analyse(song)
    assert S.shape == (1, 1, len(song)) and torch.equal(S[0, 0], torch.from_numpy(song))
    assert fe.frames_for(1.0) == SR and fe.input_shape(100) == (1, 100)
    grid = fe.to_grid(S.expand(2, -1, -1))
    np.testing.assert_allclose(grid[0], np.abs(X), rtol=1e-5, atol=1e-6)  # pictures: the STFT magnitude
    with pytest.raises(BadModelError, match="layout 'BFT'"):
        Frontend.from_dict({**WAVEFORM, "layout": "BCFT"})
    with pytest.raises(BadModelError, match="compression 'linear'"):
        Frontend.from_dict({**WAVEFORM, "compression": "db"})


def test_sample_cnn_matches_captum(song):
    net = sample_cnn()
    S = torch.from_numpy(song)[None, None]
    relus = [m for m in net.features if isinstance(m, torch.nn.ReLU)]
    pools = [m for m in net.features if isinstance(m, torch.nn.MaxPool1d)]
    for layer, module in ((1, relus[0]), (3, pools[1]), (5, pools[3])):
        feats = [0, 3, 7]
        D = auralise.deconvolve(net, S, layer=layer, features=feats)
        assert D.shape == (3, 1, len(song))
        assert_all_match(D, [captum(NeuronDeconvolution, net, module, S, f) for f in feats])


@pytest.fixture(scope="module")
def waveform_model(tmp_path_factory):
    return save_model(sample_cnn(), tmp_path_factory.mktemp("wf") / "samplecnn.pt", frontend=WAVEFORM,
                      labels=["a", "b", "c"])  # fmt: skip


def test_the_wav_is_the_projection(capsys, tmp_path, waveform_model, song):
    path = tmp_path / "song.wav"
    sf.write(path, song, SR, subtype="FLOAT")
    run_ok(capsys, waveform_model, path, "--layer", "3", "--feature", "2", "--out", tmp_path / "out",
           "--normalize", "none")  # fmt: skip
    wave, sr = sf.read(tmp_path / "out" / "layer3_feature2_nonorm.wav", dtype="float32")  # --normalize none is named
    D = auralise.deconvolve(auralise.load_model(waveform_model), torch.from_numpy(song)[None, None], layer=3,
                            features=[2])  # fmt: skip
    assert sr == SR and len(wave) == len(song)
    np.testing.assert_allclose(wave, D[0, 0].numpy(), rtol=1e-5, atol=1e-6)
    # no mask to resynthesise with: every listening mode (the default distinct, mask, ...) writes the projection
    run_ok(capsys, waveform_model, path, "--layer", "3", "--feature", "2", "--out", tmp_path / "out",
           "--normalize", "none", "--resynth", "mask")  # fmt: skip
    mask, _ = sf.read(tmp_path / "out" / "layer3_feature2_mask_nonorm.wav", dtype="float32")
    np.testing.assert_allclose(mask, wave, rtol=1e-5, atol=1e-7)  # (two projections: equal to the last bits)
    out, _ = run_ok(capsys, "inspect", waveform_model)
    assert "RF ms" in out and "-" in out.splitlines()[2]  # fields in samples -> ms; no Hz for a waveform


def test_export_and_long_input_chunking(capsys, tmp_path, waveform_model):
    long = synth.generate_sequence(["dance", "ballad"], seconds_each=10.0, sr=SR, seed=5).mix.astype(np.float32)
    S = torch.from_numpy(long)[None, None]
    model = auralise.load_model(waveform_model)
    kwargs = dict(layer=4, features=[0, 1, 5], example=model.example_input())
    whole = auralise.project_features(model.module, S, **kwargs)
    chunked = auralise.project_features(model.module, S, layout="BFT", chunk_frames=30000, **kwargs)
    for k in range(3):
        if not whole.silent[k]:
            scale = whole.D[k].abs().max()
            assert float((chunked.D[k] - whole.D[k]).abs().max() / scale) <= 1e-4
    path = tmp_path / "long.wav"
    sf.write(path, long, SR)
    run_ok(capsys, "export", waveform_model, path, "--out", tmp_path / "set", "--layers", "1,4", "--features",
           "top:2", "--quiet")  # fmt: skip
    items = json.loads((tmp_path / "set" / "manifest.json").read_text())["songs"][0]["items"]
    assert len(items) == 4
    for item in items:
        wave, sr = sf.read(tmp_path / "set" / item["wav"])
        assert sr == SR and len(wave) == len(long)


def test_short_audio_is_refused(capsys, tmp_path, waveform_model):
    path = tmp_path / "tiny.wav"
    sf.write(path, np.full(40, 0.1, dtype=np.float32), SR)
    code, _, err = run_cli(capsys, waveform_model, path, "--layer", "5", "--feature", "0", "--out", tmp_path / "o")
    assert_error(code, err, 2)
