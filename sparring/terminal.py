"""Text that sparring prints to a terminal stays data: one home for it.

Model replies (a red-teamed target is asked to misbehave), file content and config values may hold
bytes a terminal obeys instead of showing: an escape sequence (an OSC title or clipboard write, an
OSC 8 hyperlink, cursor movement), a bell, a C1 control (U+009B is a CSI on its own), or a
bidirectional override that makes a line read differently from what it holds. Everything printed
for a person goes through ``visible``, which writes each such character as its escape (``\\x1b``,
``\\x9b``, ``\\u202e``), so the sequence it started is shown, not run. Newline and tab stay.

JSON on the terminal (``--json``) keeps the exact text: ``dumps`` writes those characters as JSON
``\\uXXXX`` escapes, which a JSON reader decodes back to the same string. Files are never touched.

Example::

    from sparring.terminal import visible

    visible("hi\\x1b]52;c;ZXZpbA==\\x07")   # 'hi\\\\x1b]52;c;ZXZpbA==\\\\x07'
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["UNSAFE", "dumps", "visible", "visible_data"]

UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
"""What a terminal may act on: C0 but newline and tab, DEL, C1, and the bidirectional embedding,
override and isolate characters (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI). ESC is in C0, so
every escape sequence loses the byte that starts it."""


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(text: str) -> str:
    """``text`` with every character of ``UNSAFE`` written as its Python-style escape."""
    return UNSAFE.sub(_escape, text)


def visible_data(data: Any, *, markup: bool = False) -> Any:
    """``data`` (dicts, lists, tuples, strings, other values as they are) with ``visible`` applied to every
    string, keys included. ``markup=True`` also escapes rich's ``[...]`` markup, for data printed
    through a rich console (a ``[link=...]`` in a model's text stays text)."""
    if isinstance(data, str):
        text = visible(data)
        if markup:
            from rich.markup import escape

            text = escape(text)
        return text
    if isinstance(data, dict):
        return {visible_data(k, markup=markup): visible_data(v, markup=markup) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return type(data)(visible_data(v, markup=markup) for v in data)
    return data


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def dumps(data: Any, *, indent: int | None = 2) -> str:
    """``data`` as JSON for a terminal: non-ASCII text as it is, but every ``UNSAFE`` character as a JSON
    ``\\uXXXX`` escape (``json.loads`` gives back the exact text). Outside strings JSON has no such
    character, so the escapes land inside strings only."""
    text = json.dumps(data, ensure_ascii=False, indent=indent, default=str)
    return UNSAFE.sub(_json_escape, text)
