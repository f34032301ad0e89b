"""What every subcommand shares: the --set option, turning bad input into exit status 2, and printing
text that may quote a model, a file or a config (``say``)."""

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


def say(text: str, *, err: bool = False, nl: bool = True) -> None:
    """Print ``text`` for a person (stdout, or stderr with ``err``), its control characters shown, not
    obeyed (``sparring.terminal.visible``): it may quote a model, a file or a config value."""
    from sparring.terminal import visible

    click.echo(visible(text), err=err, nl=nl)


def fail(message: str, status: int) -> NoReturn:
    """``error: MESSAGE`` as one line on stderr, with anything secret in it masked and control characters
    shown as escapes; exit ``status``."""
    from sparring.redaction import scrub
    from sparring.terminal import visible

    click.echo(f"error: {' '.join(visible(scrub(message)).split())}", err=True)
    sys.exit(status)

