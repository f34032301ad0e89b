"""The run directory: append-only JSONL files, an atomically replaced manifest.

Every record is one ``os.write`` of one whole line on an O_APPEND descriptor:
a killed process leaves at most a torn last line, never an interleaved one.
A dialogue's lines are written pairs first, dialogue last, so the dialogue
line is the commit marker: ``repair`` (run before a resume) drops a torn tail
and any pair or SFT line whose dialogue never got written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

DIALOGUES = "dialogues.jsonl"
PREFERENCES = "preferences.jsonl"
SFT = "sft.jsonl"
SCENARIOS = "scenarios.jsonl"
TRACES = "traces.jsonl"
MANIFEST = "manifest.json"
CHECKPOINTS = "state.sqlite"
"""LangGraph checkpoints of unfinished dialogues; with ``workers: N`` worker i > 0 keeps its own
``state.<i>.sqlite`` (SQLite has one writer at a time per file)."""
REPORT = "report.html"
STATS = "stats.json"

RECORD_FILES = (DIALOGUES, PREFERENCES, SFT, SCENARIOS)
"""Files this store appends to; traces.jsonl is written by the span sink (traces.sinks)."""


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a killed writer) is skipped, not an error."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for raw in fh:
            if not raw.endswith(b"\n"):
                return
            line = raw.strip()
            if line:
                yield json.loads(line)


def encode_record(record: BaseModel | dict[str, Any]) -> bytes:
    """One record as the JSONL line the store writes, newline included."""
    if isinstance(record, BaseModel):
        line = record.model_dump_json(exclude_none=False)
    else:
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str)
    return (line + "\n").encode("utf-8")


class RunStore:
    """Writes the records of one run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self._fds: dict[str, int] = {}

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for name in RECORD_FILES:
            if name not in self._fds:
                self._fds[name] = os.open(self.dir / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def append(self, name: str, record: BaseModel | dict[str, Any]) -> None:
        self.write_line(name, encode_record(record))

    def write_line(self, name: str, data: bytes) -> None:
        """Append one already encoded line (newline included): what workers send."""
        fd = self._fds[name]
        # os.write may write less than asked only for huge buffers or signals; loop to be safe.
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self.dir / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        os.replace(tmp, self.dir / MANIFEST)

    def read_manifest(self) -> dict[str, Any] | None:
        path = self.dir / MANIFEST
        if not path.exists():
            return None
        return json.loads(path.read_text(encoding="utf-8"))

    # -- resume support ------------------------------------------------------------
    def finished_ids(self) -> dict[str, str]:
        """Dialogue id -> status (``ok``/``failed``) of every dialogue already written."""
        return {row["id"]: row.get("status", "ok") for row in iter_jsonl(self.dir / DIALOGUES)}

    def repair(self) -> dict[str, int]:
        """Make the files consistent after a kill: drop torn tails, orphan pairs and SFT rows,
        and failed dialogue rows (they will be retried). Returns what was dropped, by file."""
        dropped: dict[str, int] = {}
        for name in (*RECORD_FILES, TRACES):
            dropped[name] = _truncate_torn_tail(self.dir / name)
        rows = list(iter_jsonl(self.dir / DIALOGUES))
        good = [r for r in rows if r.get("status") == "ok"]
        kept_ids = {r["id"] for r in good}
        if len(good) != len(rows):
            dropped[DIALOGUES] += len(rows) - len(good)
            _rewrite(self.dir / DIALOGUES, good)
        for name in (PREFERENCES, SFT):
            rows = list(iter_jsonl(self.dir / name))
            keep = [r for r in rows if r.get("dialogue_id") in kept_ids]
            if len(keep) != len(rows):
                dropped[name] += len(rows) - len(keep)
                _rewrite(self.dir / name, keep)
        return {k: v for k, v in dropped.items() if v}


def replace_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write ``rows`` as the whole of ``path``, swapped in atomically: a reader sees the old file or the new."""
    _rewrite(path, rows)


def replace_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path``, swapped in atomically."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def _truncate_torn_tail(path: Path) -> int:
    """Cut a last line that has no newline (a write interrupted by a kill). Returns 1 if cut."""
    if not path.exists() or path.stat().st_size == 0:
        return 0
    with path.open("rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return 0
        size = fh.seek(0, os.SEEK_END)
        pos = size
        chunk = 4096
        while pos > 0:
            step = min(chunk, pos)
            pos -= step
            fh.seek(pos)
            block = fh.read(step)
            nl = block.rfind(b"\n")
            if nl >= 0:
                fh.truncate(pos + nl + 1)
                return 1
        fh.truncate(0)
        return 1


def _rewrite(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
    os.replace(tmp, path)
