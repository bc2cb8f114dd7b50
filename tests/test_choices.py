"""auralise.choices: every allowed option value in one place, used by the command line and the library alike."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import click

from auralise import choices
from auralise.cli import cli

PACKAGE = Path(choices.__file__).resolve().parent
# the tuples of values (a one-value tuple is no list of choices)
VALUE_TUPLES = {
    name: value
    for name in choices.__all__
    if isinstance(value := getattr(choices, name), tuple) and len(value) > 1 and all(isinstance(v, str) for v in value)
}


def _parameters(command: click.Command, path: str = "auralise"):
    """(command path, parameter) of every parameter of ``command`` and its sub-commands."""
    for param in command.params:
        yield path, param
    for name, sub in getattr(command, "commands", {}).items():
        yield from _parameters(sub, f"{path} {name}")


def test_importing_choices_imports_nothing_heavy() -> None:
    code = (
        "import sys, auralise.choices\n"
        "heavy = [m for m in ('torch', 'numpy', 'librosa', 'matplotlib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_cli_choice_comes_from_choices_with_its_first_value_as_default() -> None:
    seen = []
    for path, param in _parameters(cli):
        if not isinstance(param.type, click.Choice):
            continue
        values = tuple(param.type.choices)
        origin = [name for name, value in VALUE_TUPLES.items() if value is param.type.choices]
        assert origin, f"{path} {param.opts[0]} offers {values}, not a tuple of auralise.choices"
        assert param.default == values[0], f"{path} {param.opts[0]}: the default is the first value"
        seen.append(origin[0])
    assert {"METHODS", "TAPS", "RESYNTH_MODES", "PHASES", "NORMALISATIONS", "TABLE_FORMATS"} <= set(seen)


def test_the_library_checks_against_the_same_values() -> None:
    from auralise.engine import layers, rules
    from auralise.figures import paper, style
    from auralise.listening import page
    from auralise.render import resynth

    assert rules.RULES is choices.METHODS
    assert layers.TAPS is choices.TAPS and layers.LAYOUT_AXES is choices.LAYOUT_AXES
    assert resynth.MODES is choices.RESYNTH_MODES
    assert resynth.PHASES is choices.PHASES and resynth.NORMALIZE is choices.NORMALISATIONS
    assert style.WIDTHS is choices.FIGURE_WIDTHS and style.FORMATS is choices.FIGURE_SUFFIXES
    assert paper.FIGURE_EXTENSIONS is choices.FIGURE_SUFFIXES
    assert page.PAGE_NAME is choices.PAGE_NAME
    assert set(choices.LAYOUT_AXES) == set(choices.LAYOUTS)
    assert choices.FIGURE_SUFFIXES == (".pdf", ".svg", ".png")


def test_figure_grid_offers_no_sound_options() -> None:
    grid = cli.commands["figure"].commands["grid"]
    offered = {opt for param in grid.params for opt in param.opts}
    assert {"--method", "--select", "--tap"} <= offered
    assert not {"--resynth", "--phase", "--normalize"} & offered  # a figure has no sound: nothing would use them


def test_no_list_of_values_is_typed_again_in_the_package() -> None:
    """A tuple, list or set literal spelling out one of the value lists (in any order) is a second copy."""
    lists = {frozenset(value): name for name, value in VALUE_TUPLES.items()}
    copies = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "choices.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) > 1:
                if all(isinstance(e, ast.Constant) and isinstance(e.value, str) for e in node.elts):
                    name = lists.get(frozenset(e.value for e in node.elts))
                    if name:
                        copies.append(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} repeats choices.{name}")
    assert not copies, "; ".join(copies)
