"""What a model file may make auralise do: nothing but load weights, unless the user trusts it.

1. Architectures: registered names (the zoo's, or an installed package's ``auralise.architectures`` entry point)
   load freely; an import path is refused before anything is imported unless trusted; even trusted, only an
   ``nn.Module`` class is built, as ``cls(**config)``.
2. ``.pt2`` archives: anything ``torch.export.load`` would unpickle or evaluate is refused before it is called.
3. Malformed checkpoints: one error line naming the problem (the first offending weight), never a traceback.
4. Front-end numbers are bounded.
5. Text from the file is printed without control characters.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest
import torch
from torch import nn

import auralise
from auralise.cli import main
from auralise.errors import BadModelError
from auralise.frontends.base import Frontend
from auralise.nets import zoo
from auralise.text import printable

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "models" / "choi2016-synth.pt"
DANCE = ROOT / "demo_audio" / "dance.ogg"
FE = {"kind": "stft", "sr": 8000, "n_fft": 256, "hop_length": 128, "compression": "log1p", "layout": "BCFT"}
SMALL = {"channels": 4, "hidden": 8}


# --------------------------------------------------------------------------- helpers


def run_cli(capsys: pytest.CaptureFixture, *args: object) -> tuple[int, str, str]:
    """``auralise ARGS`` in-process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return (0 if info.value.code is None else int(info.value.code)), out, err


