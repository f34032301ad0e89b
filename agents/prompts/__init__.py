"""Prompt templates live here as files, one per role and mode, not as strings in code.

Templates use ``string.Template`` syntax (``$name`` / ``${name}``) so JSON
braces in them need no escaping. Files are read once, on first use.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from string import Template


@lru_cache(maxsize=128)
def template_in(package: str, filename: str) -> Template:
    """The template file ``filename`` of ``package`` (any package that keeps prompt files), read once."""
    return Template(resources.files(package).joinpath(filename).read_text(encoding="utf-8"))


def render_in(package: str, filename: str, /, **values: object) -> str:
    """Fill a template file of ``package``; a missing value is a bug, so it raises KeyError."""
    return template_in(package, filename).substitute(
        {k: "" if v is None else str(v) for k, v in values.items()}).strip()


def render(template_name: str, /, **values: object) -> str:
    """Fill this package's template ``<template_name>.txt``."""
    return render_in(__package__, f"{template_name}.txt", **values)
