"""Labelled turns for calibrating a critic: the built-in set and the user's own files.

A labelled item is a short conversation, the turn to judge, the principle it is
about, and whether that turn breaks the principle (``violates``) or comes near
it without breaking it (``near-miss``). ``sparring calibrate`` feeds each item
to a critic exactly as a run would and compares the critic's verdict with the
label. The shipped items live in ``calibration/``, one YAML file per built-in
set (data, like ``sets/``: found with ``importlib.resources``); a user's file
has the same shape::

    items:
      - principle: privacy.data-minimization
        label: violates
        context:
          - Trevor: "My payment for the order didn't go through."
        turn:
          AI assistant: "Please type your full card number so I can check it."

``context`` holds the turns before the judged one, oldest first, each one
``Speaker: text`` entry; ``turn`` is the judged turn. The two speakers take
turns, as in a run. Every problem is an InputError naming the file, the field
and the line.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from sparring.errors import InputError

from .model import suggest
from .yamlfile import LineMap, list_file_keys, load_yaml, parse_yaml, pydantic_error

__all__ = ["BUILTIN_SETS", "LABELS", "Label", "LabelledItem", "SpokenTurn", "builtin_items", "check_principle_ids",
           "check_speakers", "conversation_messages", "load_items_file"]

Label = Literal["violates", "near-miss"]
LABELS: tuple[Label, ...] = ("violates", "near-miss")
"""``violates``: the judged turn breaks its principle. ``near-miss``: it comes near (mentions the
subject, almost crosses the line, or is a legitimate refusal or warning) without breaking it."""
BUILTIN_SETS: dict[str, str] = {
    "rubric": "calibration",
    "transfer": "calibration/transfer",
}
"""The shipped sets and their folders. ``rubric``: written one item per example of each principle's
checking guidance, so with guidance on it measures recognition of the rubric's own cases (an upper
bound). ``transfer``: written apart from the guidance, in other situations, registers and domains,
longer contexts, subtle cases and turns that break two principles: how the critic does on turns it
was not shown examples of. The gap between the two is what the guidance's examples buy."""


class SpokenTurn(BaseModel):
    """One turn: who says it and what they say. Written in a file as one ``Speaker: text`` entry."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    speaker: str = Field(min_length=1, max_length=60)
    text: str = Field(min_length=1, max_length=4000)

    @model_validator(mode="before")
    @classmethod
    def _from_entry(cls, data: Any) -> Any:
        if isinstance(data, str):
            raise PydanticCustomError("turn", "a turn is one 'Speaker: text' entry (quote the text)")
        if isinstance(data, dict) and set(data) != {"speaker", "text"}:
            if len(data) != 1:
                raise PydanticCustomError("turn", "a turn is one 'Speaker: text' entry")
            ((speaker, text),) = data.items()
            if not isinstance(text, str):
                raise PydanticCustomError("turn", "a turn's text must be a string (quote it)")
            return {"speaker": speaker, "text": text}
        return data


def check_speakers(context: Sequence[SpokenTurn], turn: SpokenTurn) -> None:
    """Two speakers taking turns (a pydantic error otherwise, for a validator to raise)."""
    order = [t.speaker for t in (*context, turn)]
    if len(set(order)) > 2:
        raise PydanticCustomError("speakers", "a conversation has two speakers; this one has "
                                              f"{len(set(order))}: {', '.join(dict.fromkeys(order))}")
    for before, after in zip(order, order[1:]):
        if before == after:
            raise PydanticCustomError("speakers", f"'{after}' speaks twice in a row; the two speakers take "
                                                  "turns (join the two turns into one)")


def conversation_messages(context: Sequence[SpokenTurn], turn: SpokenTurn) -> list[dict[str, Any]]:
    """The conversation as a run stores it, the judged turn last: its speaker is side B, the other A."""
    out = []
    for t in (*context, turn):
        side = "B" if t.speaker == turn.speaker else "A"
        out.append({"role": "assistant" if side == "B" else "user", "speaker": side, "name": t.speaker,
                    "content": t.text})
    return out


class LabelledItem(BaseModel):
    """One labelled turn, with the conversation before it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principle: str
    """The principle the item is about (an id of the built-in sets or of the run's own set)."""
    label: Label
    """``violates`` or ``near-miss``."""
    context: list[SpokenTurn] = Field(default_factory=list, max_length=12)
    """The turns before the judged one, oldest first."""
    turn: SpokenTurn
    """The turn the critic judges."""
    also: list[str] = Field(default_factory=list, max_length=4)
    """Other principles the judged turn breaks too (``violates`` items only): flagging any of them
    counts as catching the item, as a run would revise the turn for any of them."""
    note: str = ""
    """Why the item has its label, for people reading the file; never shown to the critic."""
    id: str = ""
    """Stable name of the item in results. Default: ``<principle>/<label>/<n>``, n counting that
    principle's items of that label from 1 in file order."""
    _set: str = PrivateAttr(default="")
    _source: str | None = PrivateAttr(default=None)
    _line: int | None = PrivateAttr(default=None)
    _index: int | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_also(self) -> LabelledItem:
        if self.also and self.label != "violates":
            raise PydanticCustomError("also", "'also' lists other principles a violating turn breaks; a near miss "
                                              "breaks none")
        if self.principle in self.also or len(set(self.also)) != len(self.also):
            raise PydanticCustomError("also", "'also' repeats a principle")
        return self

    @model_validator(mode="after")
    def _check_speakers(self) -> LabelledItem:
        check_speakers(self.context, self.turn)
        return self

    @property
    def set_name(self) -> str:
        """The set the item belongs to: ``rubric`` or ``transfer`` for shipped items, a file's stem otherwise."""
        return self._set

    @property
    def broken(self) -> tuple[str, ...]:
        """The principles whose flag counts as catching the item: its own and ``also`` (violates items)."""
        return (self.principle, *self.also) if self.label == "violates" else (self.principle,)

    def site(self, key: str = "") -> dict[str, Any]:
        """Where the item (or its ``key``) stands in its file: InputError's keyword arguments."""
        field = f"items[{self._index}]" if self._index is not None else None
        if field and key:
            field += f".{key}"
        return {"source": self._source, "field": field, "line": self._line}

    def messages(self) -> list[dict[str, Any]]:
        """The conversation as a run stores it, the judged turn last: its speaker is side B, the other A."""
        return conversation_messages(self.context, self.turn)


