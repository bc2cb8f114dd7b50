"""The figure commands: grid, filters, receptive-field, attributes."""

from __future__ import annotations

import click

from auralise import choices
from auralise.cli import cli
from auralise.cli.options import (
    applying,
    checked_specs,
    choice_option,
    command_line,
    device_option,
    feature_option,
    layer_option,
    method_option,
    tap_option,
    with_model_options,
    with_projection_options,
    with_region_options,
)

figure_output_options = [
    click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help=choices.FIGURE_OUT_HELP),
    click.option("--width", default="double", show_default=True, help=choices.WIDTH_HELP),
    click.option("--force", is_flag=True, help="Overwrite an existing file."),
]


with_figure_output = applying(figure_output_options)


@cli.group("figure")
def figure_group() -> None:
    """Publication figures: deconvolution grids, learned filters, receptive fields, the attribute study."""


@figure_group.command("grid")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--features", required=True, help="Features as LAYER-FEATURE, comma separated: 1-9,1-27,3-38.")
@with_figure_output
@click.option("--original", is_flag=True, help="Add the song's spectrogram as the first panel.")
@choice_option("--freq-axis", values=choices.FREQ_AXES, default="auto", help_text=choices.FREQ_AXIS_HELP)
@click.option("--shared-scale", is_flag=True, help="One dB scale (re the largest panel) for all panels.")
@click.option("--columns", type=click.IntRange(min=1), default=None,
              help="Panels per row [default: chosen from the number of panels and the width].")  # fmt: skip
@click.option("--notes", type=click.Path(dir_okay=False), default=None, help="Listening-page notes JSON: names.")
@with_projection_options
@with_region_options
@device_option()
def figure_grid_command(
    model, audio, features, out, width, force, original, freq_axis, shared_scale, columns, notes, method, select,
    tap, offset, duration, device,
) -> None:  # fmt: skip
    """Deconvolved spectrograms of FEATURES of MODEL on AUDIO, one panel each (Choi et al. Figs. 3-8)."""
    from auralise.figures.paper import grid
    from auralise.io.files import check_output_file

    check_output_file(out, force=True)  # a symbolic link or a device is refused before any work
    path, warnings = grid(
        model, audio, features, out, original=original, freq_axis=freq_axis, shared_scale=shared_scale,
        columns=columns, notes=notes, width=width, method=method, select=select, tap=tap, device=device,
        force=force, command=command_line(), offset=offset, duration=duration,
    )  # fmt: skip
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {path}")


@figure_group.command("filters")
@click.argument("model", type=click.Path())
@click.option("--layer", "-l", default="1", show_default=True, help="Conv layer: number or module path.")
@click.option("--features", default=None, help="Features to show: 0-15 or 0,5,38 (default all).")
@with_figure_output
def figure_filters_command(model, layer, features, out, width, force) -> None:
    """The learned kernels of one layer, diverging colours centred on zero (Choi et al. Fig. 4)."""
    from auralise.engine.selection import parse_feature_spec
    from auralise.figures.paper import filters

    feats = None
    if features is not None:
        kind, feats = parse_feature_spec(features)
        if kind != "list":
            raise click.BadParameter("give a list such as 0-15 or 0,5,38", param_hint="--features")
    path = filters(model, out, layer=layer, features=feats, width=width, force=force, command=command_line())
    click.echo(f"wrote {path}")


@figure_group.command("receptive-field")
@click.argument("model", type=click.Path())
@choice_option("--format", "fmt", values=choices.TABLE_FORMATS, default="md",
               help_text="Table format: Markdown, LaTeX (booktabs) or CSV.")  # fmt: skip
@tap_option("Tap point whose units' receptive fields are measured.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def figure_receptive_field_command(model, fmt, tap, out, force) -> None:
    """Table 1: kernel and effective width (ms) and height (Hz) of each layer, computed exactly."""
    from pathlib import Path

    from auralise.figures.paper import receptive_field_table
    from auralise.io.files import atomic_path, check_output_file

    if out is not None:
        check_output_file(out, force=force)  # not an existing file without --force; never a link or a device
    text = receptive_field_table(model, fmt=fmt, tap=tap)
    if out is None:
        click.echo(text, nl=not text.endswith("\n"))
        return
    with atomic_path(out) as tmp:
        Path(tmp).write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}")


