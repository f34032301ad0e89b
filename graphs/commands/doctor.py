"""``sparring doctor [CONFIG]``."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import click

from ._common import say, set_option, user_errors


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@set_option
@user_errors
def doctor(config: Path | None, overrides: tuple[str, ...]) -> None:
    """Check every backend the config uses (the embedded model when no CONFIG): reachable,
    model, structured-output support, latency of one probe call."""
    from rich.console import Console
    from rich.table import Table

    from sparring.graphs.commands.diagnosis import diagnose
    from sparring.graphs.roles import backends_in_use, role_backends
    from sparring.graphs.run_config import load_config
    from sparring.terminal import visible_data

    cfg = load_config(config, overrides)
    roles = role_backends(cfg)
    console = Console()
    failures = []
    for name, backend in backends_in_use(cfg).items():
        label = f"backends.{name}" if cfg.backends else "backend"
        if cfg.backends:
            console.print(f"[bold]{label}[/] (roles: {', '.join(r for r, on in roles.items() if on == name)})")
        with console.status(f"probing {label} ({backend.kind})..."):
            report = asyncio.run(diagnose(backend))
        table = Table(show_header=False, box=None, pad_edge=False)
        for check, result in visible_data(report.rows, markup=True):
            table.add_row(f"[bold]{check}[/]", result)
        console.print(table)
        if not report.ok:
            failures.append(f"{label}: {report.failure}" if cfg.backends else str(report.failure))
    if failures:
        say(f"doctor: FAILED: {'; '.join(failures)}", err=True)
        sys.exit(1)
    console.print("[green]ok[/]")
