"""``sparring merge SHARD_DIR... --out DIR``: the shards of one plan as one run directory."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import say, user_errors


@click.command()
@click.argument("shard_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The merged run directory (new, empty, or an earlier merge, which is replaced).")
@click.option("--allow-partial", is_flag=True,
              help="Merge even with shards missing or dialogues unfinished; the manifest lists what is missing.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@user_errors
def merge(shard_dirs: tuple[Path, ...], out: Path, allow_partial: bool, quiet: bool) -> None:
    """Merge the shard run directories of one plan into one run directory: every record once,
    traces and attempts kept, stats.json and report.html computed again. Written atomically;
    merging the same shards again gives the same bytes."""
    from sparring.graphs.runtime.progress import Progress
    from sparring.graphs.runtime.shard_merge import merge_shards

    manifest = merge_shards(list(shard_dirs), out, allow_partial=allow_partial, progress=Progress(enabled=not quiet))
    counts, merged, plan = manifest.counts, manifest.merge, manifest.plan
    assert merged is not None and plan is not None  # a merge's manifest has both
    say(f"{manifest.status}: {len(merged.shards)} of {plan.shards} shards, "
        f"{counts.dialogues} dialogues ({counts.failed} failed), {counts.pairs} preference pairs "
        f"({counts.verified_pairs} verified) -> {out}")
    if merged.missing_count:
        say(f"missing: {merged.missing_count} dialogues"
            + (f", shards {', '.join(map(str, merged.missing_shards))}" if merged.missing_shards else "")
            + " (listed in manifest.json under merge)", err=True)
