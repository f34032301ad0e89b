"""Word-level differences between a rejected turn and its revision, as two marked-up HTML strings."""

from __future__ import annotations

import difflib
import re
from html import escape

# Words, runs of whitespace, and single punctuation marks: whitespace stays its own
# token so a reflowed sentence does not mark every word as changed.
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)


def word_diff(before: str, after: str) -> tuple[str, str]:
    """(``before`` with removed words in ``<del>``, ``after`` with added words in ``<ins>``), HTML-escaped."""
    a, b = _TOKEN.findall(before), _TOKEN.findall(after)
    left: list[str] = []
    right: list[str] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        old, new = escape("".join(a[i1:i2])), escape("".join(b[j1:j2]))
        if op == "equal":
            left.append(old)
            right.append(new)
            continue
        if i2 > i1:
            left.append(f"<del>{old}</del>")
        if j2 > j1:
            right.append(f"<ins>{new}</ins>")
    return "".join(left), "".join(right)
