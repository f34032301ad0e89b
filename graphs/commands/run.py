"""``sparring run CONFIG`` and ``sparring resume RUN_DIR``.

Exit status: 0 every dialogue written; 3 finished, but some dialogues failed
(they are in dialogues.jsonl with their error; the last line names the commonest
cause); 1 stopped by --max-failures, a worker's death or a full disk; 2 bad input,
a backend that cannot work (found before anything is written) or a run directory
another process is writing; 130 interrupted (resume continues it).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ._common import fail, set_option, user_errors

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
    from sparring.errors import DiskFull, WorkerError
    from sparring.graphs.pipeline import execute
    from sparring.graphs.progress import Progress
    from sparring.graphs.store import MANIFEST
    from sparring.redaction import scrub

    run_dir = request.run_dir  # type: ignore[attr-defined]
    try:
        result = asyncio.run(execute(request, progress=Progress(enabled=not quiet)))  # type: ignore[arg-type]
    except (WorkerError, DiskFull) as exc:  # an OOM kill, a full disk: the manifest says so, a resume continues
        fail(f"{exc}; resume with: sparring resume {run_dir}", EXIT_STOPPED)
    except KeyboardInterrupt:  # a signal outside the dialogues (start-up, expansion, the end)
        resumable = (run_dir / MANIFEST).is_file()
        fail("interrupted" + (f"; resume with: sparring resume {run_dir}" if resumable
                              else " before anything was written"), EXIT_INTERRUPTED)
    counts = result.manifest.get("counts", {})
    click.echo(
        f"{result.status}: {counts.get('dialogues', 0)} dialogues ({counts.get('failed', 0)} failed), "
        f"{counts.get('pairs', 0)} preference pairs ({counts.get('verified_pairs', 0)} verified), "
        f"{counts.get('violation_rate', 0):.0%} flagged by the critic, average {counts.get('avg_turns', 0)} turns "
        f"-> {result.run_dir}")
    causes = result.manifest["runs"][-1].get("failure_causes") or []
    if causes:
        top = causes[0]
        click.echo(f"failed dialogues: {top['dialogues']} of {counts.get('failed', 0)} with {scrub(top['example'])}"
                   + (f" (and {len(causes) - 1} other cause(s): sparring trace {result.run_dir} --failed)"
                      if len(causes) > 1 else ""), err=True)
    if result.status == "interrupted":
        click.echo(f"resume with: sparring resume {result.run_dir}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.status == "failed":
        sys.exit(EXIT_STOPPED)
    if counts.get("failed"):
        sys.exit(EXIT_FAILURES)
