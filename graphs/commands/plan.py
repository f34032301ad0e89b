"""``sparring plan CONFIG --out PLAN_DIR``: expand once, freeze the job list for shards to run."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import click

from ._common import say, set_option, user_errors


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The plan directory (must not exist or be empty).")
@set_option
@click.option("--max-dialogues", type=click.IntRange(min=1), help="Plan at most N dialogues.")
@click.option("--shards", type=click.IntRange(min=1), help="Also print how many dialogues each of N shards gets.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@user_errors
def plan(config: Path, out: Path, overrides: tuple[str, ...], max_dialogues: int | None, shards: int | None,
         quiet: bool) -> None:
    """Freeze the dialogues CONFIG makes into PLAN_DIR: the DiaSynth expansion (it calls the model)
    runs once here, so that every `sparring run PLAN_DIR --shard K/N` sees the same jobs."""
    from collections import Counter

    from sparring.graphs.runtime.plan_expansion import make_plan
    from sparring.graphs.runtime.plan_files import shard_of, write_plan
    from sparring.graphs.runtime.progress import Progress
    from sparring.graphs.runtime.run_request import request_from_config

    request = request_from_config(config, overrides, max_dialogues=max_dialogues)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        from sparring.errors import InputError

        raise InputError("exists and is not empty; a plan goes into a new directory", source=str(out))
    with tempfile.TemporaryDirectory(prefix="sparring-plan-") as tmp:
        spans = Path(tmp) / "traces.jsonl"
        made = asyncio.run(make_plan(request, progress=Progress(enabled=not quiet), traces=spans))
        plan_id = write_plan(made, out, expansion_spans=spans)
    say(f"plan {plan_id}: {len(made.jobs)} dialogues over {len(made.scenarios)} scenarios -> {out}")
    for line in (made.expansion or {}).get("explain", []):
        say(f"  {line}")
    if shards:
        sizes = Counter(shard_of(job.attack_id, shards) for job in made.jobs)
        say("dialogues per shard: " + ", ".join(f"{k}/{shards}: {sizes.get(k, 0)}" for k in range(shards)))
