"""``sparring report RUN_DIR``: the run's self-contained HTML report (also written at the end of every run)."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import say, user_errors


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the report here (default: RUN_DIR/report.html).")
@user_errors
def report(run_dir: Path, out: Path | None) -> None:
    """Write RUN_DIR's HTML report: run summary, charts (violation rate per principle and per
    category, turns per dialogue, tokens per turn, latency per agent role) and every dialogue with
    its critique, rejected and chosen turns side by side, and its trace. Opens offline."""
    from sparring.errors import InputError
    from sparring.graphs.runtime.reporting import write_report
    from sparring.graphs.runtime.runlock import RunDirLock
    from sparring.graphs.runtime.store import MANIFEST

    if not (run_dir / MANIFEST).is_file():
        raise InputError("holds no manifest.json: not a sparring run directory", source=str(run_dir))
    with RunDirLock(run_dir):  # no run or other command writes the directory meanwhile
        say(str(write_report(run_dir, out)))
