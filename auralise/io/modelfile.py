"""Model files: the auralise checkpoint, and pickled whole modules behind an explicit trust flag.

The auralise checkpoint is a plain dict that ``torch.load(weights_only=True)`` reads without running code::

    {"format": "auralise-checkpoint", "version": 1,
     "architecture": "choi2016" | "package.module:Class", "config": {...constructor kwargs...},
     "state_dict": {...}, "frontend": {...}, "labels": [...] | None, "provenance": {...}}

What runs code, and so needs ``trust=True`` (``--trust-model``): an architecture given as a bare import path
(registered names, the zoo's and those of installed packages, load freely: see :mod:`auralise.nets.zoo`), a pickled
whole module, and a ``torch.export`` archive (``.pt2``) holding anything that ``torch.export.load`` would unpickle
or evaluate (pickled weights or constants, custom objects, compiled AOTInductor code, sample inputs that need full
unpickling, and symbolic-shape expressions or guards that are not plain arithmetic). All of this is checked
before anything from the file is imported, unpickled or evaluated.

Example
-------
>>> import auralise
>>> net = auralise.nets.zoo.build("choi2016")
>>> fe = {"kind": "stft", "sr": 11025, "n_fft": 512, "hop_length": 256, "compression": "linear"}
>>> auralise.save_model(net, "choi.pt", frontend=fe)          # doctest: +SKIP
>>> model = auralise.load_model("choi.pt")                     # doctest: +SKIP
"""

from __future__ import annotations

import ast
import io
import json
import math
import os
import pickle
import pickletools
import re
import warnings
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from auralise.errors import BadModelError
from auralise.frontends.base import Frontend
from auralise.io.files import atomic_path, parse_json
from auralise.nets import zoo

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
    # fail now, not when someone loads the file; the class is the caller's own, already imported: trusted here
    rebuilt = zoo.build(architecture, config, trust=True)
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
    trust : allow a file to run code: pickled whole modules, architectures given as an import path rather than a
        registered name, ``.pt2`` archives with pickled or evaluated members. Never for files from untrusted
        sources.
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
    obj = _load_exported(p, trust) if p.suffix == ".pt2" else _load_checkpoint_or_pickle(p, trust)
    if isinstance(obj, torch.nn.Module):
        kind = "torch.export" if p.suffix == ".pt2" else "pickled-module"
        module, fe_dict, labels, meta = obj, None, None, {"format": kind}
    elif isinstance(obj, dict) and obj.get("format") == FORMAT:
        module, fe_dict, labels, meta = _from_checkpoint(obj, p, trust)
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


def _load_exported(p: Path, trust: bool = False) -> torch.nn.Module:
    """A ``torch.export`` program as a callable module (its front-end comes from a sidecar or the caller).

    Unless ``trust``, the archive is inspected first (:func:`check_exported_archive`): ``torch.export.load``
    unpickles some members and evaluates symbolic expressions, which can run code.
    """
    if not trust:
        check_exported_archive(p)
    try:
        return torch.export.load(p).module()
    except Exception as exc:  # noqa: BLE001 - any failure means the file is not a readable exported program
        raise BadModelError(
            f"cannot read exported program {p} ({_first_line(exc)}); write it with torch.export.save"
        ) from exc


# ---------------------------------------------------------------------------------------------- .pt2 archives
# torch.export.load (torch 2.x) runs code from the archive in four ways: it unpickles weights and constants whose
# config entry says "use_pickle" and custom or opaque objects (constants named custom_obj_* / opaque_obj_*); it
# loads sample inputs and legacy state dicts with torch.load(weights_only=True) and, when that fails, falls back to
# full unpickling; it loads AOTInductor shared libraries (data/aotinductor/); and it evaluates every symbolic
# expression ("expr_str", via sympy.sympify, i.e. eval) and guard ("guards_code", exec'd into the module's forward).
_PT2_ARTIFACT = re.compile(r"data/sample_inputs/[^/]+\.pt|data/(weights|constants)/[^/]+\.pt")
_PT2_LEGACY_ARTIFACTS = ("serialized_state_dict.pt", "serialized_constants.pt", "serialized_example_inputs.pt")
_PT2_CONFIG = re.compile(r"data/(weights|constants)/[^/]+_(weights|constants)_config\.json")
_PT2_PROGRAM = re.compile(r"models/[^/]+\.json")
_PT2_MAX_READ = 256 << 20  # a member that big is no model description: refuse rather than read it
_TRUST_PT2 = "pass --trust-model (trust=True) only if you trust its source"


