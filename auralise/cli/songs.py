"""Commands on songs: run (the main command), export, rank, tag."""

from __future__ import annotations

import json

import click

from auralise.cli import cli
from auralise.cli.options import device_option, tap_option, with_model_options, with_rendering_options
from auralise.text import printable


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
@with_rendering_options
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Output folder [default: auralised/<audio stem>/].",
)
@click.option("--no-plot", is_flag=True, help="Write only the WAV files.")
@device_option()
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@with_model_options
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
    from auralise.listening.single import auralise_file
    from auralise.session import RenderOptions

    options = RenderOptions(method, select, tap, resynth, phase, normalize)
    result = auralise_file(
        model,
        audio,
        layer=layer,
        features=features,
        options=options,
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
@with_rendering_options
@click.option("--figures", is_flag=True, help="Also write a full matplotlib figure per feature (slower).")
@click.option("--workers", type=int, default=2, show_default=True, help="Threads writing files while computing.")
@click.option("--memory", type=float, default=1.0, show_default=True, help="Working-memory budget in GiB.")
@device_option()
@click.option("--force", is_flag=True, help="Start over: remove a previous export in --out.")
@click.option("--resume", is_flag=True, help="Finish an interrupted export; finished items are kept.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@with_model_options
def export_command(
    model, audio, out_dir, layers, features, method, select, tap, resynth, phase, normalize, figures, workers,
    memory, device, force, resume, quiet, frontend, trust_model,
) -> None:  # fmt: skip
    """Export a listening set: AUDIO files x layers x features as WAV + PNG, manifest.json and index.html."""
    from auralise.listening.export import ExportOptions, export
    from auralise.session import RenderOptions

    budget = _memory_budget(memory)
    render = RenderOptions(method, select, tap, resynth, phase, normalize)
    options = ExportOptions(layers=layers, features=features, render=render, figures=figures)
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

    from auralise.errors import BadParameterError

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
@tap_option("Tap point whose activations are measured.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@device_option()
@with_model_options
def rank_command(model, audio, layers, top, tap, as_json, device, frontend, trust_model) -> None:
    """Rank the features of each layer by activation energy on AUDIO, and list the dead ones."""
    from auralise.studies.ranking import rank_features

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


@cli.command("tag")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many tags to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: mean over patches (top K) and every patch.")
@device_option()
@with_model_options
def tag_command(model, audio, top, as_json, device, frontend, trust_model) -> None:
    """What MODEL predicts for AUDIO: tag or class probabilities, averaged over non-overlapping patches."""
    from auralise.studies.tagging import tag_song

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
