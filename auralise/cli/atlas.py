"""The atlas commands: build (the default) and merge."""

from __future__ import annotations

import click

from auralise import choices
from auralise.cli import cli
from auralise.cli.options import choice_option, method_option, tap_option, with_region_options
from auralise.text import printable


class _AtlasGroup(click.Group):
    """``auralise atlas MODEL INPUTS...`` builds; ``auralise atlas merge SHARD_DIR...`` merges shards."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["build", *args]
        return super().parse_args(ctx, args)


@cli.group("atlas", cls=_AtlasGroup)
def atlas_group() -> None:
    """Feature atlas: for each feature, its strongest excerpts across a corpus, auralised (`atlas build`, the
    default, and `atlas merge`)."""


@atlas_group.command("build")
@click.argument("model", type=click.Path(dir_okay=False))
@click.argument("inputs", nargs=-1, required=True)
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Atlas folder.")
@click.option("--layers", default="all", show_default=True, help="'all', or layers such as 1,3 or 2-4.")
@click.option("--features", default="all", show_default=True, help="'all', or features such as 0,5,38 or 0-15.")
@click.option("--top", type=int, default=9, show_default=True, help="Excerpts per feature (K).")
@click.option("--per-song", type=int, default=1, show_default=True,
              help="Occurrences per song and feature, at least a receptive field apart.")  # fmt: skip
@click.option("--excerpt", type=float, default=None,
              help="Excerpt length in seconds (default: receptive field + 1 s each side, at least 3 s).")  # fmt: skip
@with_region_options
@method_option()
@choice_option(
    "--resynth",
    values=choices.ATLAS_RESYNTH_MODES,
    default=choices.ATLAS_RESYNTH_MODES[0],
    help_text=choices.ATLAS_RESYNTH_HELP,
)
@tap_option("Which tensor is 'the layer': after its pooling (block), its nonlinearity, or the raw conv.")
@choice_option("--engine", values=choices.ENGINES, default="local", help_text="Where the scan runs: this machine, "
                "or Ray Data (a local Ray instance, or the cluster at --address).")  # fmt: skip
@click.option("--address", default=None, help="Ray cluster address (ray://HOST:10001 or auto); default: local Ray.")
@click.option("--workers", type=int, default=1, show_default=True, help="Scan processes (local) or Ray actors.")
@click.option("--shard", default=None, help="Scan only shard i of N (i/N); finish with `auralise atlas merge`.")
@click.option("--metadata", type=click.Path(dir_okay=False), default=None,
              help="CSV with columns path,tags: the tags that dominate each feature's excerpts.")  # fmt: skip
@click.option("--resume", is_flag=True, help="Finish an interrupted atlas; finished songs and excerpts are kept.")
@click.option("--force", is_flag=True, help="Start over in a folder that holds an atlas.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--trust-model", is_flag=True, help="Trust the model file (see `auralise run --help`).")
def atlas_build_command(model, inputs, out_dir, layers, features, top, per_song, excerpt, method, resynth, tap, engine,
                        address, workers, shard, metadata, resume, force, quiet, trust_model, offset,
                        duration) -> None:  # fmt: skip
    """Build the feature atlas of MODEL over INPUTS (audio files, folders, or text files listing paths)."""
    from auralise.listening.atlas import AtlasOptions, atlas

    options = AtlasOptions(layers, features, top, per_song, excerpt, method, resynth, tap, offset=offset,
                           duration=duration)  # fmt: skip
    result = atlas(model, inputs, out_dir, options=options, engine=engine, workers=workers, address=address,
                   shard=shard, resume=resume, force=force, metadata=metadata, trust=trust_model,
                   progress=None if quiet else _stage_progress)  # fmt: skip
    for s in result["skipped"]:
        click.echo(f"note: skipped {printable(s['path'])}: {printable(s['reason'])}", err=True)
    if shard:
        click.echo(
            f"scanned shard {shard}: {len(result['songs'])} song(s) in {out_dir}; merge with `auralise atlas merge`"
        )
    else:
        click.echo(f"wrote the atlas of {len(result['features'])} features over {len(result['songs'])} song(s) to "
                   f"{out_dir}; open {out_dir}/index.html")  # fmt: skip


@atlas_group.command("merge")
@click.argument("shards", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Atlas folder.")
@click.option("--metadata", type=click.Path(dir_okay=False), default=None, help="CSV with columns path,tags.")
@click.option("--quiet", is_flag=True, help="No progress lines.")
@click.option("--trust-model", is_flag=True, help="Trust the shards' model file (see `auralise run --help`).")
def atlas_merge_command(shards, out_dir, metadata, quiet, trust_model) -> None:
    """Merge the scans of `atlas --shard i/N` runs (SHARD folders) and render the atlas into --out."""
    from auralise.listening.atlas import merge

    result = merge(shards, out_dir, metadata=metadata, trust=trust_model, progress=None if quiet else _stage_progress)
    click.echo(f"merged {len(shards)} shard(s): {len(result['songs'])} song(s); open {out_dir}/index.html")


def _stage_progress(stage: str, done: int, total: int) -> None:
    if done == total or done % max(1, total // 20) == 0:
        click.echo(f"{stage}: {done}/{total}", err=True)
