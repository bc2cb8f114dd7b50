"""Commands on songs: run (the main command), export, rank, tag, predict."""

from __future__ import annotations

import json

import click

from auralise.cli import cli
from auralise.cli.options import (
    checked_specs,
    device_option,
    feature_option,
    layer_option,
    tap_option,
    with_listening_options,
    with_model_options,
    with_output_rate_options,
    with_region_options,
    with_rendering_options,
)
from auralise.io.naming import DEFAULT_OUT
from auralise.text import printable


@cli.command("run")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path(), nargs=-1, required=True)
@layer_option()
@feature_option()
@with_rendering_options
@with_output_rate_options
@click.option(
    "--out",
    "out_dir",
    default=DEFAULT_OUT,
    show_default=True,
    help="Output folder; {model} and {song} stand for the model's and the song's file stems (several songs need "
    "{song}).",
)
@click.option("--no-plot", is_flag=True, help="Write only the WAV files (and their JSON records).")
@with_region_options
@device_option()
@click.option("--force", is_flag=True, help="Overwrite existing output files.")
@with_model_options
def run_command(
    model, audio, layers, features, method, select, tap, resynth, phase, normalize, output_sr, above_band, out_dir,
    no_plot, offset, duration, device, force, frontend, trust_model,
) -> None:  # fmt: skip
    """Auralise FEATURE(s) of LAYER(s) of MODEL on each AUDIO file: per feature a WAV, a PNG and a JSON record,
    named layer{L}_feature{F}[_options].wav (options other than the defaults are named), in the --out folder."""
    from auralise.listening.single import auralise_files
    from auralise.session import RenderOptions

    layers, features = checked_specs(layers, features)
    options = RenderOptions(method, select, tap, resynth, phase, normalize, output_sr, above_band)
    results = auralise_files(
        model, audio, layers=layers, features=features, options=options, out=out_dir,
        plot=not no_plot, force=force, device=device, trust=trust_model, frontend=frontend, offset=offset,
        duration=duration,
    )  # fmt: skip
    for result in results:
        where = f"{result.song}: " if len(results) > 1 else ""
        for note in result.notes:
            click.echo(f"note: {where}{note}", err=True)
        for warning in result.warnings:
            click.echo(f"warning: {where}{warning}", err=True)
        for path in result.written:
            click.echo(f"wrote {path}")
        for item in result.features:
            if item.seeds:  # --select max/topk:K: where the seeded units lie, to listen from there
                click.echo(f"{where}layer {item.layer} feature {item.feature} seeded at {_seed_places(item.seeds)}")


def _seed_places(seeds: list[dict]) -> str:
    """``"12.35 s / 440 Hz (activation 3.1), ..."``: the seeded units' receptive-field centres, strongest first."""
    places = []
    for seed in seeds:
        where = [f"{seed['time_in_file']:.2f} s" if seed["time_in_file"] is not None else "?"]
        if seed["hz"] is not None:
            where.append(f"{seed['hz']:.0f} Hz")
        places.append(f"{' / '.join(where)} (activation {seed['activation']:.3g})")
    return ", ".join(places)


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
@with_output_rate_options
@click.option("--figures", is_flag=True, help="Also write a full matplotlib figure per feature (slower).")
@click.option("--evaluate", is_flag=True,
              help="Add each feature's retention, specificity, deletion and distance to the song to the manifest "
              "and the page (as `auralise evaluate` measures them; a projection and two forward passes more per "
              "feature).")  # fmt: skip
