"""Reference architectures and their registry.

A checkpoint names its architecture by a registered name or by an import path (``"package.module:Class"``);
:func:`build` turns either, with the saved constructor config, into a module. Every zoo class keeps its
constructor arguments in ``self.config`` so :func:`auralise.save_model` can store them.

Trust: a name is *registered* when it is the zoo's own (:data:`REGISTRY`) or when an installed package declares
it in the ``auralise.architectures`` entry-point group (installing the package is the act of trust)::

    [project.entry-points."auralise.architectures"]
    mynet = "mypkg.nets:MyNet"

Registered names load freely. Any other import path is code the model file chooses to run: :func:`build` refuses
it before importing anything unless ``trust=True``. Even trusted, the target must be an ``nn.Module`` subclass
and the config a dict with string keys, called only as ``cls(**config)``.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from collections.abc import Callable

import torch
from torch import nn

from auralise.errors import BadModelError

REGISTRY: dict[str, type[nn.Module]] = {}
ENTRY_POINT_GROUP = "auralise.architectures"
_TRUST_HINT = (
    "pass --trust-model (trust=True) only if you trust the file, or install a package that registers the "
    f"architecture in the {ENTRY_POINT_GROUP!r} entry-point group"
)


def register(name: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make an architecture loadable by ``name``."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        REGISTRY[name] = cls
        return cls

    return add


def entry_point_architectures() -> dict[str, importlib.metadata.EntryPoint]:
    """Architectures that installed packages register: name -> entry point (``"pkg.mod:Class"``), not loaded."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(ep.name, ep)
    return found


def name_of(module: nn.Module) -> str:
    """The registered name of ``module``'s class (zoo or entry point), else its import path ``pkg.module:Class``."""
    for name, cls in REGISTRY.items():
        if type(module) is cls:
            return name
    path = f"{type(module).__module__}:{type(module).__qualname__}"
    for name, ep in entry_point_architectures().items():
        if name not in REGISTRY and ep.value.replace(" ", "") == path:
            return name
    return path


def build(architecture: str, config: dict | None = None, *, trust: bool = False) -> nn.Module:
    """Instantiate a registered name, or (only with ``trust``) an import path, as ``cls(**config)``."""
    if not isinstance(architecture, str) or not architecture:
        raise BadModelError(
            f"the model's architecture must be a registered name or 'package.module:Class', got "
            f"{_short(architecture)}; re-save the model with auralise.save_model"
        )
    if config is None:
        config = {}
    if not isinstance(config, dict) or not all(isinstance(k, str) for k in config):
        raise BadModelError(
            f"the model's config for {architecture!r} must be a dict of constructor keyword arguments, got "
            f"{_short(config)}; re-save the model with auralise.save_model"
        )
    config = dict(config)
    cls = _resolve(architecture, trust)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise BadModelError(
            f"the model's architecture {architecture!r} is not an nn.Module class ({type(cls).__name__}); "
            "auralise only builds module classes"
        )
    try:
        return cls(**config)
    except Exception as exc:  # noqa: BLE001 - a constructor refusing the saved config is a bad model file
        raise BadModelError(
            f"cannot build {architecture!r} from its saved config {_short(config)} ({_first_line(exc)}); "
            "re-save the model with auralise.save_model"
        ) from exc


def _resolve(architecture: str, trust: bool) -> object:
    """The class named by ``architecture``; an unregistered import path only with ``trust``, checked first."""
    if architecture in REGISTRY:
        return REGISTRY[architecture]
    registered = entry_point_architectures()
    if architecture in registered:
        ep = registered[architecture]
        try:
            return ep.load()
        except Exception as exc:  # noqa: BLE001 - an installed plug-in failing to import
            raise BadModelError(
                f"cannot load architecture {architecture!r} registered as {ep.value!r} ({_first_line(exc)}); "
                "reinstall the package that provides it"
            ) from exc
    module_name, sep, qualname = architecture.partition(":")
    if not sep:
        known = ", ".join(sorted(set(REGISTRY) | set(registered)))
        raise BadModelError(
            f"unknown architecture {architecture!r}; registered: {known}; install the package that registers it"
        )
    if not trust:
        raise BadModelError(
            f"the model's architecture is the import path {architecture!r}, which would import and run code "
            f"named by the file; {_TRUST_HINT}"
        )
    parts = qualname.split(".")
    if not all(part.isidentifier() for part in [*module_name.split("."), *parts]):
        raise BadModelError(f"{architecture!r} is not an import path 'package.module:Class'; fix the model file")
    try:
        obj: object = importlib.import_module(module_name)
        for part in parts:
            obj = getattr(obj, part)
    except Exception as exc:  # noqa: BLE001 - trusted, but the code is not importable here
        raise BadModelError(
            f"cannot import the model's architecture {architecture!r} ({_first_line(exc)}); "
            "install the package that defines it"
        ) from exc
    return obj


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else type(exc).__name__
    return line if len(line) <= 160 else line[:157] + "..."


def _pooled(n: int, times: int) -> int:
    for _ in range(times):
        n //= 2
    return n


