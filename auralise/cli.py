"""The ``auralise`` command line: parse, call the library, report. Heavy imports happen inside commands."""

from __future__ import annotations

import json
import signal
import sys
import warnings

import click

from .errors import AuraliseError, AuraliseWarning
from .terminal import printable

METHODS = ("deconvnet", "guided", "gradient")
TAPS = ("block", "activation", "conv")


class _DefaultGroup(click.Group):
    """A group whose default command is ``run``: ``auralise MODEL AUDIO ...`` means ``auralise run MODEL AUDIO``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(
    cls=_DefaultGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Main use:  auralise MODEL AUDIO --layer L --feature F   (same as `auralise run ...`)",
)
@click.version_option(package_name="auralise")
def cli() -> None:
    """Hear and see what each feature of a trained music CNN responds to (deconvnet auralisation)."""


def _applying(options: list):
    """A decorator adding the click ``options`` to a command, in the order listed."""

    def decorate(f):
        for option in reversed(options):
            f = option(f)
        return f

    return decorate


_model_options = [
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


def _tap_option(help_text: str):
    return click.option("--tap", type=click.Choice(TAPS), default="block", show_default=True, help=help_text)


_with_model_options = _applying(_model_options)


_rendering_options = [
    click.option("--method", type=click.Choice(METHODS), default="deconvnet", show_default=True, help="Backward rule."),
    click.option(
        "--select",
        default="map",
        show_default=True,
        help="Which activations seed the projection: map, max, or topk:K.",
    ),
    _tap_option("Which tensor is 'the layer': after its pooling (block), its nonlinearity, or the raw conv."),
    click.option(
        "--resynth",
        type=click.Choice(("mask", "magnitude")),
        default="mask",
        show_default=True,
        help="Use the projection as a mask on the song's STFT, or as the magnitude itself.",
    ),
    click.option("--phase", type=click.Choice(("original", "griffinlim")), default="original", show_default=True),
    click.option(
        "--normalize",
        type=click.Choice(("peak", "none")),
        default="peak",
        show_default=True,
        help="peak: each WAV peaks at 0.99; none: keep levels comparable across features (float WAV).",
    ),
]


_with_rendering_options = _applying(_rendering_options)


@cli.command("run")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--layer", "-l", required=True, help="Conv layer: 1-based number in execution order, or module path.")
@click.option(
    "--feature",
    "-f",
    "features",
    type=int,
    multiple=True,
    required=True,
    help="Feature (output channel, 0-based); repeat for several.",
)
@_with_rendering_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: auralised/<audio stem>/].",
)
@click.option("--no-plot", is_flag=True, help="Write only the WAV files.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto (cuda when available).")
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@_with_model_options
def run_command(
    model,
    audio,
    layer,
    features,
    method,
    select,
    tap,
    resynth,
    phase,
    normalize,
    out_dir,
    no_plot,
    device,
    force,
    frontend,
    trust_model,
) -> None:
    """Auralise FEATURE(s) of LAYER of MODEL on AUDIO: writes layer{L}_feature{F}.wav and .png."""
    from .render import auralise_file

    result = auralise_file(
        model,
        audio,
        layer=layer,
        features=features,
        method=method,
        select=select,
        tap=tap,
        resynth=resynth,
        phase=phase,
        normalize=normalize,
        out_dir=out_dir,
        plot=not no_plot,
        force=force,
        device=device,
        trust=trust_model,
        frontend=frontend,
    )
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    for item in result.features:
        for path in (item.wav, item.png):
            if path is not None:
                click.echo(f"wrote {path}")


@cli.command("export")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path(), nargs=-1, required=True)
@click.option("--out", "out_dir", type=click.Path(file_okay=False), required=True, help="Folder of the listening set.")
@click.option("--layers", default="all", show_default=True, help="'all' or a list: 1,3 or 2-4 (numbers or paths).")
@click.option(
    "--features",
    default="all",
    show_default=True,
    help="Per layer: 'all', a list such as 0,5,38 or 0-15, or top:K (the K most active for each song).",
)
@_with_rendering_options
@click.option("--figures", is_flag=True, help="Also write a full matplotlib figure per feature (slower).")
@click.option("--workers", type=int, default=2, show_default=True, help="Threads writing files while computing.")
@click.option("--memory", type=float, default=1.0, show_default=True, help="Working-memory budget in GiB.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto (cuda when available).")
@click.option("--force", is_flag=True, help="Start over: remove a previous export in --out.")
@click.option("--resume", is_flag=True, help="Finish an interrupted export; finished items are kept.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_with_model_options
def export_command(
    model, audio, out_dir, layers, features, method, select, tap, resynth, phase, normalize, figures, workers,
    memory, device, force, resume, quiet, frontend, trust_model,
) -> None:  # fmt: skip
    """Export a listening set: AUDIO files x layers x features as WAV + PNG, manifest.json and index.html."""
    from .export import ExportOptions, export

    budget = _memory_budget(memory)
    options = ExportOptions(layers, features, method, select, tap, resynth, phase, normalize, figures)
    with _ExportProgress(len(audio), quiet) as progress:
        manifest = export(
            model, audio, out_dir, options=options, force=force, resume=resume, workers=workers, device=device,
            memory_budget=budget, trust=trust_model, frontend=frontend, progress=progress,
        )  # fmt: skip
    items = sum(len(s["items"]) for s in manifest["songs"])
    for song in manifest["songs"]:
        for note in song["notes"]:
            click.echo(f"note: {song['id']}: {note}", err=True)
    click.echo(f"wrote {items} features of {len(manifest['songs'])} song(s) to {out_dir}; open {out_dir}/index.html")


MAX_MEMORY_GIB = 1 << 20  # 1 PiB: more than any machine, small enough to be a plain number of bytes


def _memory_budget(gib: float) -> int:
    """``--memory`` in GiB -> bytes; a positive, finite number of GiB of at least one byte, else one error line."""
    import math

    from .errors import BadParameterError

    if not (math.isfinite(gib) and 0 < gib <= MAX_MEMORY_GIB) or int(gib * (1 << 30)) < 1:
        raise BadParameterError(
            f"--memory must be a positive number of GiB up to {MAX_MEMORY_GIB}, such as 1 or 0.5; got {gib!r}"
        )
    return int(gib * (1 << 30))


class _ExportProgress:
    """Two tqdm bars on stderr: songs overall, and items of the current song (nothing with ``quiet``)."""

    def __init__(self, songs: int, quiet: bool):
        self.songs, self.quiet, self.current, self.overall, self.song = songs, quiet, None, None, None

    def __enter__(self):
        return None if self.quiet else self

    def __call__(self, song: str, done: int, total: int) -> None:
        from tqdm import tqdm

        if self.overall is None:  # created once the checks have passed, so a usage error prints one line only
            self.overall = tqdm(total=self.songs, desc="songs", unit="song", position=0, dynamic_ncols=True)
        if song != self.current:
            if self.song is not None:
                self.song.close()
                self.overall.update(1)
            self.current = song
            self.song = tqdm(total=total, desc=song, unit="feature", position=1, leave=False, dynamic_ncols=True)
        self.song.n = done
        self.song.refresh()

    def __exit__(self, *exc) -> None:
        if self.song is not None:
            self.song.close()
            if exc[0] is None:
                self.overall.update(1)
        if self.overall is not None:
            self.overall.close()


@cli.command("rank")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--layer", "-l", "layers", multiple=True, help="Conv layer (number or path); repeat; default all.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the K most active per layer.")
@_tap_option("Tap point whose activations are measured.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto (cuda when available).")
@_with_model_options
def rank_command(model, audio, layers, top, tap, as_json, device, frontend, trust_model) -> None:
    """Rank the features of each layer by activation energy on AUDIO, and list the dead ones."""
    from .ranking import rank_features

    ranked = rank_features(
        model, audio, layers=list(layers) or None, tap=tap, device=device, trust=trust_model, frontend=frontend
    )
    if as_json:
        payload = {
            "model": str(model),
            "audio": str(audio),
            "tap": tap,
            "layers": [
                {
                    "layer": number,
                    "features": [r.to_dict() for r in rows[:top]],
                    "dead": [r.feature for r in rows if r.dead],
                }
                for number, rows in ranked.items()
            ],
        }
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"{audio} through {model} (tap '{tap}'): features by activation energy")
    for number, rows in ranked.items():
        dead = [r.feature for r in rows if r.dead]
        click.echo(f"\nlayer {number}: {len(rows)} features, {len(dead)} dead")
        click.echo(f"{'rank':>4}  {'feature':>7}  {'energy':>10}  {'share':>6}  {'max':>9}")
        for r in rows[:top]:
            click.echo(f"{r.rank:>4}  {r.feature:>7}  {r.energy:>10.4g}  {r.share:>6.1%}  {r.maximum:>9.4g}")
        click.echo(f"dead (never active on this song): {', '.join(map(str, dead)) if dead else 'none'}")


_COMMAND_LINE: list[str] = []  # the arguments of this invocation, recorded in the figures it writes


def _command_line() -> str:
    import shlex

    return shlex.join(["auralise", *_COMMAND_LINE])


_figure_output_options = [
    click.option("--out", "out", type=click.Path(dir_okay=False), required=True, help="FILE.pdf, .svg or .png."),
    click.option("--width", default="double", show_default=True, help="single or double column, or inches."),
    click.option("--force", is_flag=True, help="Overwrite an existing file."),
]


_with_figure_output = _applying(_figure_output_options)


@cli.group("figure")
def figure_group() -> None:
    """Publication figures: deconvolution grids, learned filters, receptive fields, the attribute study."""


@figure_group.command("grid")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--features", required=True, help="Features as LAYER-FEATURE, comma separated: 1-9,1-27,3-38.")
@_with_figure_output
@click.option("--original", is_flag=True, help="Add the song's spectrogram as the first panel.")
@click.option("--linear-freq", is_flag=True, help="Linear frequency axis (default: logarithmic).")
@click.option("--shared-scale", is_flag=True, help="One dB scale (re the largest panel) for all panels.")
@click.option("--columns", type=click.IntRange(min=1), default=None, help="Panels per row.")
@click.option("--notes", type=click.Path(dir_okay=False), default=None, help="Listening-page notes JSON: names.")
@_with_rendering_options
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto (cuda when available).")
def figure_grid_command(
    model, audio, features, out, width, force, original, linear_freq, shared_scale, columns, notes, method, select,
    tap, resynth, phase, normalize, device,
) -> None:  # fmt: skip
    """Deconvolved spectrograms of FEATURES of MODEL on AUDIO, one panel each (Choi et al. Figs. 3-8)."""
    from .audio import check_output_file
    from .paper import grid

    check_output_file(out, force=True)  # a symbolic link or a device is refused before any work
    path, warnings = grid(
        model, audio, features, out, original=original, log_freq=not linear_freq, shared_scale=shared_scale,
        columns=columns, notes=notes, width=width, method=method, select=select, tap=tap, device=device,
        force=force, command=_command_line(),
    )  # fmt: skip
    for warning in warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"wrote {path}")


@figure_group.command("filters")
@click.argument("model", type=click.Path())
@click.option("--layer", "-l", default="1", show_default=True, help="Conv layer: number or module path.")
@click.option("--features", default=None, help="Features to show: 0-15 or 0,5,38 (default all).")
@_with_figure_output
def figure_filters_command(model, layer, features, out, width, force) -> None:
    """The learned kernels of one layer, diverging colours centred on zero (Choi et al. Fig. 4)."""
    from .export import parse_feature_spec
    from .paper import filters

    feats = None
    if features is not None:
        kind, feats = parse_feature_spec(features)
        if kind != "list":
            raise click.BadParameter("give a list such as 0-15 or 0,5,38", param_hint="--features")
    path = filters(model, out, layer=layer, features=feats, width=width, force=force, command=_command_line())
    click.echo(f"wrote {path}")


@figure_group.command("receptive-field")
@click.argument("model", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(("md", "latex", "csv")), default="md", show_default=True)
@_tap_option("Tap point whose units' receptive fields are measured.")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Write to FILE instead of stdout.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def figure_receptive_field_command(model, fmt, tap, out, force) -> None:
    """Table 1: kernel and effective width (ms) and height (Hz) of each layer, computed exactly."""
    from pathlib import Path

    from .audio import atomic_path, check_output_file
    from .paper import receptive_field_table

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
@_with_figure_output
@click.option("--instruments", default=None, help="Comma-separated timbres (default: all six).")
@click.option("--chords", default=None, help="Comma-separated chord types (default: all eight).")
@click.option("--keys", default=None, help="Comma-separated keys, e.g. Eb2,Bb2,A3,G4 (the default).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None, help="Also write the numbers.")
@click.option("--method", type=click.Choice(METHODS), default="deconvnet", show_default=True, help="Backward rule.")
@_tap_option("Tap point of every layer.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def figure_attributes_command(
    model, out, width, force, instruments, chords, keys, csv_path, method, tap, quiet
) -> None:
    """How each layer's features change with key, chord and instrument (Choi et al. Fig. 10), plus a CSV."""
    from .paper import attributes

    def split(text):
        return [t.strip() for t in text.split(",") if t.strip()] if text else None

    bar = None
    if not quiet:
        from tqdm import tqdm

        bar = tqdm(desc="signals", unit="signal", dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        table = attributes(
            model, out, instruments=split(instruments), chords=split(chords), keys=split(keys), csv_path=csv_path,
            width=width, method=method, tap=tap, force=force, command=_command_line(),
            progress=progress if bar is not None else None,
        )  # fmt: skip
    finally:
        if bar is not None:
            bar.close()
    for row in table.as_rows():
        click.echo("  ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.items()))
    click.echo(f"wrote {out}" + (f" and {csv_path}" if csv_path else ""))


@cli.command("tag")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many tags to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: mean over patches (top K) and every patch.")
@click.option("--device", default="auto", show_default=True, help="cpu, cuda, or auto (cuda when available).")
@_with_model_options
def tag_command(model, audio, top, as_json, device, frontend, trust_model) -> None:
    """What MODEL predicts for AUDIO: tag or class probabilities, averaged over non-overlapping patches."""
    from .tagging import tag_song

    result = tag_song(model, audio, device=device, trust=trust_model, frontend=frontend)
    if as_json:
        click.echo(json.dumps({"model": str(model), "audio": str(audio), **result.to_dict(top)}, indent=2))
        return
    count = len(result.starts)
    click.echo(f"{audio}: {count} patch(es) of {result.patch_seconds:g} s; mean {result.activation} probability")
    rows = [(printable(name), p) for name, p in result.top(top)]  # labels come from the model file
    width = max(len(name) for name, _ in rows)
    for name, p in rows:
        click.echo(f"{name:<{width}}  {p:.3f}  {'#' * round(40 * p)}")


@cli.group("import")
def import_group() -> None:
    """Import published models as auralise checkpoints."""


@import_group.command("musicnn")
@click.option("--model", "models", multiple=True, default=["MTT_musicnn"], show_default=True,
              help="MTT_musicnn, MSD_musicnn, MTT_vgg, MSD_vgg or all; repeat for several.")  # fmt: skip
@click.option("--wheel", type=click.Path(dir_okay=False), default=None,
              help="musicnn-0.1.0-py3-none-any.whl [default: cached, else `pip download` into the cache].")  # fmt: skip
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default="models", show_default=True)
@click.option("--force", is_flag=True, help="Overwrite existing checkpoints.")
def import_musicnn_command(models, wheel, out_dir, force) -> None:
    """The musicnn taggers (Pons & Serra; MagnaTagATune and MSD, 50 tags), read without TensorFlow."""
    from .importer import import_musicnn

    for path in import_musicnn(out_dir, models=models, wheel=wheel, force=force,
                               progress=lambda msg: click.echo(msg, err=True)):  # fmt: skip
        click.echo(f"wrote {path}")


@cli.command("inspect")
@click.argument("model", type=click.Path())
@_tap_option("Tap point whose output shape and receptive field are shown.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_with_model_options
def inspect_command(model, tap, as_json, frontend, trust_model) -> None:
    """List MODEL's convolution layers in execution order with shapes and receptive fields."""
    from .layers import layer_table
    from .modelfile import load_model

    loaded = load_model(model, frontend=frontend, trust=trust_model)
    rows = layer_table(loaded.module, loaded.example_input(4.0), loaded.frontend, tap=tap)
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
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
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

    from .errors import OutputError
    from .train import get_recipe, train

    rec = get_recipe(recipe)
    if Path(out_path).exists() and not force:
        raise OutputError(f"{out_path} already exists; pass --force to overwrite or choose another --out")
    _, provenance = train(rec, out=out_path, progress=None if quiet else lambda msg: click.echo(msg, err=True))
    click.echo(f"wrote {out_path} (test accuracy {provenance['test_accuracy']:.3f})")


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


_PYTHON_SHOWWARNING = warnings.showwarning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """auralise's own warnings as one ``warning:`` line; anything else as Python shows it."""
    if issubclass(category, AuraliseWarning):
        click.echo(f"warning: {printable(message)}", err=True)
    else:
        _PYTHON_SHOWWARNING(message, category, filename, lineno, file, line)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors become one line on stderr and an exit code, never a traceback."""
    signal.signal(signal.SIGTERM, _terminate)  # `kill` cleans up like Ctrl-C: temporary files go, targets stay
    warnings.showwarning = _show_warning
    _COMMAND_LINE[:] = list(sys.argv[1:] if argv is None else argv)
    try:
        code = cli.main(args=argv, prog_name="auralise", standalone_mode=False)
    except click.exceptions.Abort as exc:
        # click turns Ctrl-C (KeyboardInterrupt) inside a command into Abort, even with standalone_mode=False
        interrupted = isinstance(exc.__cause__, KeyboardInterrupt)
        click.echo("interrupted; no partial files were left" if interrupted else "aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        click.echo("interrupted; no partial files were left", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()} (see `auralise --help`)", err=True)
        sys.exit(exc.exit_code)
    except AuraliseError as exc:
        click.echo(f"error: {printable(exc)}", err=True)  # messages can quote text from a model file
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
