"""Model files: the auralise checkpoint, and pickled whole modules behind an explicit trust flag.

The auralise checkpoint is a plain dict that ``torch.load(weights_only=True)`` reads without running code::

    {"format": "auralise-checkpoint", "version": 1,
     "architecture": "choi2016" | "package.module:Class", "config": {...constructor kwargs...},
     "state_dict": {...}, "frontend": {...}, "labels": [...] | None, "provenance": {...}}

Example
-------
>>> import auralise
>>> net = auralise.zoo.build("choi2016")
>>> fe = {"kind": "stft", "sr": 11025, "n_fft": 512, "hop_length": 256, "compression": "linear"}
>>> auralise.save_model(net, "choi.pt", frontend=fe)          # doctest: +SKIP
>>> model = auralise.load_model("choi.pt")                     # doctest: +SKIP
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import zoo
from .audio import atomic_path
from .errors import BadModelError
from .frontends import Frontend

FORMAT = "auralise-checkpoint"
VERSION = 1
DEFAULT_PATCH_SECONDS = 4.0
_FRONTEND_HINT = (
    "pass --frontend FILE.json (keys kind, sr, n_fft, hop_length, compression, layout) or put MODEL.frontend.json "
    "beside the model"
)


@dataclass
class LoadedModel:
    """A model ready to auralise: the module (eval mode), its front-end, class labels and metadata."""

    module: torch.nn.Module
    frontend: Frontend
    labels: list[str] | None = None
    meta: dict = field(default_factory=dict)

    def example_input(self, seconds: float | None = None) -> torch.Tensor:
        """A random model input of the model's patch length (default 4 s), batch 1, on the module's device."""
        secs = seconds or self.frontend.patch_seconds or DEFAULT_PATCH_SECONDS
        shape = self.frontend.input_shape(self.frontend.frames_for(secs))
        device = next(self.module.parameters(), torch.empty(0)).device
        return torch.rand((1, *shape), generator=torch.Generator().manual_seed(0)).to(device)

    def to(self, device: str | torch.device) -> LoadedModel:
        self.module.to(device)
        return self


def save_model(
    module: torch.nn.Module,
    path: str | os.PathLike,
    *,
    frontend: dict | Frontend,
    labels: list[str] | None = None,
    config: dict | None = None,
    provenance: dict | None = None,
) -> Path:
    """Write ``module`` as an auralise checkpoint (atomically) and return the path.

    ``config`` are the constructor's keyword arguments (default: ``module.config`` if the class keeps one);
    ``frontend`` a :class:`Frontend` or its dict (at least ``sr``, ``n_fft``, ``hop_length``); ``provenance`` any
    JSON-like facts (training recipe, data, seed, metrics).
    """
    fe = frontend if isinstance(frontend, Frontend) else Frontend.from_dict(frontend)
    config = dict(config if config is not None else getattr(module, "config", {}))
    architecture = zoo.name_of(module)
    rebuilt = zoo.build(architecture, config)  # fail now, not when someone loads the file
    try:
        rebuilt.load_state_dict(module.state_dict())
    except RuntimeError as exc:
        raise BadModelError(
            f"{architecture}(**config) does not rebuild this module ({_first_line(exc)}); "
            "pass the config it was built with"
        ) from exc
    checkpoint = {
        "format": FORMAT,
        "version": VERSION,
        "architecture": architecture,
        "config": config,
        "state_dict": {k: v.detach().cpu() for k, v in module.state_dict().items()},
        "frontend": fe.to_dict(),
        "labels": list(labels) if labels is not None else None,
        "provenance": json.loads(json.dumps(provenance or {})),
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


def load_model(
    path: str | os.PathLike,
    *,
    frontend: dict | str | os.PathLike | None = None,
    trust: bool = False,
    device: str | torch.device = "cpu",
) -> LoadedModel:
    """Load a model file for auralisation.

    Parameters
    ----------
    path : an auralise checkpoint (``.pt``), a ``torch.export`` program (``.pt2``; export the time axis as a
        dynamic dimension so whole songs fit), or a pickled whole module (only with ``trust=True``).
    frontend : front-end dict or JSON file; overrides the checkpoint's. Default for files without one:
        ``PATH.frontend.json`` beside the model.
    trust : allow unpickling arbitrary code (pickled whole modules). Never for files from untrusted sources.
    device : where the module goes.
    """
    p = Path(path)
    if not p.exists():
        raise BadModelError(f"model file {p} not found; check the path")
    if p.is_dir():
        raise BadModelError(f"{p} is a folder, not a model file; pass the .pt file")
    if _is_torchscript(p):
        raise BadModelError(
            f"{p} is a TorchScript archive, which auralise cannot hook into; "
            "save the nn.Module with auralise.save_model"
        )
    obj = _load_exported(p) if p.suffix == ".pt2" else _load_checkpoint_or_pickle(p, trust)
    if isinstance(obj, torch.nn.Module):
        kind = "torch.export" if p.suffix == ".pt2" else "pickled-module"
        module, fe_dict, labels, meta = obj, None, None, {"format": kind}
    elif isinstance(obj, dict) and obj.get("format") == FORMAT:
        module, fe_dict, labels, meta = _from_checkpoint(obj, p)
    elif isinstance(obj, dict):
        raise BadModelError(
            f"{p} holds a bare state_dict without its architecture or front-end; "
            "save the model with auralise.save_model"
        )
    else:
        raise BadModelError(f"{p} does not hold a model (found {type(obj).__name__}); pass an auralise checkpoint")
    fe = _resolve_frontend(frontend, fe_dict, p)
    if meta["format"] != "torch.export":  # exported programs are frozen in eval mode and refuse .eval()
        module.eval()
    module.to(device)
    meta["path"] = str(p)
    return LoadedModel(module=module, frontend=fe, labels=labels, meta=meta)


def _load_checkpoint_or_pickle(p: Path, trust: bool):
    """``torch.load`` with ``weights_only=True``; a pickle that imports code only when ``trust``."""
    try:
        with warnings.catch_warnings():  # e.g. "Detected pickle protocol 4": noise for a user, not a problem
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not _imports_code(p):
            raise BadModelError(
                f"cannot read model file {p}: it is corrupt or not a PyTorch file (not a valid pickle); "
                "pass an auralise checkpoint"
            ) from exc
        if not trust:
            raise BadModelError(
                f"{p} is not an auralise checkpoint but a pickle that can run arbitrary code when loaded; "
                "pass --trust-model (trust=True) only if you trust its source"
            ) from exc
        return _load_pickle(p)
    except Exception as exc:  # noqa: BLE001 - every failure here means the file is not a readable model
        raise BadModelError(
            f"cannot read model file {p}: it is corrupt or not a PyTorch file ({_first_line(exc)})"
        ) from exc


def _load_exported(p: Path) -> torch.nn.Module:
    """A ``torch.export`` program as a callable module (its front-end comes from a sidecar or the caller)."""
    try:
        return torch.export.load(p).module()
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a readable exported program
        raise BadModelError(
            f"cannot read exported program {p} ({_first_line(exc)}); write it with torch.export.save"
        ) from exc


def _from_checkpoint(ck: dict, p: Path) -> tuple[torch.nn.Module, dict | None, list | None, dict]:
    if ck.get("version", 0) > VERSION:
        raise BadModelError(f"{p} was written by a newer auralise (format version {ck['version']}); upgrade auralise")
    for key in ("architecture", "state_dict"):
        if key not in ck:
            raise BadModelError(f"{p} is an incomplete auralise checkpoint (no {key!r}); re-save it with save_model")
    module = zoo.build(ck["architecture"], ck.get("config"))
    try:
        module.load_state_dict(ck["state_dict"])
    except RuntimeError as exc:
        raise BadModelError(f"{p}: the weights do not fit {ck['architecture']} ({_first_line(exc)})") from exc
    meta = {k: ck.get(k) for k in ("format", "version", "architecture", "config", "provenance")}
    return module, ck.get("frontend"), ck.get("labels"), meta


def _resolve_frontend(override, stored: dict | None, p: Path) -> Frontend:
    if override is None and stored is None:
        sidecar = p.with_name(p.name + ".frontend.json")
        if not sidecar.exists():
            sidecar = p.with_suffix(".frontend.json")
        override = sidecar if sidecar.exists() else None
    if isinstance(override, (str, os.PathLike)):
        try:
            override = json.loads(Path(override).read_text())
        except (OSError, ValueError) as exc:
            raise BadModelError(f"cannot read front-end file {override}: {_first_line(exc)}; {_FRONTEND_HINT}") from exc
    spec = override if override is not None else stored
    if spec is None:
        raise BadModelError(f"{p} has no front-end, so its input cannot be made from audio; {_FRONTEND_HINT}")
    return spec if isinstance(spec, Frontend) else Frontend.from_dict(spec)


def _is_torchscript(p: Path) -> bool:
    if not zipfile.is_zipfile(p):
        return False
    with zipfile.ZipFile(p) as z:
        return any(n.split("/", 2)[1:2] == ["code"] for n in z.namelist())


# pickle opcodes that import or call code: a pickle without them cannot hold a module
_CODE_OPCODES = {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ", "REDUCE", "NEWOBJ", "NEWOBJ_EX"}


def _imports_code(p: Path) -> bool:
    """Whether ``p`` is a well-formed pickle (or torch archive) that names classes or functions to import.

    Only parses the opcodes (``pickletools``), never executes them: this tells a pickled whole module, which
    ``--trust-model`` can load, from a corrupt or foreign file, which no flag can.
    """
    try:
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as z:
                pkl = [n for n in z.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
                if not pkl:
                    return False
                stream = io.BytesIO(z.read(pkl[0]))
        else:
            stream = io.BytesIO(p.read_bytes())
        # a legacy torch file is several pickles in a row (magic number, version, system info, the object)
        for _ in range(4):
            if not stream.read(1):
                return False
            stream.seek(-1, io.SEEK_CUR)
            if any(op.name in _CODE_OPCODES for op, _, _ in pickletools.genops(stream)):
                return True
    except Exception:  # noqa: BLE001 - anything that does not parse is not a loadable pickle
        return False
    return False


def _load_pickle(p: Path):
    try:
        return torch.load(p, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001
        raise BadModelError(
            f"cannot unpickle {p}: {_first_line(exc)}; is the code that defines the model importable?"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
