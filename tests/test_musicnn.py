"""The musicnn 0.1.0 ports against an independent numpy forward pass of the TF1 graphs of ``musicnn/models.py``.

The numpy reference works in TF's own (time, freq, channel) layout straight from the checkpoint's HWIO kernels:
explicit sliding-window convolutions, TF 'SAME' padding computed from the TF formula, ReLU, then batch norm
(eps 1e-3), TF 'VALID' pooling, musicnn's mid-end as the 2-D convs (kernel spanning the feature axis) with the
transposes it does, the [max, mean] concatenation on the last axis flattened in C order, and the VGG's
channels-last flatten. It shares no code with :mod:`auralise.nets.musicnn`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import MUSICNN_BN_SIZES, MUSICNN_LAYER_SHAPES, bn_name
from numpy.lib.stride_tricks import sliding_window_view
from test_tfbundle import musicnn, musicnn_wheel  # noqa: F401  (session fixtures: the wheel, extracted models)

from auralise.engine.layers import discover
from auralise.errors import BadModelError
from auralise.importers.musicnn import load_pretrained
from auralise.importers.tfbundle import read_bundle
from auralise.nets import zoo
from auralise.nets.musicnn import Musicnn, MusicnnVGG, load_musicnn_weights

MODELS = ["MTT_musicnn", "MSD_musicnn", "MTT_vgg", "MSD_vgg"]
EPS = 1e-3  # tf.compat.v1.layers.batch_normalization


def random_arrays(kind: str, seed: int = 0) -> dict[str, np.ndarray]:
    """A checkpoint-shaped dict of random TF variables for ``kind`` ("musicnn" or "vgg")."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name, shape in MUSICNN_LAYER_SHAPES[kind].items():
        fan_in = int(np.prod(shape[:-1]))
        out[f"{name}/kernel"] = (rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)).astype(np.float32)
        out[f"{name}/bias"] = (0.1 * rng.standard_normal(shape[-1])).astype(np.float32)
    for i, n in enumerate(MUSICNN_BN_SIZES[kind]):
        out[f"{bn_name(i)}/gamma"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
        out[f"{bn_name(i)}/beta"] = (0.1 * rng.standard_normal(n)).astype(np.float32)
        out[f"{bn_name(i)}/moving_mean"] = (0.2 * rng.standard_normal(n)).astype(np.float32)
        out[f"{bn_name(i)}/moving_variance"] = rng.uniform(0.5, 1.5, n).astype(np.float32)
    return out


def log_mel_like(n_frames: int = 187, n_mels: int = 96, seed: int = 1) -> np.ndarray:
    """A (n_frames, n_mels) patch like musicnn's input ``log10(1 + 10000 mel)``: about 0-4, louder in low bands."""
    rng = np.random.default_rng(seed)
    tilt = np.exp(-np.arange(n_mels) / 30.0)[None, :]
    envelope = 1.0 + 0.8 * np.sin(np.arange(n_frames) / 9.0)[:, None]
    mel = rng.exponential(1e-2, (n_frames, n_mels)) * tilt * envelope
    return np.log10(1.0 + 10000.0 * mel).astype(np.float32)


# ------------------------------------------------------------------ numpy reference in TF's layout (H, W, C)


def tf_same_pads(size: int, kernel: int, stride: int = 1) -> tuple[int, int]:
    """TF 'SAME': output ceil(size / stride); the total padding is split with the odd one at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def np_conv_valid(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """'VALID' 2-D cross-correlation of x (H, W, C) with an HWIO kernel → (H - kh + 1, W - kw + 1, O)."""
    kh, kw = kernel.shape[:2]
    windows = sliding_window_view(x, (kh, kw), axis=(0, 1))  # (H', W', C, kh, kw)
    return np.tensordot(windows, kernel.transpose(2, 0, 1, 3), axes=([2, 3, 4], [0, 1, 2])) + bias


def np_conv_same(x: np.ndarray, kernel: np.ndarray, bias: np.ndarray) -> np.ndarray:
    kh, kw = kernel.shape[:2]
    pads = [tf_same_pads(x.shape[0], kh), tf_same_pads(x.shape[1], kw), (0, 0)]
    return np_conv_valid(np.pad(x, pads), kernel, bias)


def np_bn(x: np.ndarray, a: dict[str, np.ndarray], name: str) -> np.ndarray:
    """Inference batch norm over the last axis."""
    scale = a[f"{name}/gamma"] / np.sqrt(a[f"{name}/moving_variance"].astype(np.float64) + EPS)
    return (x - a[f"{name}/moving_mean"]) * scale + a[f"{name}/beta"]


def np_relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def np_max_pool(x: np.ndarray, size: tuple[int, int], stride: tuple[int, int]) -> np.ndarray:
    """TF 'VALID' max-pooling of x (H, W, C)."""
    windows = sliding_window_view(x, size, axis=(0, 1))[:: stride[0], :: stride[1]]
    return windows.max(axis=(3, 4))


def np_conv_block(x, a, conv, bn, same):
    """tf.layers.conv2d(activation=relu) then batch_normalization, as every musicnn conv is built."""
    k, b = a[f"{conv}/kernel"].astype(np.float64), a[f"{conv}/bias"]
    return np_bn(np_relu((np_conv_same if same else np_conv_valid)(x, k, b)), a, bn)


def np_musicnn(a: dict[str, np.ndarray], spec: np.ndarray) -> np.ndarray:
    """musicnn.models.build_musicnn for one patch ``spec`` (T, 96) → logits (n_classes,)."""
    x = np_bn(spec.astype(np.float64)[:, :, None], a, "batch_normalization")  # expand_dims(x, 3): (T, 96, 1)
    pad7 = np.pad(x, [(3, 3), (0, 0), (0, 0)])
    branches = []
    for conv, bn, padded, same in [
        ("conv2d", "batch_normalization_1", pad7, False),  # timbral 7×38, 'valid' on the time-padded input
        ("conv2d_1", "batch_normalization_2", pad7, False),  # timbral 7×67
        ("conv2d_2", "batch_normalization_3", x, True),  # temporal 128×1, 'same'
        ("conv2d_3", "batch_normalization_4", x, True),
        ("conv2d_4", "batch_normalization_5", x, True),
    ]:
        y = np_conv_block(padded, a, conv, bn, same)  # (T, W', C)
        branches.append(np_max_pool(y, (1, y.shape[1]), (1, y.shape[1]))[:, 0, :])  # squeeze(pool, [2])
    front = np.concatenate(branches, axis=1)[:, :, None]  # tf.concat(list, 2) then expand_dims: (T, 561, 1)

    def mid_conv(inp, conv, bn):
        y = np_conv_block(np.pad(inp, [(3, 3), (0, 0), (0, 0)]), a, conv, bn, False)  # (T, 1, 64)
        return y.transpose(0, 2, 1)  # tf.transpose(.., [0, 1, 3, 2]) without the batch axis: (T, 64, 1)

    c1 = mid_conv(front, "conv2d_5", "batch_normalization_6")
    r2 = mid_conv(c1, "conv2d_6", "batch_normalization_7") + c1
    r3 = mid_conv(r2, "conv2d_7", "batch_normalization_8") + r2
    mid = np.concatenate([front, c1, r2, r3], axis=1)  # (T, 753, 1)
    pooled = np.concatenate([mid.max(axis=0), mid.mean(axis=0)], axis=1)  # concat([max, mean], 2): (753, 2)
    h = np_bn(pooled.reshape(-1), a, "batch_normalization_9")  # layers.flatten (C order): max0, mean0, max1, ...
    h = np_bn(np_relu(h @ a["dense/kernel"] + a["dense/bias"]), a, "batch_normalization_10")
    return h @ a["dense_1/kernel"] + a["dense_1/bias"]


def np_vgg(a: dict[str, np.ndarray], spec: np.ndarray) -> np.ndarray:
    """musicnn.models.vgg for one patch ``spec`` (187, 96) → logits (n_classes,)."""
    x = np_bn(spec.astype(np.float64)[:, :, None], a, "batch_normalization")
    pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
    for i, (size, stride) in enumerate(pools, 1):
        x = np_max_pool(np_conv_block(x, a, f"{i}CNN", bn_name(i), True), size, stride)
    return x.reshape(-1) @ a["dense/kernel"] + a["dense/bias"]  # flatten of (t, f, C): channels last


def check_against_numpy(module: torch.nn.Module, arrays: dict[str, np.ndarray], spec: np.ndarray) -> float:
    """Max |torch - numpy| of the logits, relative to max(1, max |logit|); asserted ≤ 1e-4."""
    reference = (np_musicnn if isinstance(module, Musicnn) else np_vgg)(arrays, spec)
    with torch.no_grad():
        got = module.eval()(torch.from_numpy(spec)[None, None]).double().numpy()[0]
    assert got.shape == reference.shape
    err = float(np.abs(got - reference).max() / max(1.0, np.abs(reference).max()))
    assert err <= 1e-4, f"torch and numpy logits differ by {err:.3g} (relative)"
    return err


# ----------------------------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def spec() -> np.ndarray:
    return log_mel_like()


@pytest.mark.parametrize("kind", ["musicnn", "vgg"])
def test_random_weights_match_numpy(kind, spec):
    """Works without the wheel: random checkpoint-shaped variables through both implementations."""
    arrays = random_arrays(kind)
    module = load_musicnn_weights(Musicnn() if kind == "musicnn" else MusicnnVGG(), arrays)
    check_against_numpy(module, arrays, spec)


@pytest.mark.parametrize("name", MODELS)
def test_released_models_match_numpy(musicnn, name, spec):  # noqa: F811
    arrays = read_bundle(musicnn[name])
    kind = "vgg" if "vgg" in name else "musicnn"
    assert {k: v.shape for k, v in arrays.items()} == {k: v.shape for k, v in random_arrays(kind).items()}
    module = load_pretrained(name, musicnn[name])
    assert not module.training and len(module.labels) == 50
    err = check_against_numpy(module, arrays, spec)
    print(f"{name}: max relative |torch - numpy| = {err:.2e}")
    with torch.no_grad():
        x = torch.from_numpy(spec)[None, None]
        probs = module.predict(x)
        assert torch.allclose(probs, torch.sigmoid(module(x)))
        assert ((probs > 0) & (probs < 1)).all()


def test_musicnn_any_length_matches_numpy():
    """musicnn pools globally over time: the whole model takes any length, still exactly as the TF graph."""
    arrays = random_arrays("musicnn", seed=3)
    module = load_musicnn_weights(Musicnn(), arrays)
    for n_frames in (40, 600):
        check_against_numpy(module, arrays, log_mel_like(n_frames, seed=n_frames))


def test_vgg_conv_stack_takes_longer_input():
    module = load_musicnn_weights(MusicnnVGG(), random_arrays("vgg")).eval()
    x = torch.from_numpy(log_mel_like(600))[None, None]
    with torch.no_grad():
        maps = module.features(module.input_bn(x))
        assert maps.shape == (1, 128, 9, 1)  # time 600 → 299 → 149 → 74 → 37 → 9, freq 96 → 48 → 24 → 12 → 6 → 1
        with pytest.raises(RuntimeError):
            module(x)  # the dense layer wants the trained 187 frames


# path, kernel, in-channels, output channels, shape of the "block" tap for T frames
MUSICNN_LAYERS = [
    ("timbral.0.0", (7, 38), 1, 204, lambda t: (1, 204, t, 1)),
    ("timbral.1.0", (7, 67), 1, 204, lambda t: (1, 204, t, 1)),
    ("temporal.0.1", (128, 1), 1, 51, lambda t: (1, 51, t, 1)),
    ("temporal.1.1", (64, 1), 1, 51, lambda t: (1, 51, t, 1)),
    ("temporal.2.1", (32, 1), 1, 51, lambda t: (1, 51, t, 1)),
    ("midend.0.0", (7, 1), 561, 64, lambda t: (1, 64, t, 1)),
    ("midend.1.0", (7, 1), 64, 64, lambda t: (1, 64, t, 1)),
    ("midend.2.0", (7, 1), 64, 64, lambda t: (1, 64, t, 1)),
]
VGG_LAYERS = [
    ("features.0", (3, 3), 1, 128, lambda t: (1, 128, (t - 4) // 2 + 1, 48)),
    ("features.5", (3, 3), 128, 128, None),
    ("features.10", (3, 3), 128, 128, None),
    ("features.15", (3, 3), 128, 128, None),
    ("features.20", (3, 3), 128, 128, None),
]


@pytest.mark.parametrize("n_frames", [187, 600])
@pytest.mark.parametrize("cls, expected", [(Musicnn, MUSICNN_LAYERS), (MusicnnVGG, VGG_LAYERS)])
def test_discover_finds_the_conv_layers_in_order(cls, expected, n_frames):
    module = cls().eval()
    graph = discover(module, torch.zeros(1, 1, n_frames, 96))
    got = [(lay.path, lay.kernel, lay.in_channels, lay.channels) for lay in graph.layers]
    assert got == [e[:4] for e in expected]
    for lay, (*_, block) in zip(graph.layers, expected):
        assert lay.stride == (1, 1)
        if block is not None:
            assert lay.shapes["block"] == block(n_frames)  # conv → ReLU → BN → max-pool is one chain
    if cls is MusicnnVGG:
        assert (graph.error is None) == (n_frames == 187)  # only the dense head minds the length


@pytest.mark.parametrize("name, cls", [("musicnn", Musicnn), ("musicnn-vgg", MusicnnVGG)])
def test_zoo_rebuilds_from_config(name, cls, tmp_path):
    from auralise import load_model, save_model

    torch.manual_seed(0)
    module = cls().eval()
    assert zoo.name_of(module) == name
    rebuilt = zoo.build(name, module.config)
    assert type(rebuilt) is cls and rebuilt.config == module.config
    rebuilt.load_state_dict(module.state_dict())
    big = zoo.build("musicnn", {"num_filt_midend": 512, "num_units_backend": 500})  # MSD_musicnn_big's shape
    assert big.backend[2].in_features == 2 * (561 + 3 * 512)
    frontend = {"sr": 16000, "n_fft": 512, "hop_length": 256, "layout": "BCTF", "patch_seconds": 3.0}
    path = save_model(module, tmp_path / f"{name}.pt", frontend=frontend, labels=[f"t{i}" for i in range(50)])
    loaded = load_model(path).module
    x = torch.from_numpy(log_mel_like())[None, None]
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), module(x))


def test_loader_rejects_missing_unused_and_misshaped():
    arrays = random_arrays("musicnn")
    with pytest.raises(BadModelError, match="missing conv2d_3/kernel"):
        load_musicnn_weights(Musicnn(), {k: v for k, v in arrays.items() if k != "conv2d_3/kernel"})
    with pytest.raises(BadModelError, match="unused extra/thing"):
        load_musicnn_weights(Musicnn(), arrays | {"extra/thing": np.zeros(3, np.float32)})
    with pytest.raises(BadModelError, match="dense_1/kernel: shape"):
        load_musicnn_weights(Musicnn(), arrays | {"dense_1/kernel": np.zeros((200, 10), np.float32)})
    with pytest.raises(BadModelError, match="unused"):
        load_musicnn_weights(MusicnnVGG(), arrays)  # the wrong architecture for these variables
    with pytest.raises(BadModelError, match="does not fit"):
        load_musicnn_weights(Musicnn(n_classes=10), arrays)
    with pytest.raises(TypeError):
        load_musicnn_weights(torch.nn.Linear(2, 2), arrays)


def test_load_pretrained_rejects_unknown_name(tmp_path: Path):
    with pytest.raises(BadModelError, match="MTT_musicnn"):
        load_pretrained("MSD_musicnn_big", tmp_path)


@pytest.mark.parametrize(
    "cls, path, hook, n_frames",
    [
        (Musicnn, "temporal.0.1", lambda m: m.temporal[0], 200),  # asymmetric pad, pool over frequency
        (Musicnn, "midend.2.0", lambda m: m.midend[2], 200),  # through the concatenation and residual adds
        (MusicnnVGG, "features.10", lambda m: m.features[13], 187),  # 4×1/2×2 pooling, 3rd block
    ],
)
def test_gradient_projection_follows_the_graph(cls, path, hook, n_frames):
    """The engine's "gradient" rule on a whole feature map is autograd's VJP seeded with that map."""
    from auralise.engine.deconv import deconvolve

    torch.manual_seed(0)
    module = cls().eval()
    S = torch.from_numpy(log_mel_like(n_frames))[None, None]
    got = deconvolve(module, S, layer=path, features=[3, 7], method="gradient")
    seen = {}
    handle = hook(module).register_forward_hook(lambda _m, _i, out: seen.setdefault("block", out))
    x = S.clone().requires_grad_(True)
    try:
        module(x)
    except RuntimeError:  # the VGG's dense head wants 187 frames; the block ran before it
        pass
    handle.remove()
    block = seen["block"][0]
    want = torch.stack(
        [torch.autograd.grad((block[f] * block[f].detach()).sum(), x, retain_graph=True)[0][0] for f in (3, 7)]
    )
    assert got.shape == (2, 1, n_frames, 96)
    assert torch.allclose(got, want, atol=1e-5 * float(want.abs().max()))


def test_musicnn_extract_reports_the_extractor_features():
    module = load_musicnn_weights(Musicnn(), random_arrays("musicnn")).eval()
    x = torch.from_numpy(log_mel_like(100))[None, None]
    with torch.no_grad():
        feats = module.extract(x)
        assert torch.equal(feats["logits"], module(x))
    shapes = {k: tuple(v.shape) for k, v in feats.items()}
    assert shapes == {
        "timbral": (1, 408, 100),
        "temporal": (1, 153, 100),
        "cnn1": (1, 64, 100),
        "cnn2": (1, 64, 100),
        "cnn3": (1, 64, 100),
        "max_pool": (1, 753),
        "mean_pool": (1, 753),
        "penultimate": (1, 200),
        "logits": (1, 50),
    }
    assert torch.equal(feats["max_pool"][:, :408], feats["timbral"].amax(dim=2))
    assert torch.allclose(feats["mean_pool"][:, -64:], feats["cnn3"].mean(dim=2))
