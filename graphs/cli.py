"""The ``sparring`` command. Imports only click at start-up; each command imports what it needs."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config key, e.g. --set backend.max_in_flight=8 (value parsed as YAML). Repeatable.")


def _user_errors(func: F) -> F:
    """Bad input -> one line on stderr and exit 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from principles.yamlfile import InputError

        try:
            return func(*args, **kwargs)
        except InputError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sparring")
def main() -> None:
    """Multi-agent self-play: persona dialogues, constitutional critique-and-revision
    preference pairs for TRL, and a trace of every agent turn."""


@main.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@set_option
@_user_errors
def doctor(config: Path | None, overrides: tuple[str, ...]) -> None:
    """Check the configured backend (the embedded model when no CONFIG): reachable,
    model, structured-output support, latency of one probe call."""
    from rich.console import Console
    from rich.table import Table

    from graphs.config import load_config

    from .doctor import diagnose

    cfg = load_config(config, overrides)
    console = Console(stderr=False)
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