def check_exported_archive(path: str | os.PathLike) -> None:
    """Refuse (BadModelError) a ``.pt2`` whose loading would unpickle or evaluate code; reads, never runs, it.

    Allowed: raw tensor payloads, JSON, sample inputs that ``torch.load(weights_only=True)`` reads, symbolic
    expressions made only of sympy/torch arithmetic, and guards made only of size comparisons. A file that is not
    a zip archive is left to ``torch.export.load`` to reject.
    """
    p = Path(path)
    if not zipfile.is_zipfile(p):
        return
    try:
        _check_archive(p)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError, NotImplementedError, RuntimeError) as exc:
        raise BadModelError(
            f"cannot read exported program {p} ({_first_line(exc)}); write it with torch.export.save"
        ) from exc


def _check_archive(p: Path) -> None:
    with zipfile.ZipFile(p) as z:
        infos = z.infolist()
        rels = [_archive_relative(i.filename) for i in infos]
        if len(set(rels)) != len(rels) or len({i.filename for i in infos}) != len(infos):
            raise BadModelError(f"{p} has duplicate members, so what torch would read cannot be checked; {_TRUST_PT2}")
        raw: set[str] = set()
        for info, rel in zip(infos, rels):
            if _PT2_CONFIG.fullmatch(rel):
                raw |= _check_payload_config(p, rel, _read_json(p, z, info))
        for info, rel in zip(infos, rels):
            name = info.filename
            if rel.startswith("data/aotinductor/"):
                raise BadModelError(f"{p} holds compiled AOTInductor code ({name}), which runs on load; {_TRUST_PT2}")
            if _PT2_PROGRAM.fullmatch(rel) or name == "serialized_exported_program.json":
                _check_program(p, name, _read_json(p, z, info))
            elif _PT2_ARTIFACT.fullmatch(rel) or name in _PT2_LEGACY_ARTIFACTS:
                _check_weights_only(p, name, _read(p, z, info))
            elif rel not in raw and not _PT2_CONFIG.fullmatch(rel):
                with z.open(info) as f:
                    head = f.read(4)
                if _looks_pickled(head, z, info):
                    raise BadModelError(f"{p} holds a pickle ({name}), which can run code when loaded; {_TRUST_PT2}")


def _archive_relative(name: str) -> str:
    """A member's path inside the archive's root folder (``model/data/x`` -> ``data/x``), as torch reads it."""
    return name.split("/", 1)[1] if "/" in name else name


