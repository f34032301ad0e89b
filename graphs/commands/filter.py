"""``sparring filter RUN_DIR --out NEW_DIR``: a filtered copy of a run, as a new run directory."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import say, user_errors


@click.command(name="filter")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The new run directory (must not exist or be empty).")
@click.option("--only-verified", is_flag=True, help="Keep only pairs whose revision passed verification.")
@click.option("--only-violations", is_flag=True, help="Keep only dialogues with a violation the critic confirmed.")
@click.option("--min-turns", type=click.IntRange(min=1), help="Drop dialogues with fewer turns.")
@click.option("--max-turns", type=click.IntRange(min=1), help="Drop dialogues with more turns.")
@click.option("--dedup", is_flag=True, help="Drop near-duplicate dialogues (sentence-embedding cosine).")
@click.option("--dedup-threshold", type=click.FloatRange(0.0, 1.0), default=None,
              help="Cosine at or above which two dialogues are near-duplicates (default 0.95; implies --dedup).")
@user_errors
def filter_run(run_dir: Path, out: Path, only_verified: bool, only_violations: bool, min_turns: int | None,
               max_turns: int | None, dedup: bool, dedup_threshold: float | None) -> None:
    """Copy the dialogues, pairs, SFT rows, scenarios and traces of RUN_DIR that pass the filters into a
    new run directory whose manifest records its parent and the filter. Failed dialogues are never copied."""
    from sparring.errors import InputError
    from sparring.graphs.data.filtered_run import write_filtered_run
    from sparring.graphs.data.filters import FilterSpec
    from sparring.graphs.data.run_stats import NEAR_DUPLICATE_THRESHOLD

    if min_turns is not None and max_turns is not None and min_turns > max_turns:
        raise InputError(f"--min-turns ({min_turns}) is above --max-turns ({max_turns})")
    threshold = dedup_threshold if dedup_threshold is not None else (NEAR_DUPLICATE_THRESHOLD if dedup else None)
    spec = FilterSpec(only_verified=only_verified, only_violations=only_violations, min_turns=min_turns,
                      max_turns=max_turns, dedup_threshold=threshold)
    manifest = write_filtered_run(run_dir, out, spec)
    counts, removed = manifest.counts, manifest.filter.removed if manifest.filter else {}
    dropped = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in removed.items()) or "nothing"
    say(f"kept {counts.dialogues} dialogues, {counts.pairs} pairs ({counts.verified_pairs} verified); "
        f"removed {dropped} -> {out}")
