"""PyTorch ports of the four trained musicnn 0.1.0 taggers (Pons & Serra, 2019) and their weight loader.

The PyPI package ``musicnn`` 0.1.0 (ISC licence) ships TF1 checkpoints of two architectures, each trained on
MagnaTagATune (``MTT_*``) and on the Million Song Dataset (``MSD_*``), 50 tags each:

- :class:`Musicnn` (``MTT_musicnn``, ``MSD_musicnn``): a musically motivated front-end (two timbral branches,
  7×38 and 7×67 filters, and three temporal branches, 128×1, 64×1 and 32×1, each max-pooled over the whole
  frequency axis), a mid-end of three 7-frame 1-D convolutions with residual connections, and a back-end that
  pools globally over time (max and mean) into a dense layer.
- :class:`MusicnnVGG` (``MTT_vgg``, ``MSD_vgg``): five 3×3 conv layers of 128 maps with max-pooling and one
  dense layer.

Both reproduce the TF graphs of ``musicnn/models.py`` exactly (in inference mode): every batch norm has
``eps=1e-3`` and comes *after* the ReLU; TF ``'SAME'`` padding of even kernels (the 128/64/32-frame temporal
filters) is asymmetric, one more zero at the end than at the start, done with :class:`torch.nn.ZeroPad2d`.

Input: a log-mel patch ``log10(1 + 10000 · mel)`` (librosa mel power spectrogram at 16 kHz, n_fft 512,
hop 256, 96 bands; see :data:`SR`, :data:`N_FFT`, :data:`HOP_LENGTH`, :data:`N_MELS`), in the ``BCTF`` layout
(B, 1, T, 96), where the trained models saw T = 187 frames (3 s). The convolutional layers of both models accept
any T (the temporal convolutions need nothing more; the VGG needs T >= 4); musicnn's back-end pools over all of
time, so its whole forward pass accepts any T (its tags were trained on 187 frames); the VGG's dense layer wants
exactly the trained T. ``forward`` returns logits; musicnn's tagger reports ``sigmoid(logits)``, which
:meth:`Musicnn.predict` / :meth:`MusicnnVGG.predict` return.

Loading the released weights needs no TensorFlow::

    from auralise.importers.musicnn import load_pretrained
    from auralise.importers.tfbundle import extract_musicnn
    folders = extract_musicnn(wheel, out_dir)  # {"MTT_musicnn": Path, ...}
    model = load_pretrained("MTT_musicnn", folders["MTT_musicnn"])  # eval mode
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from auralise.errors import BadModelError

# musicnn/configuration.py: the preprocessing the checkpoints were trained with
SR = 16000
N_FFT = 512
HOP_LENGTH = 256
N_MELS = 96
N_FRAMES = 187  # librosa.time_to_frames(3 s) + 1
BN_EPS = 1e-3  # tf.compat.v1.layers.batch_normalization's default

MTT_LABELS = [
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
]  # fmt: skip
MSD_LABELS = [
    "rock", "pop", "alternative", "indie", "electronic", "female vocalists", "dance", "00s", "alternative rock",
    "jazz", "beautiful", "metal", "chillout", "male vocalists", "classic rock", "soul", "indie rock", "Mellow",
    "electronica", "80s", "folk", "90s", "chill", "instrumental", "punk", "oldies", "blues", "hard rock", "ambient",
    "acoustic", "experimental", "female vocalist", "guitar", "Hip-Hop", "70s", "party", "country", "easy listening",
    "sexy", "catchy", "funk", "electro", "heavy metal", "Progressive rock", "60s", "rnb", "indie pop", "sad", "House",
    "happy",
]  # fmt: skip

# released checkpoint → (zoo name, constructor config, labels)
PRETRAINED: dict[str, tuple[str, dict, list[str]]] = {
    "MTT_musicnn": ("musicnn", {"n_classes": 50}, MTT_LABELS),
    "MSD_musicnn": ("musicnn", {"n_classes": 50}, MSD_LABELS),
    "MTT_vgg": ("musicnn-vgg", {"n_classes": 50}, MTT_LABELS),
    "MSD_vgg": ("musicnn-vgg", {"n_classes": 50}, MSD_LABELS),
}


def _same_pad(kernel: int) -> tuple[int, int]:
    """TF ``'SAME'`` padding (before, after) of one axis for stride 1: the odd zero goes at the end."""
    total = kernel - 1
    return total // 2, total - total // 2


def _bn(channels: int, dims: int = 2) -> nn.Module:
    return (nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d)(channels, eps=BN_EPS)


class Musicnn(nn.Module):
    """musicnn (Pons & Serra 2019): musically motivated front-end, residual 1-D mid-end, global-pooling back-end.

    Mirrors ``musicnn.models.build_musicnn``; ``Musicnn()`` is ``MTT_musicnn`` / ``MSD_musicnn``, and
    ``Musicnn(num_filt_midend=512, num_units_backend=500)`` is the shape of ``MSD_musicnn_big``.

    Parameters
    ----------
    n_classes : int
        Number of output tags (50 for the released models).
    n_mels : int
        Mel bands of the input (96); the timbral filters are ``int(0.4 n_mels)`` and ``int(0.7 n_mels)`` bands tall.
    num_filt_frontend : float
        Front-end width factor: ``int(128 f)`` maps per timbral branch, ``int(32 f)`` per temporal branch
        (1.6 → 204 and 51).
    num_filt_midend : int
        Maps of each mid-end convolution (64).
    num_units_backend : int
        Units of the penultimate dense layer (200).
    dropout : float
        Dropout rate of the back-end (0.5; inactive in eval mode).

    Notes
    -----
    Shapes for an input (B, 1, T, n_mels), with C_f = 2·int(128 f) + 3·int(32 f) (561) and
    C_m = C_f + 3·num_filt_midend (753):

    - ``timbral[i]``: pad T by 3 each side, conv (7, h_i) valid, ReLU, BN, max-pool over all n_mels - h_i + 1
      bands → (B, int(128 f), T, 1);
    - ``temporal[i]``: pad T 'SAME' (k = 128, 64, 32 → (63, 64), (31, 32), (15, 16)), conv (k, 1), ReLU, BN, max-pool
      over all n_mels bands → (B, int(32 f), T, 1);
    - the five branches are concatenated on channels (timbral 7×38, 7×67, temporal 128, 64, 32) → (B, C_f, T, 1);
    - ``midend[j]``: conv (7, 1) with padding 3 over time, ReLU, BN → (B, num_filt_midend, T, 1). TF writes these as
      2-D convs whose kernel spans the whole feature axis (kernel (7, C_in, 1, out)), which is this conv with the
      features as input channels. Outputs m1, m2 + m1, m3 + (m2 + m1);
    - front-end and the three mid-end outputs are concatenated on channels → (B, C_m, T, 1);
    - back-end: max and mean over time, stacked as (B, C_m, 2) and flattened so that features interleave
      ``[max_0, mean_0, max_1, mean_1, ...]`` (TF's ``concat([max, mean], 2)`` then ``flatten``) → (B, 2 C_m),
      BN, dropout, dense + ReLU → (B, num_units_backend), BN, dropout, dense → logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int = 50,
        n_mels: int = N_MELS,
        num_filt_frontend: float = 1.6,
        num_filt_midend: int = 64,
        num_units_backend: int = 200,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.config = dict(
            n_classes=n_classes,
            n_mels=n_mels,
            num_filt_frontend=num_filt_frontend,
            num_filt_midend=num_filt_midend,
            num_units_backend=num_units_backend,
            dropout=dropout,
        )
        timbral_maps, temporal_maps = int(num_filt_frontend * 128), int(num_filt_frontend * 32)
        self.input_bn = _bn(1)
        heights = (int(0.4 * n_mels), int(0.7 * n_mels))
        self.timbral = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(1, timbral_maps, (7, h), padding=(3, 0)),
                nn.ReLU(),
                _bn(timbral_maps),
                nn.MaxPool2d((1, n_mels - h + 1)),
            )
            for h in heights
        )
        self.temporal = nn.ModuleList(
            nn.Sequential(
                nn.ZeroPad2d((0, 0, *_same_pad(k))),
                nn.Conv2d(1, temporal_maps, (k, 1)),
                nn.ReLU(),
                _bn(temporal_maps),
                nn.MaxPool2d((1, n_mels)),
            )
            for k in (128, 64, 32)
        )
        front = 2 * timbral_maps + 3 * temporal_maps
        self.midend = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, num_filt_midend, (7, 1), padding=(3, 0)), nn.ReLU(), _bn(num_filt_midend))
            for c in (front, num_filt_midend, num_filt_midend)
        )
        pooled = 2 * (front + 3 * num_filt_midend)
        self.backend = nn.Sequential(
            _bn(pooled, 1),
            nn.Dropout(dropout),
            nn.Linear(pooled, num_units_backend),
            nn.ReLU(),
            _bn(num_units_backend, 1),
            nn.Dropout(dropout),
        )
        self.classifier = nn.Linear(num_units_backend, n_classes)

    def extract(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The intermediate representations musicnn's extractor reports, plus the logits.

        Parameters
        ----------
        x : torch.Tensor, shape (B, 1, T, n_mels)
            Log-mel patches.

        Returns
        -------
        dict of torch.Tensor
            ``timbral`` (B, 2 int(128 f), T), ``temporal`` (B, 3 int(32 f), T), ``cnn1``, ``cnn2``, ``cnn3``
            (B, num_filt_midend, T), ``max_pool`` and ``mean_pool`` (B, C_m), ``penultimate``
            (B, num_units_backend), ``logits`` (B, n_classes). Channels first: musicnn's are (B, T, C).
        """
        x = self.input_bn(x)
        branches = [block(x) for block in self.timbral] + [block(x) for block in self.temporal]
        front = torch.cat(branches, dim=1)  # (B, C_f, T, 1)
        m1 = self.midend[0](front)
        m2 = self.midend[1](m1) + m1
        m3 = self.midend[2](m2) + m2
        mid = torch.cat([front, m1, m2, m3], dim=1)  # (B, C_m, T, 1)
        max_pool = torch.amax(mid, dim=2)  # (B, C_m, 1)
        mean_pool = torch.mean(mid, dim=2)
        flat = torch.flatten(torch.cat([max_pool, mean_pool], dim=2), 1)  # interleaved max/mean, (B, 2 C_m)
        penultimate = self.backend(flat)
        n_timbral = 2 * self.timbral[0][0].out_channels
        return {
            "timbral": front[:, :n_timbral, :, 0],
            "temporal": front[:, n_timbral:, :, 0],
            "cnn1": m1[..., 0],
            "cnn2": m2[..., 0],
            "cnn3": m3[..., 0],
            "max_pool": max_pool[..., 0],
            "mean_pool": mean_pool[..., 0],
            "penultimate": penultimate,
            "logits": self.classifier(penultimate),
        }

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits (B, n_classes) of log-mel patches ``x`` (B, 1, T, n_mels), any T >= 1."""
        x = self.input_bn(x)
        front = torch.cat([block(x) for block in self.timbral] + [block(x) for block in self.temporal], dim=1)
        m1 = self.midend[0](front)
        m2 = self.midend[1](m1) + m1
        m3 = self.midend[2](m2) + m2
        mid = torch.cat([front, m1, m2, m3], dim=1)
        pooled = torch.cat([torch.amax(mid, dim=2), torch.mean(mid, dim=2)], dim=2)  # (B, C_m, 2)
        return self.classifier(self.backend(torch.flatten(pooled, 1)))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Tag probabilities ``sigmoid(forward(x))`` (B, n_classes), as musicnn's tagger reports them."""
        return torch.sigmoid(self(x))


class MusicnnVGG(nn.Module):
    """musicnn's VGG baseline: five 3×3 conv layers (ReLU, BN, max-pool) and one dense layer.

    Mirrors ``musicnn.models.vgg``; ``MusicnnVGG()`` is ``MTT_vgg`` / ``MSD_vgg``.

    Parameters
    ----------
    n_classes : int
        Number of output tags (50).
    n_mels : int
        Mel bands of the input (96).
    n_frames : int
        Input frames the dense layer was trained for (187); the conv layers accept any T >= 4.
    num_filters : int
        Maps per conv layer (128).
    dropout : float
        Dropout after each pooling (0.25) — the one before the dense layer is always 0.5, as in musicnn.

    Notes
    -----
    Input (B, 1, T, n_mels). Each block: conv 3×3 with TF 'SAME' padding (1 each side), ReLU, BN, max-pool
    ('VALID', floor): block 1 pools 4×1 with stride 2×2 (187×96 → 92×48), blocks 2-4 pool 2×2 stride 2
    (→ 46×24 → 23×12 → 11×6), block 5 pools 4×4 stride 4 (→ 2×1). The dense layer reads the last map in TF's
    channels-last order (time, freq, channel), i.e. (B, 128, 2, 1) is permuted to (B, 2, 1, 128) before flattening
    to (B, 256) → logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int = 50,
        n_mels: int = N_MELS,
        n_frames: int = N_FRAMES,
        num_filters: int = 128,
        dropout: float = 0.25,
    ):
        super().__init__()
        self.config = dict(
            n_classes=n_classes, n_mels=n_mels, n_frames=n_frames, num_filters=num_filters, dropout=dropout
        )
        self.input_bn = _bn(1)
        pools = [((4, 1), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((2, 2), (2, 2)), ((4, 4), (4, 4))]
        blocks: list[nn.Module] = []
        t, f = n_frames, n_mels
        for i, (size, stride) in enumerate(pools):
            if i:
                blocks.append(nn.Dropout(dropout))
            blocks += [
                nn.Conv2d(1 if i == 0 else num_filters, num_filters, 3, padding=1),
                nn.ReLU(),
                _bn(num_filters),
                nn.MaxPool2d(size, stride),
            ]
            t, f = (t - size[0]) // stride[0] + 1, (f - size[1]) // stride[1] + 1
        if t < 1 or f < 1:
            raise ValueError(f"an input of {n_frames}×{n_mels} is too small for the VGG's pooling")
        self.features = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(0.5)
        self.classifier = nn.Linear(t * f * num_filters, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Tag logits (B, n_classes) of log-mel patches ``x`` (B, 1, n_frames, n_mels)."""
        x = self.features(self.input_bn(x))  # (B, num_filters, t, f)
        x = torch.flatten(x.permute(0, 2, 3, 1), 1)  # TF's channels-last flattening
        return self.classifier(self.dropout(x))

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Tag probabilities ``sigmoid(forward(x))`` (B, n_classes), as musicnn's tagger reports them."""
        return torch.sigmoid(self(x))


# ------------------------------------------------------------------------------------------ weights


def _conv(w: np.ndarray) -> np.ndarray:
    """TF HWIO kernel → PyTorch OIHW."""
    return np.transpose(w, (3, 2, 0, 1))


def _midend_conv(w: np.ndarray) -> np.ndarray:
    """musicnn mid-end kernel (7, C_in, 1, C_out), a 2-D conv spanning the feature axis → (C_out, C_in, 7, 1)."""
    return np.transpose(w, (3, 1, 0, 2))


def _dense(w: np.ndarray) -> np.ndarray:
    """TF dense kernel (in, out) → PyTorch Linear weight (out, in)."""
    return np.transpose(w, (1, 0))


def _bn_names(tf: str, torch_prefix: str) -> list[tuple[str, str, object]]:
    pairs = (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean"), ("moving_variance", "running_var"))
    return [(f"{tf}/{a}", f"{torch_prefix}.{b}", None) for a, b in pairs]


def _bn_tf(i: int) -> str:
    return "batch_normalization" if i == 0 else f"batch_normalization_{i}"


def _conv_tf(i: int) -> str:
    return "conv2d" if i == 0 else f"conv2d_{i}"


def weight_map(module: nn.Module) -> list[tuple[str, str, object]]:
    """(TF variable name, state_dict key, transform or None) for every parameter and BN statistic of ``module``.

    Parameters
    ----------
    module : Musicnn or MusicnnVGG

    Returns
    -------
    list of (str, str, callable or None)
        The TF1 names follow the order in which ``musicnn.models`` creates the layers (``conv2d``, ``conv2d_1``, ...,
        ``batch_normalization``, ``batch_normalization_1``, ..., ``dense``, ``dense_1``; the VGG's convs are
        ``1CNN`` ... ``5CNN``).
    """
    out: list[tuple[str, str, object]] = []
    if isinstance(module, Musicnn):
        convs = [(f"timbral.{i}.0", _conv) for i in range(2)] + [(f"temporal.{i}.1", _conv) for i in range(3)]
        convs += [(f"midend.{i}.0", _midend_conv) for i in range(3)]
        bns = ["input_bn"] + [f"timbral.{i}.2" for i in range(2)] + [f"temporal.{i}.3" for i in range(3)]
        bns += [f"midend.{i}.2" for i in range(3)] + ["backend.0", "backend.4"]
        for i, (path, fn) in enumerate(convs):
            out += [(f"{_conv_tf(i)}/kernel", f"{path}.weight", fn), (f"{_conv_tf(i)}/bias", f"{path}.bias", None)]
        dense = [("dense", "backend.2"), ("dense_1", "classifier")]
    elif isinstance(module, MusicnnVGG):
        conv_idx = [i for i, m in enumerate(module.features) if isinstance(m, nn.Conv2d)]
        for n, i in enumerate(conv_idx, 1):
            out += [(f"{n}CNN/kernel", f"features.{i}.weight", _conv), (f"{n}CNN/bias", f"features.{i}.bias", None)]
        bns = ["input_bn"] + [f"features.{i + 2}" for i in conv_idx]
        dense = [("dense", "classifier")]
    else:
        raise TypeError(f"expected a Musicnn or MusicnnVGG module, got {type(module).__name__}")
    for i, path in enumerate(bns):
        out += _bn_names(_bn_tf(i), path)
    for tf, path in dense:
        out += [(f"{tf}/kernel", f"{path}.weight", _dense), (f"{tf}/bias", f"{path}.bias", None)]
    return out


def load_musicnn_weights(module: nn.Module, arrays: dict[str, np.ndarray]) -> nn.Module:
    """Copy a musicnn TF1 checkpoint's variables into ``module`` (in place) and return it.

    Parameters
    ----------
    module : Musicnn or MusicnnVGG
        Built with the checkpoint's shape (the default configs for the four released models).
    arrays : dict of str to numpy.ndarray
        Variables by TF name, as :func:`auralise.importers.tfbundle.read_bundle` returns them (optimizer state skipped):
        conv kernels HWIO, dense kernels (in, out), batch-norm ``gamma``/``beta``/``moving_mean``/``moving_variance``.

    Returns
    -------
    torch.nn.Module
        ``module``, its weights and batch-norm statistics replaced (BN ``eps`` stays the module's, 1e-3).

    Raises
    ------
    BadModelError
        When a variable the module needs is missing, a variable is left unused, or a shape does not match.
    """
    mapping = weight_map(module)
    state = module.state_dict()
    missing = sorted(tf for tf, _, _ in mapping if tf not in arrays)
    unused = sorted(set(arrays) - {tf for tf, _, _ in mapping})
    problems = []
    if missing:
        problems.append(f"missing {', '.join(missing)}")
    if unused:
        problems.append(f"unused {', '.join(unused)}")
    new: dict[str, torch.Tensor] = {}
    for tf, key, fn in mapping:
        if tf not in arrays:
            continue
        value = np.asarray(arrays[tf], dtype=np.float32)
        value = fn(value) if fn is not None else value
        want = tuple(state[key].shape)
        if value.shape != want:
            problems.append(f"{tf}: shape {tuple(arrays[tf].shape)} does not fit {key} {want}")
            continue
        new[key] = torch.from_numpy(np.ascontiguousarray(value))
    leftover = sorted(k for k in state if k not in new and not k.endswith("num_batches_tracked"))
    if leftover and not problems:
        problems.append(f"no variable for {', '.join(leftover)}")
    if problems:
        raise BadModelError(f"the checkpoint does not fit {type(module).__name__}: " + "; ".join(problems))
    with torch.no_grad():
        for key, value in new.items():
            state[key].copy_(value)
    return module


__all__ = [
    "Musicnn",
    "MusicnnVGG",
    "load_musicnn_weights",
    "weight_map",
    "PRETRAINED",
    "MTT_LABELS",
    "MSD_LABELS",
]
