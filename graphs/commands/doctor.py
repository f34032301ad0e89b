"""``sparring doctor [CONFIG]``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ._common import set_option, user_errors


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@set_option
@user_errors
def doctor(config: Path | None, overrides: tuple[str, ...]) -> None:
    """Check the configured backend (the embedded model when no CONFIG): reachable,
    model, structured-output support, latency of one probe call."""
    from rich.console import Console
    from rich.table import Table

    from sparring.graphs.config import load_config
    from sparring.graphs.doctor import diagnose

    cfg = load_config(config, overrides)
    console = Console()
    with console.status(f"probing the {cfg.backend.kind} backend..."):
        report = asyncio.run(diagnose(cfg.backend))
    table = Table(show_header=False, box=None, pad_edge=False)
    for check, result in report.rows:
        table.add_row(f"[bold]{check}[/]", result)
    console.print(table)
    if not report.ok:
        click.echo(f"doctor: FAILED: {report.failure}", err=True)
        sys.exit(1)
    console.print("[green]ok[/]")