@figure_group.command("attributes")
@click.argument("model", type=click.Path())
@with_figure_output
@click.option(
    "--instruments",
    default=None,
    help="Comma-separated timbres [default: sine, strings, acoustic_guitar, saxophone, piano, electric_guitar].",
)
@click.option(
    "--chords",
    default=None,
    help="Comma-separated chord types [default: interval, major, minor, sus4, dom7, maj7, min7, dim].",
)
@click.option("--keys", default=None, help="Comma-separated keys [default: Eb2, Bb2, A3, G4].")
@click.option("--quick", is_flag=True, help=choices.QUICK_HELP)
@click.option(
    "--csv",
    "csv_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the numbers (layer, attribute, mean, std, n_pairs, n_skipped) as CSV.",
)
@method_option()
@tap_option("Tap point of every layer.")
@click.option("--quiet", is_flag=True, help="No estimate, no progress.")
def figure_attributes_command(
    model, out, width, force, instruments, chords, keys, quick, csv_path, method, tap, quiet
) -> None:  # fmt: skip
    """How each layer's features change with key, chord and instrument (Choi et al. Fig. 10), plus a CSV.

    The full design (192 model signals) takes 7-25 minutes on 2 CPU cores (more when they are busy): the time is
    measured on the first signal and printed before the others; --quick runs 8 signals in 0.5-1.5 minutes.
    """
    from auralise.figures.paper import attributes
    from auralise.studies.attributes import N_SKIPPED_HELP

    def split(text):
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    display, done_s = None, []  # done_s: once estimated, the seconds of work done after each unit
    if not quiet:
        from auralise.cli.progress import ProgressDisplay

        display = ProgressDisplay(eta=True, unit="s")

    def progress(done: int, total: int) -> None:
        work = (done_s[done - 1], done_s[-1]) if done_s else (done, total)  # in estimated seconds, once known
        display.show("attribute study", *work, "deconvolving model signals")

    def estimate(e) -> None:
        import itertools

        done_s.extend(itertools.accumulate(e.units))
        _estimate(display, e)

    try:
        table = attributes(
            model, out, instruments=split(instruments), chords=split(chords), keys=split(keys), csv_path=csv_path,
            width=width, method=method, tap=tap, force=force, command=command_line(), quick=quick,
            progress=progress if display is not None else None,
            estimate=estimate if display is not None else None,
        )  # fmt: skip
    finally:
        if display is not None:
            display.close()
    for row in table.as_rows():
        click.echo("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    click.echo(f"({N_SKIPPED_HELP})")
    click.echo(f"wrote {out}" + (f" and {csv_path}" if csv_path else ""))


@figure_group.command("faithfulness")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path(), nargs=-1, required=True)
@with_figure_output
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write one row per song, layer, method, mode, selection and feature as CSV.")  # fmt: skip
@layer_option(required=False, default="all")
@feature_option(required=False, default_text="8 features spread over each layer")
@tap_option("Tap point whose activations are measured.")
@choice_option("--phase", values=choices.PHASES, default="original", help_text=choices.PHASE_HELP)
@with_region_options
@click.option("--quiet", is_flag=True, help="No progress.")
@device_option()
@with_model_options
def figure_faithfulness_command(
    model, audio, out, width, force, csv_path, layers, features, tap, phase, offset, duration, quiet, device,
    frontend, trust_model,
) -> None:  # fmt: skip
    """Retention, specificity and distinguishability per layer for every backward rule x listening mode (--resynth)
    x selection (map, max) on AUDIO: medians over features and songs with interquartile error bars.

    Measured as `auralise evaluate` measures (levels kept: normalize none). Costs, per feature, a projection and
    two forward passes for each of the combinations; --feature and --duration keep it short.
    """
    from auralise.cli.progress import TaskProgress
    from auralise.engine.selection import parse_layer_spec
    from auralise.figures.faithfulness import faithfulness
    from auralise.io.files import check_output_file

    layers, features = checked_specs(layers, features)
    check_output_file(out, force=True)  # a symbolic link or a device is refused before any work
    with TaskProgress("faithfulness", quiet) as progress:
        faithfulness(
            model, audio, out, layers=parse_layer_spec(layers), features=features, csv_path=csv_path, width=width,
            tap=tap, phase=phase, device=device, trust=trust_model, frontend=frontend, offset=offset,
            duration=duration, force=force, command=command_line(), progress=progress,
        )  # fmt: skip
    click.echo(f"wrote {out}" + (f" and {csv_path}" if csv_path else ""))


def _estimate(display, e) -> None:
    """The study's size and its estimated time, measured on the first signal, as one line."""
    from auralise.cli.progress import duration_text

    passes = f" in {e.passes} passes" if e.passes > 1 else ""
    display.note(f"attribute study: {e.signals} signals x {e.features} features{passes}; about "
                 f"{duration_text(e.seconds)} in all, {duration_text(e.left)} left (measured on the first signal, "
                 f"which took {duration_text(e.first_s)})")  # fmt: skip