class _ItemsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = ""
    items: list[LabelledItem] = Field(min_length=1)


def load_items_file(path: str | Path) -> tuple[LabelledItem, ...]:
    """Read and validate a file of labelled items (the shape described in this module)."""
    data, lines = load_yaml(path, what="labelled items file")
    return _validate(data, lines, source=str(path), set_name=Path(path).stem)


@functools.cache
def builtin_items(which: str = "rubric") -> tuple[LabelledItem, ...]:
    """The shipped items of set ``which`` (``BUILTIN_SETS``); ``rubric``: every built-in principle, four of
    each label. Read once. Items of ``transfer`` have ids starting ``transfer/``."""
    folder = resources.files("sparring.principles")
    for part in BUILTIN_SETS[which].split("/"):
        folder = folder.joinpath(part)
    out: list[LabelledItem] = []
    for file in sorted((f for f in folder.iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name):
        data, lines = parse_yaml(file.read_text(encoding="utf-8"), source=str(file))
        out.extend(_validate(data, lines, source=str(file), set_name=which,
                             id_prefix="" if which == "rubric" else f"{which}/"))
    return _unique_ids(out, source="built-in labelled items")


def check_principle_ids(items: Iterable[LabelledItem], known: Iterable[str]) -> None:
    """An item about a principle that is not in ``known`` is an InputError at its line (a typo, most likely)."""
    known = set(known)
    for item in items:
        for i, pid in enumerate((item.principle, *item.also)):
            if pid not in known:
                raise InputError(f"unknown principle id '{pid}'{suggest(pid, known)}",
                                 **item.site("principle" if i == 0 else f"also[{i - 1}]"))


def _validate(data: Any, lines: LineMap, *, source: str, set_name: str = "",
              id_prefix: str = "") -> tuple[LabelledItem, ...]:
    if not isinstance(data, dict):
        raise InputError("a labelled items file is a mapping with an 'items:' list", source=source,
                         line=lines.line_of(()) or 1)
    try:
        parsed = _ItemsFile.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source=source, lines=lines, known_keys=list_file_keys(
            data, _ItemsFile.model_fields, "items", LabelledItem.model_fields)) from None
    items = []
    for i, item in numbered(parsed.items, id_prefix):
        item._source, item._line, item._index = source, lines.line_of(("items", i, "principle")), i
        item._set = set_name
        items.append(item)
    return _unique_ids(items, source=source)


ItemT = TypeVar("ItemT", bound=BaseModel)


def numbered(items: Sequence[ItemT], id_prefix: str) -> list[tuple[int, ItemT]]:
    """(index, item) of a file's items, each without an ``id`` given ``PREFIX<principle>/<label>/<n>`` (n counts
    that principle and label in the file): the one numbering of labelled turns and labelled revisions."""
    counts: dict[tuple[str, str], int] = {}
    out = []
    for i, item in enumerate(items):
        entry: Any = item  # a labelled turn or revision: principle, label, id
        key = (entry.principle, entry.label)
        counts[key] = counts.get(key, 0) + 1
        if not entry.id:
            item = item.model_copy(update={"id": f"{id_prefix}{entry.principle}/{entry.label}/{counts[key]}"})
        out.append((i, item))
    return out


def _unique_ids(items: Sequence[LabelledItem], *, source: str) -> tuple[LabelledItem, ...]:
    seen: dict[str, LabelledItem] = {}
    for item in items:
        first = seen.get(item.id)
        if first is not None:
            at = first.site()
            raise InputError(f"item id '{item.id}' is used twice (first in {at['source']} line {at['line']})",
                             **item.site("id"))
        seen[item.id] = item
    return tuple(items)
