"""Prompt templates: text files under ``diasynth_agents/prompts/`` with ``$placeholders``.

``string.Template`` rather than ``str.format`` because prompts quote JSON and
dialogue text whose braces must not be read as fields. Files are read on first
use, never at import.
"""

from __future__ import annotations

import string
from functools import lru_cache
from importlib import resources


@lru_cache(maxsize=None)
def template(name: str) -> string.Template:
    text = resources.files("diasynth_agents").joinpath("prompts", name).read_text(encoding="utf-8")
    return string.Template(text)


def render(name: str, **values: object) -> str:
    """The template ``name`` with every placeholder filled; a missing value raises KeyError."""
    return template(name).substitute({k: str(v) for k, v in values.items()}).strip()