def _read(p: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    if info.file_size > _PT2_MAX_READ:
        raise BadModelError(f"{p}: member {info.filename} is {info.file_size} bytes, too large to check; {_TRUST_PT2}")
    with z.open(info) as f:
        return f.read(_PT2_MAX_READ + 1)


def _read_json(p: Path, z: zipfile.ZipFile, info: zipfile.ZipInfo):
    try:
        return parse_json(_read(p, z, info))
    except ValueError as exc:
        raise BadModelError(f"cannot read exported program {p} ({info.filename} is not JSON); write it with "
                            "torch.export.save") from exc  # fmt: skip


def _check_payload_config(p: Path, rel: str, config) -> set[str]:
    """The raw (not pickled) payload paths a weights/constants config names; refuse any pickled entry."""
    entries = config.get("config") if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        raise BadModelError(f"cannot read exported program {p} ({rel} is malformed); write it with torch.export.save")
    folder = rel.rsplit("/", 1)[0]
    raw = set()
    for fqn, entry in entries.items():
        path_name = entry.get("path_name") if isinstance(entry, dict) else None
        if not isinstance(path_name, str):
            raise BadModelError(f"cannot read exported program {p} ({rel} is malformed); write it with "
                                "torch.export.save")  # fmt: skip
        pickled = entry.get("use_pickle") is not False
        if folder == "data/constants" and not path_name.startswith("tensor_"):
            pickled = True  # custom_obj_* and opaque_obj_* constants are always unpickled
        if pickled:
            raise BadModelError(
                f"{p} holds a pickled weight or constant {_short(fqn)} ({folder}/{_short(path_name)[1:-1]}), "
                f"which can run code when loaded; {_TRUST_PT2}"
            )
        raw.add(f"{folder}/{path_name}")
    return raw


def _check_weights_only(p: Path, name: str, data: bytes) -> None:
    """torch loads these with weights_only=True and, if that fails, unpickles them fully: only the first may do."""
    if not data:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - anything weights_only refuses would be fully unpickled
        raise BadModelError(
            f"{p} holds {name}, which only loads by full unpickling (can run code); {_TRUST_PT2}"
        ) from exc


def _looks_pickled(head: bytes, z: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    if head[:1] == b"\x80" and head[1:2] in (b"\x02", b"\x03", b"\x04", b"\x05"):
        return True
    if head[:4] == b"PK\x03\x04":  # a nested torch.save archive
        try:
            with z.open(info) as f, zipfile.ZipFile(io.BytesIO(f.read(_PT2_MAX_READ))) as inner:
                return any(n.endswith(".pkl") for n in inner.namelist())
        except zipfile.BadZipFile:
            return False
    return False


def _check_program(p: Path, name: str, program) -> None:
    """Every string torch would evaluate (sympy expressions, guards) must be plain arithmetic on sizes."""
    stack = [program]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "expr_str" and isinstance(value, str):
                    _check_expression(p, name, value, _SYMPY_NAMES, guard=False)
                elif key == "guards_code":
                    for guard in value if isinstance(value, list) else [value]:
                        _check_expression(p, name, guard, _GUARD_NAMES, guard=True)
                else:
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(node)


# names a symbolic expression may use: sympy's srepr of shape arithmetic and torch.utils._sympy.functions
_SYMPY_NAMES = frozenset(
    """Symbol Integer Rational Float Mul Add Pow Max Min Mod Abs floor ceiling Eq Ne Lt Le Gt Ge Equality
    Unequality StrictLessThan StrictGreaterThan LessThan GreaterThan And Or Not Piecewise ExprCondPair true false
    oo zoo nan int_oo IntInfinity NegativeIntInfinity Infinity NegativeInfinity NaN BooleanTrue BooleanFalse
    FloorDiv ModularIndexing Where PythonMod CleanDiv CeilToInt FloorToInt CeilDiv IntTrueDiv FloatTrueDiv LShift
    RShift IsNonOverlappingAndDenseIndicator TruncToFloat TruncToInt RoundToInt RoundDecimal ToFloat FloatPow
    PowByNatural Identity""".split()
)
# names a guard may use: L['x'].size()[i] comparisons and the functions torch's guard printer emits
_GUARD_NAMES = frozenset(
    """L size stride storage_offset math torch floor ceil trunc sqrt isnan inf sym_float sym_int sym_max sym_min
    sym_sqrt sym_not sym_ite max min abs int float round True False None""".split()
)
_POWERS = frozenset({"Pow", "PowByNatural", "FloatPow", "LShift"})
_SYMBOL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_TEXT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")
_EXPR_NODES = (
    ast.Expression, ast.Call, ast.Name, ast.Constant, ast.keyword, ast.Load, ast.UnaryOp, ast.USub, ast.UAdd,
    ast.Not, ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow, ast.BoolOp, ast.And,
    ast.Or, ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE,
)  # fmt: skip
_GUARD_NODES = (*_EXPR_NODES, ast.Attribute, ast.Subscript)


def _check_expression(p: Path, member: str, text, names: frozenset, *, guard: bool) -> None:
    """Parse (never evaluate) ``text`` and refuse anything beyond arithmetic, comparisons and allowed names."""

    def refuse(why: str) -> BadModelError:
        what = "guard" if guard else "symbolic expression"
        return BadModelError(f"{p} holds a {what} in {member} that torch would run as code ({why}): "
                             f"{_short(text, 60)}; {_TRUST_PT2}")  # fmt: skip

    if not isinstance(text, str) or len(text) > 10_000 or any(c in text for c in '\n\r\\"#;\x00'):
        raise refuse("not a short one-line expression")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise refuse("does not parse") from exc
    powers = 0
    for node in ast.walk(tree):
        if not isinstance(node, _GUARD_NODES if guard else _EXPR_NODES):
            raise refuse(f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Name) and node.id not in names and not (not guard and _SYMBOL.fullmatch(node.id)
                                                                        and node.id[:1].islower()):  # fmt: skip
            raise refuse(f"name {node.id!r} is not allowed")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in names
                                               or guard and isinstance(node.func, ast.Attribute)):  # fmt: skip
            raise refuse("only calls of allowed functions")
        if isinstance(node, ast.Attribute) and node.attr not in names:
            raise refuse(f"attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Constant):
            v = node.value
            ok = (
                v is None or isinstance(v, bool) or (isinstance(v, int) and abs(v) < 10**30)
                or (isinstance(v, float) and math.isfinite(v))
                or (isinstance(v, str) and len(v) <= 64 and (_SYMBOL.fullmatch(v) or _NUMBER_TEXT.fullmatch(v)))
            )  # fmt: skip
            if not ok:
                raise refuse(f"constant {_short(v, 30)} is not allowed")
        exponent = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow):
            exponent = node.right
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _POWERS:
            exponent = node.args[1] if len(node.args) > 1 else None
        if exponent is not None:
            powers += 1
            big = [c.value for c in ast.walk(exponent) if isinstance(c, ast.Constant)
                   and isinstance(c.value, int | float) and abs(c.value) > 64]  # fmt: skip
            if big or powers > 4:
                raise refuse("a power too large to evaluate")


def _from_checkpoint(ck: dict, p: Path, trust: bool = False) -> tuple[torch.nn.Module, dict | None, list | None, dict]:
    version = ck.get("version", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BadModelError(
            f"{p}: the checkpoint's format version must be a positive integer, got {_short(version)}; "
            "re-save the model with auralise.save_model"
        )
    if version > VERSION:
        raise BadModelError(f"{p} was written by a newer auralise (format version {version}); upgrade auralise")
    for key in ("architecture", "state_dict"):
        if key not in ck:
            raise BadModelError(f"{p} is an incomplete auralise checkpoint (no {key!r}); re-save it with save_model")
    architecture, config, state_dict = ck["architecture"], ck.get("config"), ck["state_dict"]
    if not isinstance(architecture, str) or not architecture:
        raise BadModelError(
            f"{p}: 'architecture' must be a registered name or 'package.module:Class', got {_short(architecture)}; "
            "re-save the model with auralise.save_model"
        )
    if config is not None and not (isinstance(config, dict) and all(isinstance(k, str) for k in config)):
        raise BadModelError(
            f"{p}: 'config' must be a dict of constructor keyword arguments, got {_short(config)}; "
            "re-save the model with auralise.save_model"
        )
    if not isinstance(state_dict, dict) or not all(isinstance(k, str) for k in state_dict):
        raise BadModelError(
            f"{p}: 'state_dict' must be a dict of weight name to tensor, got {_short(state_dict)}; "
            "re-save the model with auralise.save_model"
        )
    labels = ck.get("labels")
    if labels is not None and not (isinstance(labels, list | tuple) and all(isinstance(x, str) for x in labels)):
        raise BadModelError(
            f"{p}: 'labels' must be a list of strings (or None), got {_short(labels)}; "
            "re-save the model with auralise.save_model"
        )
    for key in ("frontend", "provenance"):
        if ck.get(key) is not None and not isinstance(ck[key], dict):
            raise BadModelError(
                f"{p}: {key!r} must be a dict (or None), got {_short(ck[key])}; re-save the model with "
                "auralise.save_model"
            )
    module = _build_for(architecture, config, state_dict, p, trust)
    meta = {k: ck.get(k) for k in ("format", "version", "architecture", "config", "provenance")}
    return module, ck.get("frontend"), None if labels is None else list(labels), meta


def _build_for(architecture: str, config: dict | None, state_dict: dict, p: Path, trust: bool) -> torch.nn.Module:
    """Build the architecture and load the weights, naming the first missing, unexpected or misshapen weight.

    The module is first built on the meta device (no memory), so a config that would allocate more than the
    file's own weights is refused before anything is allocated.
    """
    try:
        with torch.device("meta"):
            skeleton = zoo.build(architecture, config, trust=trust)
    except BadModelError:
        skeleton = None  # some constructors need real tensors: the real build below reports the problem
    if skeleton is not None:
        _check_weights(skeleton, state_dict, architecture, p)
    module = zoo.build(architecture, config, trust=trust)
    if skeleton is None:
        _check_weights(module, state_dict, architecture, p)
    try:
        module.load_state_dict(state_dict)
    except Exception as exc:  # noqa: BLE001 - e.g. a dtype that does not convert
        raise BadModelError(f"{p}: the weights do not fit {architecture} ({_first_line(exc)})") from exc
    return module


def _check_weights(module: torch.nn.Module, state_dict: dict, architecture: str, p: Path) -> None:
    expected = module.state_dict()
    fix = f"for {architecture!r} with its saved config; re-save the model with auralise.save_model"
    for key, want in expected.items():
        if key not in state_dict:
            raise BadModelError(f"{p}: missing weight {key!r} {fix}")
        got = state_dict[key]
        if not isinstance(got, torch.Tensor):
            raise BadModelError(
                f"{p}: weight {key!r} is a {type(got).__name__}, not a tensor; re-save the model with save_model"
            )
        if tuple(got.shape) != tuple(want.shape):
            raise BadModelError(f"{p}: weight {key!r} has shape {tuple(got.shape)}, expected {tuple(want.shape)} {fix}")
    for key in state_dict:
        if key not in expected:
            raise BadModelError(f"{p}: unexpected weight {key!r}, not a parameter or buffer {fix}")


def _resolve_frontend(override, stored: dict | None, p: Path) -> Frontend:
    if override is None and stored is None:
        sidecar = p.with_name(p.name + ".frontend.json")
        if not sidecar.exists():
            sidecar = p.with_suffix(".frontend.json")
        override = sidecar if sidecar.exists() else None
    if isinstance(override, (str, os.PathLike)):
        try:
            override = parse_json(Path(override).read_text())
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


def _short(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
