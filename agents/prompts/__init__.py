"""Prompt templates live here as files, one per role and mode, not as strings in code.

Templates use ``string.Template`` syntax (``$name`` / ``${name}``) so JSON
braces in them need no escaping. Files are read once, on first use.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from string import Template


@lru_cache(maxsize=64)
def template(name: str) -> Template:
    text = resources.files(__package__).joinpath(f"{name}.txt").read_text(encoding="utf-8")
    return Template(text)


def render(template_name: str, /, **values: object) -> str:
    """Fill template ``template_name`` (file ``<template_name>.txt``); a missing value is a bug, so it raises KeyError."""
    return template(template_name).substitute({k: "" if v is None else str(v) for k, v in values.items()}).strip()