@register("choi2016")
class Choi2016(nn.Module):
    """Choi, Fazekas & Sandler (2016): 5 conv layers of 64 3×3 maps, ReLU, 2×2 max-pooling, dropout, 2 dense layers.

    Input (B, 1, n_bins, n_frames): linear-magnitude STFT at 11025 Hz, n_fft 512, hop 256 (257 bins, 173 frames
    for 4 s). Output (B, n_classes) logits. The convolutional part accepts any length; the dense head wants
    ``n_frames``.
    """

    def __init__(
        self,
        n_classes: int = 10,
        n_bins: int = 257,
        n_frames: int = 173,
        channels: int = 64,
        n_layers: int = 5,
        hidden: int = 256,
        dropout: float = 0.5,
        batch_norm: bool = False,
    ):
        super().__init__()
        self.config = dict(
            n_classes=n_classes,
            n_bins=n_bins,
            n_frames=n_frames,
            channels=channels,
            n_layers=n_layers,
            hidden=hidden,
            dropout=dropout,
            batch_norm=batch_norm,
        )
        blocks: list[nn.Module] = []
        for i in range(n_layers):
            blocks.append(nn.Conv2d(1 if i == 0 else channels, channels, 3, padding=1))
            if batch_norm:
                blocks.append(nn.BatchNorm2d(channels))
            blocks += [nn.ReLU(inplace=True), nn.MaxPool2d(2), nn.Dropout(dropout)]
        self.features = nn.Sequential(*blocks)
        flat = channels * _pooled(n_bins, n_layers) * _pooled(n_frames, n_layers)
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(flat, hidden),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@register("pons-synth")
class PonsFilterShapes(nn.Module):
    """A musically motivated CNN after Pons et al.: parallel frequency (m×1) and temporal (1×n) first-layer filters.

    Each first-layer branch (conv, batch norm, ReLU) is max-pooled over the whole frequency axis, the branches
    are concatenated into a (B, C, T) sequence, then ``n_mid`` 1-D conv layers (ReLU, max-pool 2) and a global
    max+mean pool over time feed a dense classifier. Input (B, 1, n_bins, T), any T ≥ 8.
    """

    def __init__(
        self,
        n_classes: int = 3,
        n_bins: int = 257,
        freq_heights: tuple[int, ...] = (32, 96),
        time_widths: tuple[int, ...] = (15, 31, 63),
        branch_channels: int = 16,
        mid_channels: int = 64,
        n_mid: int = 3,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.config = dict(
            n_classes=n_classes,
            n_bins=n_bins,
            freq_heights=list(freq_heights),
            time_widths=list(time_widths),
            branch_channels=branch_channels,
            mid_channels=mid_channels,
            n_mid=n_mid,
            dropout=dropout,
        )
        shapes = [(m, 1) for m in freq_heights] + [(1, n) for n in time_widths]
        self.branches = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(1, branch_channels, shape, padding=(0, shape[1] // 2)),
                nn.BatchNorm2d(branch_channels),
                nn.ReLU(),
                nn.MaxPool2d((n_bins - shape[0] + 1, 1)),
            )
            for shape in shapes
        )
        mids: list[nn.Module] = []
        channels = branch_channels * len(shapes)
        for _ in range(n_mid):
            mids += [nn.Conv1d(channels, mid_channels, 3, padding=1), nn.ReLU(), nn.MaxPool1d(2)]
            channels = mid_channels
        self.mid = nn.Sequential(*mids)
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * mid_channels, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.cat([branch(x) for branch in self.branches], dim=1).squeeze(2)
        x = self.mid(x)
        return self.head(torch.cat([x.amax(dim=2), x.mean(dim=2)], dim=1))


@register("samplecnn")
class SampleCNN(nn.Module):
    """A sample-level waveform CNN after Lee et al. (2017): the input is the audio itself, (B, 1, n samples).

    A strided 3-sample convolution, then ``n_blocks`` of [3-tap conv, batch norm, ReLU, max-pool 3], a global max
    over time and a linear classifier. Every conv is a layer whose projection back to the input *is* audio.
    """

    def __init__(self, n_classes: int = 3, channels: int = 32, n_blocks: int = 6):
        super().__init__()
        self.config = dict(n_classes=n_classes, channels=channels, n_blocks=n_blocks)
        layers: list[nn.Module] = [nn.Conv1d(1, channels, 3, stride=3), nn.BatchNorm1d(channels), nn.ReLU()]
        for _ in range(n_blocks):
            layers += [nn.Conv1d(channels, channels, 3, padding=1), nn.BatchNorm1d(channels), nn.ReLU(),
                       nn.MaxPool1d(3)]  # fmt: skip
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(channels, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).amax(dim=2))


# musicnn 0.1.0 ports (auralise.nets.musicnn keeps no import of this module, so there is no cycle)
from auralise.nets.musicnn import Musicnn, MusicnnVGG  # noqa: E402

REGISTRY.update({"musicnn": Musicnn, "musicnn-vgg": MusicnnVGG})

# Basic Pitch (icassp_2022) port, on the 'hcqt' front-end
from auralise.nets.basic_pitch import BasicPitch  # noqa: E402

REGISTRY.update({"basic-pitch": BasicPitch})

# CREPE (torchcrepe 0.0.24) port, on the 'framed' front-end
from auralise.nets.crepe import Crepe  # noqa: E402

REGISTRY.update({"crepe": Crepe})
