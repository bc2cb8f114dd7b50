"""The package's architecture, checked: one-way layering, no import circles, size limits, light imports.

auralise is organised in *units* that follow the pipeline: each sub-package ``auralise/<pkg>/`` is the unit
``auralise.<pkg>``, and the top-level modules ``errors``, ``text``, ``choices``, ``session`` and ``cli`` are units of
their own (the package root ``auralise/__init__.py`` is the lazy public API and belongs to none). Every unit but
``cli`` declares what it may import on one line of its docstring (the ``__init__`` docstring of a package, the
module docstring of a module), exactly of the form::

    May import: auralise.errors, auralise.choices

or ``May import: nothing``. The tests walk every module with :mod:`ast` -- imports at module level and inside
functions, ``import x`` and ``from x import y``, absolute and relative, and ``importlib.import_module`` of a literal
name -- and check that

- each unit imports only itself and the units it declares (``cli`` may import anything);
- no two units import each other, directly or round a longer circle, and the declarations themselves are one-way;
- no class is over 300 lines, no module over 600 lines (except the self-contained leaves ``demo/synth.py`` and
  ``importers/tfbundle.py``), no function body over 80 lines (its docstring excluded);
- ``import auralise.choices`` and ``auralise --help`` (and every command's ``--help``) import no torch, librosa or
  matplotlib, and ``dir(auralise)`` lists the public API.

``docs/architecture.md`` is the map of the units; a new module goes into the unit that owns its stage.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import auralise

PACKAGE = Path(auralise.__file__).resolve().parent
TOP_MODULES = ("errors", "text", "choices", "session", "cli")  # top-level modules, each a unit of its own
FREE = "auralise.cli"  # may import anything
MAX_CLASS, MAX_MODULE, MAX_BODY = 300, 600, 80
LARGE_LEAVES = ("demo/synth.py", "importers/tfbundle.py")  # self-contained leaves allowed over MAX_MODULE
HEAVY = ("torch", "librosa", "matplotlib")
PUBLIC_API = (
    "load_model",
    "save_model",
    "deconvolve",
    "auralise_file",
    "export",
    "Frontend",
    "Session",
    "RenderOptions",
    "load_audio",
    "resynthesise",
)
_DECLARATION = re.compile(r"May import: (nothing|auralise\.\w+(?:, auralise\.\w+)*)")


# ------------------------------------------------------------------------------------------------ the walk


@dataclass(frozen=True)
class Module:
    name: str  # dotted, e.g. "auralise.io.audio"; a package's __init__ is the package's name
    path: Path
    is_package: bool

    @property
    def rel(self) -> str:
        return self.path.relative_to(PACKAGE).as_posix()


@dataclass(frozen=True)
class Import:
    module: Module  # the importing module
    line: int
    target: str  # dotted name imported, e.g. "auralise.io.audio" or "auralise" (the root)

    def __str__(self) -> str:
        return f"auralise/{self.module.rel}:{self.line} imports {self.target}"


def modules() -> list[Module]:
    """Every module of the package, in path order."""
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        is_package = parts[-1] == "__init__"
        dotted = ("auralise", *(parts[:-1] if is_package else parts))
        out.append(Module(".".join(dotted), path, is_package))
    return out


def units() -> list[str]:
    """The units: one per sub-package (a folder with an ``__init__.py``) and per top-level module."""
    packages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    tops = {p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    return sorted(f"auralise.{name}" for name in packages | tops)


def unit_of(dotted: str) -> str | None:
    """The unit a dotted name belongs to; None for the package root and for names outside auralise."""
    parts = dotted.split(".")
    if parts[0] != "auralise" or len(parts) < 2:
        return None
    return f"auralise.{parts[1]}"


def _absolute(module: Module, node: ast.ImportFrom) -> str:
    """The absolute module name of a ``from ... import`` (relative ones resolved against ``module``)."""
    if not node.level:
        return node.module or ""
    base = module.name.split(".")
    if not module.is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _root_name(name: str) -> str:
    """What ``from auralise import name`` brings in: a unit, the module of a public API name, or the root."""
    if (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file():
        return f"auralise.{name}"
    if name in getattr(auralise, "_EXPORTS", {}):
        return f"auralise.{auralise._EXPORTS[name]}"
    return f"auralise.{name}" if name.startswith("__") else "auralise"  # __version__ is the root's own


def imports(module: Module) -> Iterator[Import]:
    """Every import of an ``auralise`` name anywhere in ``module`` (module level, functions, TYPE_CHECKING)."""
    tree = ast.parse(module.path.read_text(encoding="utf-8"), filename=str(module.path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(module, node)
            if base == "auralise":
                targets = [_root_name(alias.name) for alias in node.names]
            else:
                targets = [base]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and not node.args[0].value.startswith(".")
        ):
            targets = [node.args[0].value]
        else:
            continue
        for target in targets:
            if target == "auralise" or target.startswith("auralise."):
                yield Import(module, node.lineno, target)


def unit_docstring(unit: str) -> str:
    """The docstring that declares what ``unit`` may import."""
    name = unit.split(".", 1)[1]
    path = PACKAGE / name / "__init__.py" if (PACKAGE / name).is_dir() else PACKAGE / f"{name}.py"
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""


def declared(unit: str) -> set[str]:
    """The units ``unit`` declares it may import; fails the test if there is not exactly one declaration line."""
    lines = [line.strip() for line in unit_docstring(unit).splitlines() if line.strip().startswith("May import:")]
    matches = [_DECLARATION.fullmatch(line) for line in lines]
    if len(lines) != 1 or matches[0] is None:
        pytest.fail(
            f"{unit}'s docstring must have exactly one line 'May import: auralise.a, auralise.b' "
            f"(or 'May import: nothing'); found {lines or 'none'}"
        )
    value = matches[0].group(1)
    return set() if value == "nothing" else set(value.split(", "))


def unit_imports() -> dict[str, list[Import]]:
    """Per unit, its imports of *other* units (the root's public names resolved to their modules)."""
    out: dict[str, list[Import]] = {u: [] for u in units()}
    for module in modules():
        unit = unit_of(module.name)
        if unit is None:  # the package root: the lazy public API, above every unit
            continue
        for imp in imports(module):
            if imp.target.startswith("auralise.__"):  # from auralise import __version__: the root's own data
                continue
            if unit_of(imp.target) != unit:
                out[unit].append(imp)
    return out


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """A circle of ``graph`` as a path that ends where it starts, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (circle := visit(nxt)):
                return circle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (circle := visit(node)):
            return circle
    return None


# ------------------------------------------------------------------------------------------------ layering

LAYERED = [u for u in units() if u != FREE]


def test_the_walk_sees_every_kind_of_import(tmp_path) -> None:
    """The walker itself: relative and absolute, module level and inside functions, root names resolved."""
    source = (
        "from __future__ import annotations\n"
        "import auralise.engine.deconv\n"
        "from auralise.io.audio import load_audio\n"
        "from .. import errors\n"
        "from ..frontends import base\n"
        "from . import sibling\n"
        "from auralise import load_model, __version__\n"
        "def f():\n"
        "    from auralise.render.resynth import resynthesise\n"
        "    import importlib\n"
        "    return importlib.import_module('auralise.figures.display')\n"
    )
    path = tmp_path / "mod.py"
    path.write_text(source)
    fake = Module("auralise.studies.mod", path, is_package=False)
    got = sorted((i.line, i.target) for i in imports(fake))
    assert got == [
        (2, "auralise.engine.deconv"),
        (3, "auralise.io.audio"),
        (4, "auralise.errors"),
        (5, "auralise.frontends"),
        (6, "auralise.studies"),
        (7, "auralise.__version__"),
        (7, "auralise.io.modelfile"),
        (9, "auralise.render.resynth"),
        (11, "auralise.figures.display"),
    ]
    assert unit_of("auralise.io.audio") == "auralise.io" and unit_of("auralise.errors") == "auralise.errors"
    assert unit_of("auralise") is None and unit_of("numpy") is None


def test_units_are_the_sub_packages_and_the_known_top_level_modules() -> None:
    """A new top-level module has no place in the layering: put it in the sub-package of its stage."""
    tops = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    stray = [t for t in tops if t not in TOP_MODULES]
    assert not stray, f"top-level modules outside the layering: {stray}; move them into a sub-package"
    loose = [
        p.relative_to(PACKAGE).as_posix() for p in PACKAGE.glob("*/*.py") if not (p.parent / "__init__.py").exists()
    ]
    assert not loose, f"folders without __init__.py: {loose}"


@pytest.mark.parametrize("unit", LAYERED)
def test_unit_imports_only_what_it_declares(unit: str) -> None:
    allowed = declared(unit)
    unknown = sorted(allowed - set(units()))
    assert not unknown, f"{unit} declares units that do not exist: {unknown}"
    bad = [str(i) for i in unit_imports()[unit] if unit_of(i.target) not in allowed]
    assert not bad, (
        f"{unit} may import only {', '.join(sorted(allowed)) or 'nothing'} (its docstring's 'May import:' line); "
        f"these imports break the layering:\n  " + "\n  ".join(bad)
    )


def test_no_import_circle_between_units() -> None:
    graph: dict[str, set[str]] = {u: set() for u in units()}
    where: dict[tuple[str, str], str] = {}
    for unit, found in unit_imports().items():
        for imp in found:
            target = unit_of(imp.target)
            if target is None:
                continue
            graph[unit].add(target)
            where.setdefault((unit, target), str(imp))
    circle = find_circle(graph)
    assert circle is None, (
        "import circle between units: "
        + " -> ".join(circle)
        + "\n  "
        + "\n  ".join(where[a, b] for a, b in zip(circle, circle[1:]))
    )


def test_declared_layering_is_one_way() -> None:
    """The declarations themselves form no circle (so that the layering has a top and a bottom)."""
    graph = {}
    for unit in LAYERED:
        try:
            graph[unit] = declared(unit)
        except pytest.fail.Exception:
            graph[unit] = set()  # a missing declaration fails test_unit_imports_only_what_it_declares
    circle = find_circle(graph)
    assert circle is None, "the 'May import:' lines declare a circle: " + " -> ".join(circle)


def test_find_circle() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]


# ------------------------------------------------------------------------------------------------ sizes


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        if isinstance(body[0].value.value, str):
            body = body[1:]  # the docstring
    return body[-1].end_lineno - body[0].lineno + 1 if body else 0


def size_violations() -> list[str]:
    out = []
    for module in modules():
        source = module.path.read_text(encoding="utf-8")
        n = len(source.splitlines())
        if n > MAX_MODULE and module.rel not in LARGE_LEAVES:
            out.append(f"auralise/{module.rel}: module of {n} lines (limit {MAX_MODULE})")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef) and node.end_lineno - node.lineno + 1 > MAX_CLASS:
                lines = node.end_lineno - node.lineno + 1
                out.append(
                    f"auralise/{module.rel}:{node.lineno}: class {node.name} of {lines} lines (limit {MAX_CLASS})"
                )
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_BODY:
                out.append(
                    f"auralise/{module.rel}:{node.lineno}: def {node.name} body of {_body_lines(node)} lines "
                    f"(limit {MAX_BODY}, docstring excluded)"
                )
    return out


def test_size_limits() -> None:
    bad = size_violations()
    assert not bad, "over the size limits (split by responsibility):\n  " + "\n  ".join(bad)


def test_large_leaves_still_exist() -> None:
    """The exemptions name real files (a rename must carry its exemption along, or drop it)."""
    assert all((PACKAGE / rel).is_file() for rel in LARGE_LEAVES), LARGE_LEAVES


# ------------------------------------------------------------------------------------------------ light imports


def _loaded_after(code: str) -> list[str]:
    """Which of HEAVY a fresh interpreter has imported after running ``code``."""
    probe = f"{code}\nimport sys\nprint('loaded:', *(m for m in {HEAVY!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[-1].split()[1:]


def test_choices_imports_nothing_heavy() -> None:
    assert _loaded_after("import auralise.choices") == []


def test_import_auralise_imports_nothing_heavy() -> None:
    assert _loaded_after("import auralise\ndir(auralise)") == []


def test_help_of_every_command_imports_nothing_heavy() -> None:
    code = (
        "import click\n"
        "from auralise.cli import cli\n"
        "def walk(group, path):\n"
        "    yield path\n"
        "    for name, cmd in getattr(group, 'commands', {}).items():\n"
        "        yield from walk(cmd, [*path, name])\n"
        "paths = list(walk(cli, []))\n"
        "assert len(paths) > 3, paths\n"
        "for path in paths:\n"
        "    try:\n"
        "        cli([*path, '--help'], prog_name='auralise')\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code in (0, None), (path, exc.code)\n"
    )
    assert _loaded_after(code) == []


def test_dir_lists_the_public_api() -> None:
    listed = dir(auralise)
    missing = [name for name in PUBLIC_API if name not in listed]
    assert not missing, f"dir(auralise) does not list {missing}"
    for name in PUBLIC_API:
        assert getattr(auralise, name) is not None, name
