"""Options shared by several commands (one definition each), and the command line being run."""

from __future__ import annotations

import click

from auralise import choices


def applying(options: list):
    """A decorator adding the click ``options`` to a command, in the order listed."""

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


model_options = [
    click.option(
        "--frontend",
        "frontend",
        type=click.Path(dir_okay=False),
        default=None,
        help="Front-end JSON for model files that lack one (sr, n_fft, hop_length, compression, layout).",
    ),
    click.option(
        "--trust-model",
        is_flag=True,
        help="Trust the model file: allow what runs its code (import-path architectures, pickled modules, .pt2 "
        "archives with pickles or code).",
    ),
]


def choice_option(*decls: str, values: tuple[str, ...], default: str, help_text: str | None = None):
    """An option taking one of ``values`` (from :mod:`auralise.choices`), its default shown in ``--help``."""
    return click.option(*decls, type=click.Choice(values), default=default, show_default=True, help=help_text)


def tap_option(help_text: str):
    return choice_option("--tap", values=choices.TAPS, default="block", help_text=help_text)


with_model_options = applying(model_options)


def method_option():
    return choice_option("--method", values=choices.METHODS, default="deconvnet", help_text=choices.METHOD_HELP)


def device_option():
    return click.option("--device", default="auto", show_default=True, help=choices.DEVICE_HELP)


projection_options = [
    method_option(),
    click.option("--select", default="map", show_default=True, help=choices.SELECT_HELP),
    tap_option("Which tensor is 'the layer': after its pooling (block), its nonlinearity, or the raw conv."),
]

resynthesis_options = [
    choice_option("--resynth", values=choices.RESYNTH_MODES, default="mask", help_text=choices.RESYNTH_HELP),
    choice_option("--phase", values=choices.PHASES, default="original", help_text=choices.PHASE_HELP),
    choice_option("--normalize", values=choices.NORMALISATIONS, default="peak", help_text=choices.NORMALIZE_HELP),
]


with_projection_options = applying(projection_options)
with_rendering_options = applying(projection_options + resynthesis_options)

region_options = [
    click.option(
        "--offset",
        type=float,
        default=0.0,
        show_default=True,
        help="Start reading each audio file this many seconds in.",
    ),
    click.option(
        "--duration",
        type=float,
        default=None,
        help="Read only this many seconds of each audio file [default: to the end].",
    ),
]

with_region_options = applying(region_options)  # --offset/--duration: the part of each song to use (librosa's names)


COMMAND_LINE: list[str] = []  # the arguments of this invocation, recorded in the figures it writes


def command_line() -> str:
    import shlex

    return shlex.join(["auralise", *COMMAND_LINE])