def assert_one_error_line(code: int, err: str, *phrases: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for phrase in phrases:
        assert phrase in lines[0], (phrase, lines[0])
    return lines[0]


def small_checkpoint(**changes) -> dict:
    """A valid auralise checkpoint dict of a small choi2016, with ``changes`` applied (None deletes a key)."""
    torch.manual_seed(0)
    net = zoo.build("choi2016", dict(SMALL))
    ck = {
        "format": "auralise-checkpoint",
        "version": 1,
        "architecture": "choi2016",
        "config": dict(net.config),
        "state_dict": net.state_dict(),
        "frontend": dict(FE),
        "labels": [f"class{i}" for i in range(10)],
        "provenance": {},
    }
    for key, value in changes.items():
        if value is None:
            ck.pop(key)
        else:
            ck[key] = value
    return ck


def write_module(folder: Path, name: str, marker: Path) -> None:
    """A module ``name`` in ``folder`` that writes ``marker`` when imported and defines an ``nn.Module`` Net."""
    (folder / f"{name}.py").write_text(
        "import pathlib\n"
        f"pathlib.Path({str(marker)!r}).write_text('imported')\n"
        "import torch\n\n\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self, width=2):\n"
        "        super().__init__()\n"
        "        self.config = {'width': width}\n"
        "        self.conv = torch.nn.Conv2d(1, width, 3)\n\n"
        "    def forward(self, x):\n"
        "        return self.conv(x)\n"
    )


# --------------------------------------------------------------------------- 1. architectures


def test_import_path_is_refused_before_anything_is_imported(tmp_path, monkeypatch):
    name = f"auralise_marker_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "imported.txt"
    write_module(tmp_path, name, marker)
    monkeypatch.syspath_prepend(str(tmp_path))
    weights = {"conv.weight": torch.zeros(2, 1, 3, 3), "conv.bias": torch.zeros(2)}
    path = tmp_path / "plugin.pt"
    torch.save(small_checkpoint(architecture=f"{name}:Net", config={"width": 2}, state_dict=weights), path)
    with pytest.raises(BadModelError) as info:
        auralise.load_model(path)
    msg = str(info.value)
    assert "\n" not in msg and "--trust-model" in msg and "auralise.architectures" in msg
    assert not marker.exists() and name not in sys.modules
    # the user vouches for the file: it loads
    loaded = auralise.load_model(path, trust=True)
    assert marker.exists() and type(loaded.module).__name__ == "Net"
    sys.modules.pop(name, None)


def _evil_checkpoint(tmp_path: Path) -> Path:
    path = tmp_path / "evil.pt"
    ck = small_checkpoint(architecture="subprocess:run", config={"args": ["sh", "-c", "touch PWNED"]}, state_dict={})
    torch.save(ck, path)
    return path


@pytest.mark.parametrize("trusted", [False, True])
def test_cli_never_runs_a_function_named_by_the_file(tmp_path, trusted):
    """`auralise inspect evil.pt` once ran `sh -c "touch PWNED"`; with or without --trust-model it must not."""
    _evil_checkpoint(tmp_path)
    args = ["inspect", "evil.pt", *(["--trust-model"] if trusted else [])]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", "from auralise.cli import main; main()", *args],
        cwd=tmp_path, capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert not (tmp_path / "PWNED").exists()
    assert_one_error_line(proc.returncode, proc.stderr, "subprocess:run")
    assert proc.stdout == ""
    assert ("not an nn.Module class" if trusted else "--trust-model") in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.pt"]  # nothing written


def test_trusted_build_only_builds_module_classes_from_dict_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(BadModelError, match="not an nn.Module class"):
        zoo.build("subprocess:run", {"args": ["sh", "-c", "touch PWNED"]}, trust=True)
    assert not (tmp_path / "PWNED").exists()
    with pytest.raises(BadModelError, match="must be a dict"):
        zoo.build("collections:OrderedDict", ["not", "kwargs"], trust=True)
    with pytest.raises(BadModelError, match="must be a dict"):
        zoo.build("choi2016", {1: 2})
    with pytest.raises(BadModelError, match="registered name"):
        zoo.build(5)  # type: ignore[arg-type]


def test_entry_point_architectures_load_without_trust(tmp_path, monkeypatch):
    """A package that declares its class in the `auralise.architectures` entry-point group is trusted by name."""
    pkg = f"auralise_plugin_{uuid.uuid4().hex[:8]}"
    marker = tmp_path / "plugin-imported.txt"
    write_module(tmp_path, pkg, marker)
    dist = tmp_path / f"{pkg}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {pkg}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[auralise.architectures]\ntinynet-{pkg} = {pkg}:Net\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    name = f"tinynet-{pkg}"
    assert zoo.entry_point_architectures()[name].value == f"{pkg}:Net"

    module = zoo.build(name, {"width": 3})  # no trust needed: installing the package was the act of trust
    assert marker.exists() and type(module).__name__ == "Net"
    path = auralise.save_model(module, tmp_path / "plugin.pt", frontend=FE)
    assert torch.load(path, weights_only=True)["architecture"] == name  # stored by its registered name
    loaded = auralise.load_model(path)
    x = torch.rand(1, 1, 20, 20)
    assert torch.equal(loaded.module(x), module.eval()(x))
    # the same class under its bare import path is still code the file chooses: refused without trust
    ck = torch.load(path, weights_only=True) | {"architecture": f"{pkg}:Net"}
    torch.save(ck, tmp_path / "bare.pt")
    with pytest.raises(BadModelError, match="--trust-model"):
        auralise.load_model(tmp_path / "bare.pt")
    sys.modules.pop(pkg, None)


# --------------------------------------------------------------------------- 2. .pt2 archives


class _Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.pool = nn.MaxPool2d(2)

    def forward(self, x):
        return self.pool(torch.relu(self.conv(x)))


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """A real torch.export archive: a small conv net with a dynamic time axis (its guards included)."""
    torch.manual_seed(0)
    program = torch.export.export(
        _Tiny().eval(), (torch.rand(1, 1, 16, 40),), dynamic_shapes=({3: torch.export.Dim.AUTO},)
    )
    path = tmp_path_factory.mktemp("pt2") / "tiny.pt2"
    torch.export.save(program, path)
    return path


def doctor(src: Path, dst: Path, edit=None, add: dict[str, bytes] | None = None) -> Path:
    """Copy a zip archive, passing each member through ``edit(relative_name, data) -> data`` and adding ``add``."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        root = zin.namelist()[0].split("/", 1)[0]
        for info in zin.infolist():
            data = zin.read(info.filename)
            if edit is not None:
                data = edit(info.filename.split("/", 1)[1], data)
            zout.writestr(info, data)
        for rel, data in (add or {}).items():
            zout.writestr(f"{root}/{rel}", data)
    return dst


def _edit_json(rel_name: str, change):
    def edit(rel, data):
        if rel != rel_name:
            return data
        obj = json.loads(data)
        change(obj)
        return json.dumps(obj).encode()

    return edit


class _RunsShell:
    """Unpickling this runs ``touch MARKER``: what a doctored archive can hide in a pickle."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def load_calls(monkeypatch) -> list:
    """Record (and refuse) every torch.export.load call."""
    calls = []

    def recorder(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("torch.export.load must not be reached")

    monkeypatch.setattr(torch.export, "load", recorder)
    return calls


def test_plain_exported_program_loads(exported):
    loaded = auralise.load_model(exported, frontend=FE)
    assert loaded.meta["format"] == "torch.export"
    x = torch.rand(1, 1, 16, 64)  # another length than the example: the time axis is dynamic
    torch.manual_seed(0)
    assert loaded.module(x).shape == (1, 2, 8, 32)


def _pickled_weight(exported: Path, tmp_path: Path) -> Path:
    def mark(config):
        config["config"]["conv.weight"]["use_pickle"] = True

    return doctor(exported, tmp_path / "pickled.pt2", _edit_json("data/weights/model_weights_config.json", mark))


def _opaque_constant(exported: Path, tmp_path: Path) -> Path:
    def add(config):
        config["config"]["evil"] = {"path_name": "opaque_obj_0", "is_param": False, "use_pickle": True}

    blob = io.BytesIO()
    torch.save(_RunsShell(tmp_path / "PWNED"), blob)
    return doctor(
        exported, tmp_path / "opaque.pt2", _edit_json("data/constants/model_constants_config.json", add),
        {"data/constants/opaque_obj_0": blob.getvalue()},
    )  # fmt: skip


def _sample_inputs(exported: Path, tmp_path: Path) -> Path:
    blob = io.BytesIO()
    torch.save((_RunsShell(tmp_path / "PWNED"),), blob)
    return doctor(exported, tmp_path / "inputs.pt2", lambda rel, d: blob.getvalue() if "sample_inputs" in rel else d)


def _extra_pickle(exported: Path, tmp_path: Path) -> Path:
    import pickle

    return doctor(exported, tmp_path / "extra.pt2", add={"data/weights/evil.pkl": pickle.dumps({"a": 1}, protocol=4)})


def _aoti(exported: Path, tmp_path: Path) -> Path:
    return doctor(exported, tmp_path / "aoti.pt2", add={"data/aotinductor/model/model.so": b"\x7fELF"})


def _symbolic(exported: Path, tmp_path: Path) -> Path:
    def edit(rel, data):
        if not rel.startswith("models/"):
            return data
        text = data.decode()
        assert '"expr_str": "' in text
        evil = f"__import__('os').system('touch {tmp_path / 'PWNED'}') or "
        return text.replace('"expr_str": "', f'"expr_str": "{evil}', 1).encode()

    return doctor(exported, tmp_path / "sym.pt2", edit)


def _guard(exported: Path, tmp_path: Path) -> Path:
    def edit(program):
        program["guards_code"] = [f"__import__('os').system('touch {tmp_path / 'PWNED'}') == 0"]

    return doctor(exported, tmp_path / "guard.pt2", _edit_json("models/model.json", edit))


@pytest.mark.parametrize(
    "make, phrase",
    [
        (_pickled_weight, "pickled weight or constant 'conv.weight'"),
        (_opaque_constant, "pickled weight or constant 'evil'"),
        (_sample_inputs, "full unpickling"),
        (_extra_pickle, "a pickle"),
        (_aoti, "AOTInductor"),
        (_symbolic, "symbolic expression"),
        (_guard, "guard"),
    ],
)
def test_doctored_exported_program_is_refused_before_torch_reads_it(
    capsys, tmp_path, exported, load_calls, make, phrase
):
    path = make(exported, tmp_path)
    code, out, err = run_cli(capsys, "inspect", path, "--frontend", _frontend_json(tmp_path))
    assert_one_error_line(code, err, phrase, "--trust-model")
    assert load_calls == [] and out == ""
    assert not (tmp_path / "PWNED").exists()


def _frontend_json(folder: Path) -> Path:
    path = folder / "fe.json"
    path.write_text(json.dumps(FE))
    return path


def test_corrupt_exported_program_is_one_line(capsys, tmp_path, exported):
    data = bytearray(exported.read_bytes())
    at = data.find(b'{"config"')  # inside a stored JSON member: its CRC no longer matches
    data[at + 2] ^= 0x20
    path = tmp_path / "corrupt.pt2"
    path.write_bytes(bytes(data))
    code, _, err = run_cli(capsys, "inspect", path, "--frontend", _frontend_json(tmp_path))
    assert_one_error_line(code, err, "cannot read exported program")


def test_real_guards_and_expressions_pass_the_check(exported):
    from auralise.io.modelfile import check_exported_archive

    with zipfile.ZipFile(exported) as z:
        program = json.loads(z.read(next(n for n in z.namelist() if "/models/" in n)))
    assert program["guards_code"] and "expr_str" in json.dumps(program)  # the check saw both kinds
    check_exported_archive(exported)


# --------------------------------------------------------------------------- 3. malformed checkpoints


@pytest.mark.parametrize(
    "changes, phrases",
    [
        ({"config": [1, 2]}, ["'config' must be a dict", "[1, 2]"]),
        ({"architecture": 5}, ["'architecture' must be a registered name", "got 5"]),
        ({"version": "1"}, ["format version must be a positive integer", "'1'"]),
        ({"version": 99}, ["newer auralise"]),
        ({"state_dict": [1, 2]}, ["'state_dict' must be a dict"]),
        ({"labels": [1, 2]}, ["'labels' must be a list of strings"]),
        ({"labels": "ab"}, ["'labels' must be a list of strings"]),
        ({"frontend": [1]}, ["'frontend' must be a dict"]),
        ({"provenance": "x"}, ["'provenance' must be a dict"]),
        ({"architecture": "nosuchnet"}, ["unknown architecture 'nosuchnet'", "choi2016"]),
        ({"config": {"channels": 4, "hidden": 8, "nosuch": 1}}, ["cannot build 'choi2016'", "nosuch"]),
    ],
)
def test_malformed_checkpoint_is_one_line(capsys, tmp_path, changes, phrases):
    path = tmp_path / "bad.pt"
    torch.save(small_checkpoint(**changes), path)
    code, out, err = run_cli(capsys, "inspect", path)
    assert_one_error_line(code, err, *phrases)
    assert out == ""


def _weights(change) -> dict:
    sd = dict(small_checkpoint()["state_dict"])
    change(sd)
    return sd


@pytest.mark.parametrize(
    "change, phrase",
    [
        (lambda sd: sd.update({"features.0.weight": torch.zeros(64, 1, 3, 3)}),
         "weight 'features.0.weight' has shape (64, 1, 3, 3), expected (4, 1, 3, 3)"),
        (lambda sd: sd.pop("classifier.4.bias"), "missing weight 'classifier.4.bias'"),
        (lambda sd: sd.update({"extra.weight": torch.zeros(1)}), "unexpected weight 'extra.weight'"),
        (lambda sd: sd.update({"features.0.bias": [0.0] * 4}), "weight 'features.0.bias' is a list, not a tensor"),
    ],
)  # fmt: skip
def test_weights_name_the_first_offending_key(capsys, tmp_path, change, phrase):
    path = tmp_path / "bad.pt"
    torch.save(small_checkpoint(state_dict=_weights(change)), path)
    code, _, err = run_cli(capsys, "inspect", path)
    assert_one_error_line(code, err, phrase, "save_model")


def test_config_that_would_allocate_beyond_the_weights_is_refused_unallocated(tmp_path):
    """A config asking for 20000 channels (a 14 GB layer) is refused on the meta device, before any allocation."""
    path = tmp_path / "huge.pt"
    torch.save(small_checkpoint(config={"channels": 20000, "hidden": 8}), path)
    with pytest.raises(BadModelError, match="has shape .*expected"):
        auralise.load_model(path)


# --------------------------------------------------------------------------- 4. front-end bounds


@pytest.mark.parametrize(
    "changes, phrases",
    [
        ({"n_fft": 10**9}, ["'n_fft'", "1000000000", "16..65536"]),
        ({"sr": 10**12}, ["'sr'", "1000000000000", "1000..384000"]),
        ({"sr": 100}, ["'sr'", "1000..384000"]),
        ({"hop_length": 1}, ["'hop_length'", "4..256"]),
        ({"hop_length": 10**6}, ["'hop_length'", "4..256"]),
        ({"win_length": 10**6}, ["'win_length'"]),
        ({"scale": 1e300}, ["'scale'", "1e-12..1e+12"]),
        ({"amin": 10.0}, ["'amin'"]),
        ({"patch_seconds": 1e9}, ["'patch_seconds'", "0.01..600"]),
        ({"compression": "log10p", "log_scale": 1e30}, ["'log_scale'"]),
        ({"kind": "mel", "n_mels": 10**6}, ["'n_mels'", "1..1024"]),
        ({"kind": "mel", "fmax": 1e9}, ["'fmax'"]),
        ({"kind": "cqt", "n_bins": 10**6}, ["'n_bins'", "1..1024"]),
        ({"kind": "cqt", "bins_per_octave": 10**6}, ["'bins_per_octave'", "1..120"]),
        ({"kind": "cqt", "fmin": 1e-9}, ["'fmin'"]),
        ({"sr": True}, ["'sr'", "True"]),
        ({"n_fft": float("nan")}, ["'n_fft'", "nan"]),
        ({"scale": float("inf")}, ["'scale'", "inf"]),
        ({"patch_seconds": True}, ["'patch_seconds'"]),
    ],
)
def test_frontend_numbers_are_bounded(changes, phrases):
    with pytest.raises(BadModelError) as info:
        Frontend.from_dict(FE | changes)
    msg = str(info.value)
    assert "\n" not in msg
    for phrase in phrases:
        assert phrase in msg, (phrase, msg)


def test_patch_of_too_many_values_is_refused():
    fe = {"sr": 384000, "n_fft": 65536, "hop_length": 1024, "patch_seconds": 600.0}
    with pytest.raises(BadModelError, match="'patch_seconds'.*input values"):
        Frontend.from_dict(fe)


@pytest.mark.parametrize("key, value", [("n_fft", 10**9), ("sr", 10**12)])
def test_cli_refuses_huge_frontend_without_allocating(capsys, tmp_path, key, value):
    path = tmp_path / "huge-frontend.pt"
    torch.save(small_checkpoint(frontend=FE | {key: value}), path)
    code, out, err = run_cli(capsys, "inspect", path)
    assert_one_error_line(code, err, f"'{key}'", str(value), "range")


# --------------------------------------------------------------------------- 5. terminal control characters

ESCAPES = ["\x1b]0;owned\x07ballad", "dance\x1b[2J\x1b[31m", "hip\x9bhop\x00\x7f"]


def test_printable_strips_controls_and_keeps_unicode():
    assert printable("\x1b]0;owned\x07x") == "]0;ownedx"
    assert printable("a\tb\nc\r\x85d") == "a b c  d"
    assert printable("\u202eevil\u2066") == "evil"
    assert printable("Café ♫ 日本 ü") == "Café ♫ 日本 ü"


def test_tag_prints_no_escape_sequences(capsys, tmp_path):
    ck = torch.load(SHIPPED, weights_only=True)
    ck["labels"] = list(ESCAPES)
    path = tmp_path / "escapes.pt"
    torch.save(ck, path)
    code, out, err = run_cli(capsys, "tag", path, DANCE, "--top", "3")
    assert code == 0, err
    for bad in ("\x1b", "\x07", "\x9b", "\x00", "\x7f"):
        assert bad not in out + err
    assert "]0;ownedballad" in out and "hiphop" in out
    # JSON output keeps the labels as data, escaped by the JSON encoder
    code, out, err = run_cli(capsys, "tag", path, DANCE, "--json", "--top", "3")
    assert code == 0 and "\x1b" not in out
    assert set(json.loads(out)["mean"]) == set(ESCAPES)


def test_error_lines_carry_no_escape_sequences(capsys, tmp_path):
    path = tmp_path / "bad.pt"
    torch.save(small_checkpoint(config={"channels": 4, "hidden": 8, "\x1b]0;owned\x07": 1}), path)
    code, _, err = run_cli(capsys, "inspect", path)
    assert_one_error_line(code, err, "cannot build")
    assert "\x1b" not in err and "\x07" not in err


def test_labels_must_match_the_outputs(capsys, tmp_path):
    ck = torch.load(SHIPPED, weights_only=True)
    ck["labels"] = ["only-one"]
    path = tmp_path / "few-labels.pt"
    torch.save(ck, path)
    code, _, err = run_cli(capsys, "tag", path, DANCE)
    assert_one_error_line(code, err, "1 labels", "3 scores")
