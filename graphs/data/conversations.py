"""Conversations from data that is not a sparring run, for ``sparring stats`` and ``--compare``.

What can be read (each conversation becomes a row ``{"status": "ok", "messages": [...]}``
with ``speaker`` and ``content`` per turn, the shape a run's dialogues have, so the
same figures apply):

- a JSON Lines file (``.jsonl``) or a JSON file (``.json``: an array of rows, an
  object with one list of rows, or an object of rows keyed by id), or a Parquet file;
- a folder: a ``datasets`` folder written by ``Dataset.save_to_disk`` (read with
  ``datasets.load_from_disk``; of a ``DatasetDict``, every split), else the
  ``.parquet``, ``.jsonl`` and ``.json`` files in it, in name order (the files
  ``datasets.load_dataset`` would read);

and in each row the conversation is found in

- ``messages``: TRL's / OpenAI's chat format, ``[{"role", "content"}]`` (content a
  string or a list of ``{"type": "text", "text"}`` parts); ``system`` turns are not
  counted as turns of the conversation. A turn may also be a list of the messages one
  sender sent in a row, ``[{"text", "sender"}]`` (as the Chit-Chat Challenge dataset,
  pip package ``chitchat-dataset``, publishes it): one turn, its texts one per line;
- ``conversations``: ShareGPT's ``[{"from", "value"}]``;
- a text column (``--text-column``, default ``dialogue``) of ``Speaker: text`` lines,
  as DialogSum (``#Person1#: ...``) and SAMSum (``Amanda: ...``) publish them; a line
  without a speaker continues the turn before it.

Anything else is an InputError naming the file, the row and the field.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sparring.errors import InputError

from .rundata import Row

__all__ = ["DEFAULT_TEXT_COLUMN", "read_conversations", "speaker_lines"]

DEFAULT_TEXT_COLUMN = "dialogue"
_SPEAKER = re.compile(r"^\s*(#[^#\n]{1,40}#|[^:\n]{1,40}?)\s*:\s*(.*)$")
_FILES = (".parquet", ".jsonl", ".json")


def speaker_lines(text: str) -> list[dict[str, str]]:
    """``Speaker: text`` lines as turns (``#Person1#`` keeps its marks); a line without a speaker
    (or the text before the first one) continues the turn before it."""
    turns: list[dict[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        match = _SPEAKER.match(line)
        if match and match.group(2).strip():
            turns.append({"speaker": match.group(1).strip(), "content": match.group(2).strip()})
        elif turns:
            turns[-1]["content"] += "\n" + line.strip()
        else:
            turns.append({"speaker": "?", "content": line.strip()})
    return turns


def _content(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return "\n".join(str(p.get("text", "")) for p in value if p.get("type", "text") == "text")
    return None


def _grouped_turn(group: list[Any]) -> dict[str, str] | None:
    """A turn written as the messages one sender sent in a row (``[{"text", "sender"}, ...]``)."""
    if not group or not all(isinstance(m, dict) and isinstance(m.get("text"), str) for m in group):
        return None
    return {"speaker": str(group[0].get("sender", "?")), "content": "\n".join(m["text"] for m in group)}


def _chat_turns(turns: Any, role_key: str, content_key: str, where: dict[str, Any]) -> list[dict[str, str]]:
    if not isinstance(turns, list) or not turns:
        raise InputError("must be a non-empty list of turns", **where)
    out = []
    for i, turn in enumerate(turns):
        if isinstance(turn, list):
            grouped = _grouped_turn(turn)
            if grouped is None:
                raise InputError(f"turn {i} is a list: it must hold messages with a string 'text'", **where)
            out.append(grouped)
            continue
        content = _content(turn.get(content_key)) if isinstance(turn, dict) else None
        if content is None or not isinstance(turn.get(role_key), str):
            raise InputError(f"turn {i} needs a string '{role_key}' and a text '{content_key}'", **where)
        if turn[role_key] != "system":
            out.append({"speaker": str(turn.get("name") or turn[role_key]), "content": content})
    return out


def _at(where: dict[str, Any], key: str) -> dict[str, Any]:
    return {**where, "field": f"{where['field']}.{key}" if where.get("field") else key}


def _conversation(row: Any, text_column: str, where: dict[str, Any]) -> Row:
    if not isinstance(row, dict):
        raise InputError("a row must be an object", **where)
    if "messages" in row:
        turns = _chat_turns(row["messages"], "role", "content", _at(where, "messages"))
    elif "conversations" in row:
        turns = _chat_turns(row["conversations"], "from", "value", _at(where, "conversations"))
    elif isinstance(row.get(text_column), str):
        turns = speaker_lines(row[text_column])
    else:
        keys = ", ".join(sorted(map(str, row))[:8]) or "none"
        raise InputError(f"no conversation: needs 'messages' (chat format), 'conversations' (ShareGPT) or a text "
                         f"column '{text_column}' of 'Speaker: text' lines (--text-column); its keys: {keys}",
                         **where)
    return {"status": "ok", "messages": turns}


def _json_rows(path: Path) -> Iterator[tuple[Any, int | None]]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if line.strip():
                    try:
                        yield json.loads(line), number
                    except json.JSONDecodeError as exc:
                        raise InputError(f"is not JSON ({exc.msg})", source=str(path), line=number) from None
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"is not JSON ({exc.msg})", source=str(path), line=exc.lineno) from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if data and all(isinstance(v, dict) for v in data.values()):
            data = list(data.values())  # rows keyed by their id
        elif len(lists) == 1:
            data = lists[0]
        else:
            raise InputError("a JSON file holds an array of rows, an object with one list of rows, or an object "
                             "of rows keyed by id", source=str(path))
    if not isinstance(data, list):
        raise InputError("a JSON file holds an array of rows", source=str(path))
    yield from ((row, None) for row in data)


def _parquet_rows(path: Path) -> Iterator[tuple[Any, int | None]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several kinds for a file that is not Parquet
        raise InputError(f"cannot be read as Parquet ({type(exc).__name__}: {exc})", source=str(path)) from None
    yield from ((row, None) for row in table.to_pylist())


def _saved_dataset_rows(folder: Path) -> Iterator[tuple[Any, int | None]]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(folder))
    except Exception as exc:  # datasets raises FileNotFoundError, ValueError... for a damaged folder
        raise InputError(f"cannot be read with datasets.load_from_disk ({type(exc).__name__}: {exc})",
                         source=str(folder)) from None
    splits = [loaded[name] for name in loaded] if isinstance(loaded, datasets.DatasetDict) else [loaded]
    for split in splits:
        yield from ((row, None) for row in split)


def _rows_of(path: Path) -> Iterator[tuple[str, Any, int | None]]:
    if path.is_dir():
        if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
            yield from ((str(path), row, line) for row, line in _saved_dataset_rows(path))
            return
        files = sorted(f for f in path.iterdir() if f.suffix in _FILES and f.is_file())
        if not files:
            raise InputError("is neither a sparring run directory (no manifest.json), a datasets folder "
                             "(save_to_disk) nor a folder of .parquet/.jsonl/.json files", source=str(path))
        for file in files:
            yield from _rows_of(file)
        return
    if path.suffix not in _FILES:
        raise InputError(f"reads .jsonl, .json and .parquet files and folders, not '{path.suffix or path.name}'",
                         source=str(path))
    rows = _parquet_rows(path) if path.suffix == ".parquet" else _json_rows(path)
    yield from ((str(path), row, line) for row, line in rows)


def read_conversations(path: Path, *, text_column: str = DEFAULT_TEXT_COLUMN, limit: int | None = None
                       ) -> list[Row]:
    """The conversations of ``path`` (see the module), at most ``limit`` (the first ones) when given."""
    path = Path(path)
    if not path.exists():
        raise InputError("does not exist", source=str(path))
    out: list[Row] = []
    for index, (source, row, line) in enumerate(_rows_of(path)):
        if limit is not None and len(out) >= limit:
            break
        out.append(_conversation(row, text_column, {"source": source, "field": None if line else f"row {index}",
                                                    "line": line}))
    if not out:
        raise InputError("holds no conversation", source=str(path))
    return out
