"""Behaviour lists as red-team goals (``dialogue.behaviours``, ``sparring run --behaviours FILE``).

Three formats, told apart by the first line:

- HarmBench's behaviour CSV as published: columns ``Behavior, FunctionalCategory, SemanticCategory,
  Tags, ContextString, BehaviorID`` (any order, more columns allowed); the id is ``BehaviorID``, the
  category ``SemanticCategory``, a contextual behaviour keeps its ``ContextString``.
- JailbreakBench's CSV: ``Index, Goal, Target, Behavior, Category, Source`` (a leading unnamed index
  column, as pandas writes it, is allowed); the id is ``jbb-<Index>``, the category ``Category``.
- Anything else: one goal per line (blank lines and lines starting with ``#`` skipped), id ``line-N``.

A bad file is one line naming the file, line and column (InputError: exit 2).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sparring.agents.domain import Behaviour
from sparring.errors import InputError

__all__ = ["HARMBENCH_COLUMNS", "JAILBREAKBENCH_COLUMNS", "read_behaviours"]

HARMBENCH_COLUMNS = ("Behavior", "FunctionalCategory", "SemanticCategory", "Tags", "ContextString", "BehaviorID")
JAILBREAKBENCH_COLUMNS = ("Index", "Goal", "Target", "Behavior", "Category", "Source")
_MAX_GOAL = 20_000


def read_behaviours(path: Path) -> tuple[Behaviour, ...]:
    """The behaviours of ``path``, in file order."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"{path}: behaviours file not found") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the behaviours file ({exc.strerror})") from None
    first = text.split("\n", 1)[0]
    header = [c.strip() for c in next(csv.reader([first]), [])]
    if set(HARMBENCH_COLUMNS) <= set(header):
        found = _from_csv(path, text, "harmbench")
    elif set(JAILBREAKBENCH_COLUMNS) <= set(header):
        found = _from_csv(path, text, "jailbreakbench")
    else:
        found = _from_lines(path, text)
    if not found:
        raise InputError(f"{path}: no behaviours in the file")
    seen: dict[str, int] = {}
    for line, b in found:
        if b.id in seen:
            raise InputError(f"{path}:{line}:1: behaviour id {b.id!r} is given twice (first on line {seen[b.id]})")
        seen[b.id] = line
    return tuple(b for _, b in found)


def _from_lines(path: Path, text: str) -> list[tuple[int, Behaviour]]:
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        goal = line.strip()
        if not goal or goal.startswith("#"):
            continue
        if len(goal) > _MAX_GOAL:
            raise InputError(f"{path}:{number}:1: a goal of {len(goal)} characters (at most {_MAX_GOAL})")
        out.append((number, Behaviour(id=f"line-{number}", goal=goal, source="lines")))
    return out


def _from_csv(path: Path, text: str, source: str) -> list[tuple[int, Behaviour]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [c.strip() for c in next(reader)]
    out: list[tuple[int, Behaviour]] = []
    number = reader.line_num + 1
    try:
        for row in reader:
            _add_row(path, row, number, header, source, out)
            number = reader.line_num + 1
    except csv.Error as exc:
        raise InputError(f"{path}:{reader.line_num}:1: not valid CSV ({exc})") from None
    return out


def _add_row(path: Path, row: list[str], number: int, header: list[str], source: str,
             out: list[tuple[int, Behaviour]]) -> None:
    """Append the behaviour of one CSV row (``number``: its first line); a blank row is skipped."""
    col = {name: i for i, name in enumerate(header)}
    goal_col, id_col, cat_col = (("Behavior", "BehaviorID", "SemanticCategory") if source == "harmbench"
                                 else ("Goal", "Index", "Category"))
    if not any(cell.strip() for cell in row):
        return
    if len(row) != len(header):
        raise InputError(f"{path}:{number}:1: {len(row)} columns, the header has {len(header)}")
    goal, raw_id, category = (row[col[goal_col]].strip(), row[col[id_col]].strip(), row[col[cat_col]].strip())
    for name, value in ((goal_col, goal), (id_col, raw_id)):
        if not value:
            raise InputError(f"{path}:{number}:{col[name] + 1}: column {name} is empty")
    context = row[col["ContextString"]].strip() if source == "harmbench" else ""
    out.append((number, Behaviour(id=raw_id if source == "harmbench" else f"jbb-{raw_id}", goal=goal,
                                  category=category or "uncategorized", context=context or None, source=source)))
