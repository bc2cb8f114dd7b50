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

normalize_option = choice_option(
    "--normalize", values=choices.NORMALISATIONS, default="peak", help_text=choices.NORMALIZE_HELP
)
resynthesis_options = [
    choice_option(
        "--resynth", values=choices.RESYNTH_MODES, default=choices.RESYNTH_MODES[0], help_text=choices.RESYNTH_HELP
    ),
    choice_option("--phase", values=choices.PHASES, default="original", help_text=choices.PHASE_HELP),
    normalize_option,
]


output_rate_options = [
    click.option("--output-sr", default=choices.OUTPUT_RATES[0], show_default=True, help=choices.OUTPUT_SR_HELP),
    choice_option("--above-band", values=choices.ABOVE_BANDS, default="extend", help_text=choices.ABOVE_BAND_HELP),
]
with_output_rate_options = applying(output_rate_options)
with_projection_options = applying(projection_options)
with_rendering_options = applying(projection_options + resynthesis_options)
# the rendering options without --normalize: `evaluate` and `figure faithfulness` measure with levels kept
with_listening_options = applying(projection_options + [o for o in resynthesis_options if o is not normalize_option])


def layer_option(*, required: bool = True, default: str | None = None):
    """``--layer/-l``, repeatable: layers as numbers, module paths, lists, ranges or 'all' (the main command's)."""
    extra = "" if required else f" [default: {default}]"
    return click.option("--layer", "-l", "layers", multiple=True, required=required,
                        default=() if required else (default,),
                        help="Conv layer(s): 1-based numbers in execution order or module paths, as a list (1,3), a "
                        f"range (2-4) or 'all'; repeat to add.{extra}")  # fmt: skip


def feature_option(*, required: bool = True, default: str | None = None, default_text: str | None = None):
    """``--feature/-f``, repeatable: feature numbers, lists, ranges, 'all' or top:K (the main command's); without
    ``default`` none are passed when the option is not given (``default_text`` says what that means)."""
    extra = "" if required else f" [default: {default_text or default}]"
    return click.option("--feature", "-f", "features", multiple=True, required=required,
                        default=() if required or default is None else (default,),
                        help="Feature(s) of each layer (output channels, 0-based): a number, a list (0,5,38), a range "
                        f"(0-15), 'all' or top:K (the K most active on each song); repeat to add.{extra}")  # fmt: skip


def checked_specs(layers: tuple[str, ...], features: tuple[str, ...]) -> tuple[str | None, str | None]:
    """Repeated ``--layer``/``--feature`` values joined into one spec each (None: the option was not given and has
    no default), checked (a bad one is a usage error)."""
    from auralise.engine.selection import parse_feature_spec, parse_layer_spec
    from auralise.errors import BadParameterError

    layers, features = (",".join(v) if v else None for v in (layers, features))  # repeated options add up
    for spec, parse, hint in ((layers, parse_layer_spec, "--layer"), (features, parse_feature_spec, "--feature")):
        try:
            if spec is not None:
                parse(spec)
        except BadParameterError as exc:
            raise click.BadParameter(str(exc), param_hint=hint) from exc
    return layers, features


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
