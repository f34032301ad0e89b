"""``sparring run CONFIG`` and ``sparring resume RUN_DIR``.

Exit status: 0 every dialogue written; 3 finished, but some dialogues failed
(they are in dialogues.jsonl with their error); 1 stopped by --max-failures;
2 bad input; 130 interrupted (resume continues it).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ._common import set_option, user_errors

EXIT_FAILURES = 3
EXIT_STOPPED = 1
EXIT_INTERRUPTED = 130


@click.command()
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory (default: runs/<name>).")
@click.option("--max-dialogues", type=click.IntRange(min=1), help="Simulate at most N dialogues.")
@click.option("--max-failures", type=click.IntRange(min=0), help="Stop cleanly once more than N dialogues failed.")
@click.option("--dry-run", is_flag=True, help="Print what the config will produce; call no model, write nothing.")
@click.option("--force", is_flag=True, help="Continue a run directory made by a different config.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@user_errors
def run(config: Path, overrides: tuple[str, ...], out: Path | None, max_dialogues: int | None,
        max_failures: int | None, dry_run: bool, force: bool, quiet: bool) -> None:
    """Simulate the dialogues CONFIG describes and write them, their preference pairs and traces.

    Running again into an existing run directory continues it (see `sparring resume`)."""
    from sparring.graphs.run_request import request_from_config

    request = request_from_config(config, overrides, out=out, max_dialogues=max_dialogues, max_failures=max_failures,
                       force=force)
    if dry_run:
        from sparring.graphs.run_request import describe_request

        click.echo(describe_request(request))
        return
    _execute(request, quiet)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--max-failures", type=click.IntRange(min=0), help="Stop cleanly once more than N dialogues failed.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@user_errors
def resume(run_dir: Path, max_failures: int | None, quiet: bool) -> None:
    """Continue a run that was interrupted or killed: written records stay, unfinished
    dialogues continue from their last checkpoint, failed ones are retried."""
    from sparring.graphs.run_request import request_from_run_dir

    _execute(request_from_run_dir(run_dir, max_failures=max_failures), quiet)


def _execute(request: object, quiet: bool) -> None:
    from sparring.errors import WorkerError
    from sparring.graphs.pipeline import execute
    from sparring.graphs.progress import Progress

    try:
        result = asyncio.run(execute(request, progress=Progress(enabled=not quiet)))  # type: ignore[arg-type]
    except WorkerError as exc:  # an OOM kill, say: the manifest says crashed, and a resume continues
        click.echo(f"error: {exc}\nresume with: sparring resume {request.run_dir}", err=True)  # type: ignore[attr-defined]
        sys.exit(EXIT_STOPPED)
    counts = result.manifest.get("counts", {})
    click.echo(
        f"{result.status}: {counts.get('dialogues', 0)} dialogues ({counts.get('failed', 0)} failed), "
        f"{counts.get('pairs', 0)} preference pairs ({counts.get('verified_pairs', 0)} verified), "
        f"violation rate {counts.get('violation_rate', 0):.0%}, average {counts.get('avg_turns', 0)} turns "
        f"-> {result.run_dir}")
    if result.status == "interrupted":
        click.echo(f"resume with: sparring resume {result.run_dir}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.status == "failed":
        sys.exit(EXIT_STOPPED)
    if counts.get("failed"):
        sys.exit(EXIT_FAILURES)