@with_region_options
@click.option("--workers", type=int, default=2, show_default=True, help="Threads writing files while computing.")
@click.option("--memory", type=float, default=1.0, show_default=True, help="Working-memory budget in GiB.")
@device_option()
@click.option("--force", is_flag=True, help="Start over: remove a previous export in --out.")
@click.option("--resume", is_flag=True, help="Finish an interrupted export; finished items are kept.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@with_model_options
def export_command(
    model, audio, out_dir, layers, features, method, select, tap, resynth, phase, normalize, output_sr, above_band,
    figures, evaluate, offset, duration, workers, memory, device, force, resume, quiet, frontend, trust_model,
) -> None:  # fmt: skip
    """Export a listening set: AUDIO files x layers x features as WAV + PNG, manifest.json and index.html."""
    from auralise.cli import pause_collections
    from auralise.listening.export import ExportOptions, export
    from auralise.session import RenderOptions

    budget = _memory_budget(memory)
    render = RenderOptions(method, select, tap, resynth, phase, normalize, output_sr, above_band)
    options = ExportOptions(layers=layers, features=features, render=render, figures=figures, offset=offset,
                            duration=duration, evaluate=evaluate)  # fmt: skip
    pause_collections()  # until the first song's work starts (its progress report)
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
    """The export's progress on stderr, song by song: the share of the song's work done and the current stage (a
    bar on a terminal, plain lines otherwise: see :mod:`auralise.cli.progress`); nothing with ``quiet``. A song's
    work is also when the command's long-lived objects are kept out of the collector's sight
    (:func:`auralise.cli.keep_out_of_collections`)."""

    def __init__(self, songs: int, quiet: bool):
        self.songs, self.quiet, self.display, self.numbers = songs, quiet, None, {}

    def __enter__(self):
        return self

    def __call__(self, song: str, done: int, total: int, stage: str) -> None:
        from auralise.cli import keep_out_of_collections
        from auralise.cli.progress import ProgressDisplay

        if stage in ("loading", "forward pass", "done"):  # a song is loaded (the model is) / its work starts / ends
            keep_out_of_collections(stage != "done")
        if self.quiet:
            return
        if self.display is None:  # created once the checks have passed, so a usage error prints one line only
            self.display = ProgressDisplay(eta=False, unit="unit")
        number = self.numbers.setdefault(song, len(self.numbers) + 1)
        self.display.show(f"{song} [{number}/{self.songs} songs]", done, total, stage)

    def __exit__(self, *exc) -> None:
        if self.display is not None:
            self.display.close()


@cli.command("rank")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--layer", "-l", "layers", multiple=True, help="Conv layer (number or path); repeat; default all.")
@click.option("--top", type=click.IntRange(min=1), default=None, help="Show only the K most active per layer.")
@tap_option("Tap point whose activations are measured.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@with_region_options
@device_option()
@with_model_options
def rank_command(model, audio, layers, top, tap, as_json, offset, duration, device, frontend, trust_model) -> None:
    """Rank the features of each layer by activation energy on AUDIO, and list the dead and near-dead ones.

    Dead: never active on this song. Near-dead: the kernel's L2 norm is at most 1e-3 times the largest of its layer,
    so the feature responds to no song (its map is its bias) and draws blank in `figure filters`.
    """
    from auralise.studies.ranking import rank_features

    ranked = rank_features(model, audio, layers=list(layers) or None, tap=tap, device=device, trust=trust_model,
                           frontend=frontend, offset=offset, duration=duration)  # fmt: skip
    if as_json:
        payload = {
            "model": str(model),
            "audio": str(audio),
            "offset": offset,
            "duration": duration,
            "tap": tap,
            "layers": [
                {
                    "layer": number,
                    "features": [
                        r.to_dict()
                        | {"kernel_norm": ranked.kernel_norms[number][r.feature],
                           "near_dead": r.feature in ranked.near_dead[number]}
                        for r in rows[:top]
                    ],
                    "dead": [r.feature for r in rows if r.dead],
                    "near_dead": ranked.near_dead[number],
                }
                for number, rows in ranked.items()
            ],
        }  # fmt: skip
        click.echo(json.dumps(payload, indent=2))
        return
    click.echo(f"{audio}{_part(offset, duration)} through {model} (tap '{tap}'): features by activation energy")
    for number, rows in ranked.items():
        dead, near = [r.feature for r in rows if r.dead], ranked.near_dead[number]
        click.echo(f"\nlayer {number}: {len(rows)} features, {len(dead)} dead, {len(near)} near-dead")
        click.echo(f"{'rank':>4}  {'feature':>7}  {'energy':>10}  {'share':>6}  {'max':>9}")
        for r in rows[:top]:
            mark = "  near-dead" if r.feature in near else ""
            click.echo(f"{r.rank:>4}  {r.feature:>7}  {r.energy:>10.4g}  {r.share:>6.1%}  {r.maximum:>9.4g}{mark}")
        click.echo(f"dead (never active on this song): {', '.join(map(str, dead)) if dead else 'none'}")
        click.echo(f"near-dead (kernel L2 norm <= 1e-3 x the layer's largest; respond to no song): "
                   f"{', '.join(map(str, near)) if near else 'none'}")  # fmt: skip


@cli.command("tag")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--top", type=click.IntRange(min=1), default=10, show_default=True, help="How many tags to show.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON: mean over patches (top K) and every patch.")
@click.option("--length", type=float, default=None,
              help="Patch length in seconds (musicnn's input_length) [default: the model's own].")  # fmt: skip
@click.option("--overlap", type=float, default=None, help="Overlap of the patches in seconds [default: 0].")
@click.option("--taggram", type=click.Path(dir_okay=False), default=None,
              help="Also draw the top tags over time: FIG.pdf, .svg or .png.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite an existing --taggram file.")
@with_region_options
@device_option()
@with_model_options
def tag_command(
    model, audio, top, as_json, length, overlap, taggram, force, offset, duration, device, frontend, trust_model
) -> None:  # fmt: skip
    """What MODEL predicts for AUDIO: tag or class probabilities per patch, averaged over the patches.

    Patches are cut as musicnn's tagger cuts them: --length seconds each (default the model's own, 187 frames for
    musicnn), overlapping by --overlap seconds (default none), the remainder dropped. --taggram draws the top tags
    over time; --json gives every patch's probabilities with its start time.
    """
    from auralise.studies.tagging import tag_song

    if taggram is not None:  # a bad figure name, a link or an existing file fails before any work
        from auralise.figures.taggram import check_taggram_path
        from auralise.io.files import check_output_file

        check_output_file(taggram, force=True)
        check_taggram_path(taggram, force)
    result = tag_song(model, audio, device=device, trust=trust_model, frontend=frontend, offset=offset,
                      duration=duration, length=length, overlap=overlap)  # fmt: skip
    step = float(result.starts[1] - result.starts[0]) if len(result.starts) > 1 else result.patch_seconds
    if taggram is not None:
        from auralise.cli.options import command_line
        from auralise.figures.taggram import save_taggram

        taggram = save_taggram(result, taggram, top=top, force=force, command=command_line())
    if as_json:
        part = {"offset": offset, "duration": duration, "overlap_seconds": overlap or 0.0, "step_seconds": step}
        click.echo(json.dumps({"model": str(model), "audio": str(audio), **part, **result.to_dict(top)}, indent=2))
    else:
        count = len(result.starts)
        every = f" every {step:.4g} s" if overlap else ""
        click.echo(f"{audio}: {count} patch(es) of {result.patch_seconds:g} s{every}; mean {result.activation} "
                   "probability")  # fmt: skip
        rows = [(printable(name), p) for name, p in result.top(top)]  # labels come from the model file
        width = max(len(name) for name, _ in rows)
        for name, p in rows:
            click.echo(f"{name:<{width}}  {p:.3f}  {'#' * round(40 * p)}")
    if taggram is not None:
        click.echo(f"wrote {taggram}", err=as_json)  # with --json, stdout stays pure JSON


@cli.command("evaluate")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path(), nargs=-1, required=True)
@layer_option(required=False, default="all")
@feature_option(required=False, default="all")
@with_listening_options
@with_region_options
@click.option("--json", "as_json", is_flag=True, help="Print the JSON document (schema: README, Faithfulness).")
@click.option("--out", "out", type=click.Path(dir_okay=False), default=None, help="Also write the JSON to FILE.json.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Also write one CSV row per song, layer and feature to FILE.csv.")  # fmt: skip
@click.option("--force", is_flag=True, help="Overwrite existing --out and --csv files.")
@click.option("--quiet", is_flag=True, help="No progress.")
@device_option()
@with_model_options
def evaluate_command(
    model, audio, layers, features, offset, duration, as_json, out, csv_path, force, quiet, device, frontend,
    trust_model, **render,
) -> None:  # fmt: skip
    """How faithful and how distinguishable the auralisations of FEATURE(s) of LAYER(s) of MODEL are on AUDIO.

    Each feature's auralisation (with the rendering options given) is fed back through the front-end and the
    model: retention (its activation energy on the auralisation over that on the song), specificity (its retention
    over the median of the layer's other features'), deletion (its energy on the song minus the auralisation), and
    the distances in dB between the long-term spectra of the auralisations and of the song (distinguishability).
    Levels are kept: the measures always use --normalize none. Costs a projection and two forward passes per
    feature. Default: every layer and feature; prints the medians per layer (--json: every feature).
    """
    from pathlib import Path

    from auralise.cli.progress import TaskProgress
    from auralise.engine.selection import parse_layer_spec
    from auralise.errors import BadParameterError
    from auralise.io.files import check_output_file
    from auralise.session import RenderOptions, Session
    from auralise.studies.evaluation import evaluate

    layers, features = checked_specs(layers, features)
    for path, suffix, option in ((out, ".json", "--out"), (csv_path, ".csv", "--csv")):
        if path is not None:
            if Path(path).suffix.lower() != suffix:
                raise BadParameterError(f"{option} must name a {suffix} file, got {path}")
            check_output_file(path, force=force)  # an existing file needs --force; never a link or a device
    options = RenderOptions(**render, normalize="none")
    session = Session(model, device=device, trust=trust_model, frontend=frontend, options=options)
    with TaskProgress("evaluate", quiet) as progress:
        table = evaluate(session, audio, layers=parse_layer_spec(layers), features=features, offset=offset,
                         duration=duration, progress=progress)  # fmt: skip
    if out is not None:
        table.to_json(out)
    if csv_path is not None:
        table.to_csv(csv_path)
    click.echo(table.to_json() if as_json else str(table), nl=not as_json)
    for path in (out, csv_path):
        if path is not None:
            click.echo(f"wrote {path}", err=as_json)  # with --json, stdout stays pure JSON


@cli.command("predict")
@click.argument("model", type=click.Path())
@click.argument("audio", type=click.Path())
@click.option("--out", "out_path", type=click.Path(dir_okay=False), required=True,
              help="The .npz file of named arrays (each with the rows of 'time', in seconds).")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary instead of lines.")
@click.option("--top", type=click.IntRange(min=1), default=5, show_default=True, help="Tags in the summary.")
@click.option("--length", type=float, default=None, help="Taggers: patch length in seconds [default: the model's].")
@click.option("--overlap", type=float, default=None, help="Taggers: overlap of the patches in seconds [default: 0].")
@click.option("--force", is_flag=True, help="Overwrite an existing --out file.")
@with_region_options
@device_option()
@with_model_options
def predict_command(
    model, audio, out_path, as_json, top, length, overlap, force, offset, duration, device, frontend, trust_model
) -> None:  # fmt: skip
    """Every output of MODEL on AUDIO as named arrays over time, written to --out FILE.npz.

    Pitch trackers (CREPE): activation (T x 360), pitch_hz, confidence per 10-ms frame. Note transcribers (Basic
    Pitch): contour, note, onset per frame. Taggers: tags (patch x tag), mean and labels, patches cut as `tag` cuts
    them. Every file has 'time' (seconds of each row in the file); load it with numpy.load(FILE, allow_pickle=False).
    The summary gives the top tags, the median pitch and share of voiced frames (confidence >= 0.5), or the number
    of note events (runs of note activation > 0.5).
    """
    from auralise.studies.prediction import check_npz_path, predict_song

    check_npz_path(out_path, force=force)  # a bad --out fails before any work
    result = predict_song(model, audio, device=device, trust=trust_model, frontend=frontend, offset=offset,
                          duration=duration, length=length, overlap=overlap)  # fmt: skip
    path = result.save(out_path, force=force)
    summary = result.summary(top)
    if as_json:
        click.echo(json.dumps({"model": str(model), "audio": str(audio), "offset": offset, "duration": duration,
                               "out": str(path), **summary}, indent=2))  # fmt: skip
        return
    shapes = ", ".join(f"{name} {'x'.join(map(str, shape))}" for name, shape in summary["arrays"].items())
    click.echo(f"{audio}{_part(offset, duration)}: {summary['rows']} rows; {printable(shapes)}")
    if "top_tags" in summary:
        click.echo("top tags: " + ", ".join(f"{printable(name)} {p:.3f}" for name, p in summary["top_tags"]))
    if "voiced_fraction" in summary:
        median = summary["median_pitch_hz"]
        pitch = "-" if median is None else f"{median:.1f} Hz"
        click.echo(f"voiced: {summary['voiced_fraction']:.1%} of frames (confidence >= "
                   f"{summary['voiced_threshold']:g}); median pitch {pitch}")  # fmt: skip
    if "active_notes" in summary:
        click.echo(f"notes: {summary['active_notes']} events (note > {summary['note_threshold']:g}); "
                   f"{summary['frames_with_notes']:.1%} of frames with a note")  # fmt: skip
    click.echo(f"wrote {path}")


def _part(offset: float, duration: float | None) -> str:
    """`` (12-42 s)``: the part of the song used when --offset or --duration is given; nothing otherwise."""
    if not offset and duration is None:
        return ""
    return f" ({offset:g}-{offset + duration:g} s)" if duration is not None else f" (from {offset:g} s)"
