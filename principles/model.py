"""What a principle and a principle set are, and the combined ``Constitution`` a run uses.

A principle set file (built-in or the user's own) validates as a ``PrincipleSet``.
Several selected sets resolve into one ``Constitution``: ordered, de-duplicated,
with lookup by id and a record of where each principle was defined.
"""

from __future__ import annotations

import difflib
import fnmatch
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from sparring.errors import InputError

# A slug is lowercase words joined by '-'; a principle id is two or more slugs joined by '.'.
_SLUG = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_PRINCIPLE_ID = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+$")

BUILTIN_CATEGORIES = (
    "harmlessness",
    "honesty",
    "privacy",
    "fairness-and-bias",
    "helpfulness",
    "manipulation-and-autonomy",
    "legality-and-safety",
)
"""The categories of the shipped sets. User files may add their own."""


def _check_slug(value: str, what: str, example: str) -> str:
    if not _SLUG.match(value):
        raise PydanticCustomError(
            "slug", f"{what} must be lowercase letters and digits, words joined by '-', e.g. '{example}'")
    return value


class Principle(BaseModel):
    """One rule a critic can check a single conversational turn against."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str
    """Stable, globally unique id: ``<namespace>.<name>``, lowercase words joined by '-'
    (``privacy.no-doxxing``). Built-in ids are namespaced by their set and never reused."""
    category: str
    """What kind of harm or virtue it is about, e.g. ``privacy`` or ``fairness-and-bias``
    (see BUILTIN_CATEGORIES); a user file may name its own."""
    text: str = Field(min_length=1)
    """The principle itself, one or two sentences on what the speaker should do or avoid."""
    critique: str = ""
    """How a critic recognises a violation in one turn: what counts and what does not.
    Empty: the critic judges against ``text`` alone."""
    revision: str = ""
    """How a reviser rewrites a violating turn so it complies while keeping its intent,
    voice and context. Empty: the reviser works from ``text`` alone."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _PRINCIPLE_ID.match(value):
            raise PydanticCustomError(
                "principle_id",
                "a principle id is lowercase words joined by '-', in two or more parts joined by '.', "
                "e.g. 'privacy.no-doxxing'")
        return value

    @field_validator("category")
    @classmethod
    def _check_category(cls, value: str) -> str:
        return _check_slug(value, "a category", "fairness-and-bias")


class PrincipleSet(BaseModel):
    """A constitution file: a titled, ordered group of principles.

    After loading, ``principles`` holds the included principles too (own ones
    first, in file order, then the included ones in ``include`` order).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    id: str
    """Short name of the set, lowercase words joined by '-' (``privacy``). Built-in sets are
    selected by it; a user's file is selected by its path."""
    title: str = Field(min_length=1)
    """Human-readable name, shown by ``sparring principles sets``."""
    description: str = ""
    """What the set covers and when to pick it."""
    principles: list[Principle] = Field(default_factory=list)
    """The principles this set defines."""
    include: list[str] = Field(default_factory=list)
    """Ids of built-in principles to take into this set as they are, without redefining them."""

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        return _check_slug(value, "a set id", "privacy")

    @model_validator(mode="after")
    def _check_not_empty(self) -> PrincipleSet:
        if not self.principles and not self.include:
            raise PydanticCustomError(
                "empty_set", "a principle set needs at least one principle, under 'principles:' or 'include:'")
        return self

    def get(self, principle_id: str) -> Principle | None:
        return next((p for p in self.principles if p.id == principle_id), None)


@dataclass(frozen=True)
class Origin:
    """Where a principle was defined: for error messages and ``sparring principles show``."""

    source: str
    """Path of the file that defines it."""
    line: int | None
    """Line of its ``id:`` in that file."""
    set_id: str
    """Id of the set that defines it."""
    field: str = ""
    """Key path of its id in that file, e.g. ``principles[2].id``."""
    builtin: bool = False
    """True for a shipped set."""

    def same_place(self, other: Origin) -> bool:
        """True when both name one definition (one file reached by two spellings counts once)."""
        return (os.path.realpath(self.source), self.line) == (os.path.realpath(other.source), other.line)

    def __str__(self) -> str:
        at = f" line {self.line}" if self.line is not None else ""
        if self.builtin:
            return f"built-in set '{self.set_id}' ({Path(self.source).name}{at})"
        return f"{self.source}{at}"


def suggest(wanted: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` when a choice is close to ``wanted``, else an empty string."""
    close = difflib.get_close_matches(wanted, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass(frozen=True)
class Constitution:
    """The principles a run judges against: ordered, unique by id, looked up by id."""

    principles: tuple[Principle, ...]
    origins: Mapping[str, Origin] = field(default_factory=dict)
    """Where each principle (by id) was defined; may be empty for one built in code."""
    set_ids: tuple[str, ...] = ()
    """Ids of the sets it was built from, in selection order."""

    def __post_init__(self) -> None:
        index = {p.id: p for p in self.principles}
        if len(index) != len(self.principles):
            raise ValueError("a Constitution's principle ids must be unique")
        object.__setattr__(self, "_index", index)

    def __len__(self) -> int:
        return len(self.principles)

    def __iter__(self) -> Iterator[Principle]:
        return iter(self.principles)

    def __contains__(self, principle_id: object) -> bool:
        return principle_id in self._index  # type: ignore[attr-defined]

    def __getitem__(self, principle_id: str) -> Principle:
        return self._index[principle_id]  # type: ignore[attr-defined]

    def get(self, principle_id: str) -> Principle | None:
        return self._index.get(principle_id)  # type: ignore[attr-defined]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(p.id for p in self.principles)

    @property
    def categories(self) -> tuple[str, ...]:
        """Categories present, in order of first appearance."""
        return tuple(dict.fromkeys(p.category for p in self.principles))

    def select(self, wanted: Sequence[str], *, source: str | None = None,
               field_name: str | None = None, lines: Sequence[int | None] = ()) -> Constitution:
        """The sub-constitution of ``wanted`` ids, in that order, without repeats.

        An entry with ``*`` is a pattern (``privacy.*``). An id that is not here,
        or a pattern that matches nothing, is an InputError with a suggestion;
        ``source``/``field_name``/``lines`` say where the list was written.
        """
        chosen: dict[str, Principle] = {}
        for i, entry in enumerate(wanted):
            where: dict[str, Any] = {"source": source, "field": f"{field_name}[{i}]" if field_name else None,
                     "line": lines[i] if i < len(lines) else None}
            if "*" in entry:
                matches = [p for p in self.principles if fnmatch.fnmatchcase(p.id, entry)]
                if not matches:
                    raise InputError(f"pattern '{entry}' matches no principle id", **where)
            elif entry in self:
                matches = [self[entry]]
            else:
                raise InputError(f"unknown principle id '{entry}'{suggest(entry, self.ids)}", **where)
            chosen.update((p.id, p) for p in matches)
        return Constitution(tuple(chosen.values()),
                            {pid: o for pid, o in self.origins.items() if pid in chosen}, self.set_ids)

    def in_categories(self, categories: Sequence[str]) -> Constitution:
        """Only the principles of these categories; an unknown category is an InputError."""
        for category in categories:
            if category not in self.categories:
                raise InputError(f"no principle has category '{category}'{suggest(category, self.categories)}; "
                                 f"categories here: {', '.join(self.categories)}")
        kept = tuple(p for p in self.principles if p.category in categories)
        return Constitution(kept, {p.id: self.origins[p.id] for p in kept if p.id in self.origins}, self.set_ids)
