"""What every subcommand shares: the --set option and turning bad input into exit status 2."""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

set_option = click.option(
    "--set", "overrides", multiple=True, metavar="KEY=VALUE",
    help="Override a config key, e.g. --set backend.max_in_flight=8 (value parsed as YAML). Repeatable.")


def user_errors(func: F) -> F:
    """Bad input -> one line on stderr and exit 2, never a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sparring.errors import InputError

        try:
            return func(*args, **kwargs)
        except InputError as exc:
            fail(str(exc), 2)

    return wrapper  # type: ignore[return-value]


def fail(message: str, status: int) -> NoReturn:
    """``error: MESSAGE`` as one line on stderr, with anything secret in it masked; exit ``status``."""
    from sparring.redaction import scrub

    click.echo(f"error: {' '.join(scrub(message).split())}", err=True)
    sys.exit(status)

