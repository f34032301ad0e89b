"""The run directory: append-only JSONL files (its manifest is graphs.runtime.manifest's).

Every record is one ``os.write`` of one whole line on an O_APPEND descriptor:
a killed process leaves at most a torn last line, never an interleaved one.
A dialogue's lines are written pairs first, dialogue last, so the dialogue
line is the commit marker: ``repair`` (run before a resume) drops a torn tail
and any pair or SFT line whose dialogue never got written.

A full disk: a write that fails leaves at most a torn tail, and the store writes
nothing after it (a later write that found space would follow the torn line); the
run stops with ``DiskFull``. ``RESERVE`` bytes set aside when the store opens are
given back then, so that the manifest can still say what happened.
"""

from __future__ import annotations

import errno
import json
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from sparring.errors import DiskFull, InputError
from sparring.traces import spanfile

DIALOGUES = "dialogues.jsonl"
PREFERENCES = "preferences.jsonl"
SFT = "sft.jsonl"
SCENARIOS = "scenarios.jsonl"
TRACES = spanfile.PLAIN
"""The span file of older runs; runs write TRACES_ZST (``traces.spanfile``). Read both with ``traces.read``."""
TRACES_ZST = spanfile.COMPRESSED
MANIFEST = "manifest.json"
CHECKPOINTS = "state.sqlite"
"""LangGraph checkpoints of unfinished dialogues; with ``workers: N`` worker i > 0 keeps its own
``state.<i>.sqlite`` (SQLite has one writer at a time per file)."""
REPORT = "report.html"
STATS = "stats.json"
CALIBRATION = "calibration.json"
"""The critic's figures on labelled turns (``sparring calibrate --out RUN_DIR``); the report shows them."""
RESERVE = ".reserve"
"""Space held while a run writes, freed for the manifest when the disk fills up."""
RESERVE_BYTES = 512 * 1024
ENGINE_LOG = "engine.log"
"""What the engine and the libraries printed during the run (graphs.runtime.engine_log), kept off the terminal."""
OWN_FILES = {*(DIALOGUES, PREFERENCES, SFT, SCENARIOS, TRACES, TRACES_ZST), RESERVE, ".lock", f".{MANIFEST}.tmp",
             f".{TRACES_ZST}.tmp", ENGINE_LOG}
"""What a run puts in its directory before its first manifest: a directory holding only these,
empty, is a run killed in its first moments, and a new run may use it."""
_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)

RECORD_FILES = (DIALOGUES, PREFERENCES, SFT, SCENARIOS)
"""Files this store appends to; the span file is written by the span sink (traces.sinks)."""


def iter_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    """Rows of a JSONL file; a torn last line (a killed writer) is skipped, not an error. A broken
    line before the last is: InputError naming the file and the line."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.endswith(b"\n"):
                return
            line = raw.strip()
            if not line:
                continue
            try:
                row = json.loads(line)
            except ValueError:
                row = None
            if not isinstance(row, dict):
                raise InputError("is not a JSON object on this line (edited or damaged; sparring writes whole "
                                 "lines only)", source=str(path), line=number)
            yield row


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
        self._broken: DiskFull | None = None

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._keep_reserve()
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
        """Append one already encoded line (newline included): what workers send. ``DiskFull``
        when the file system is full; nothing is written after that."""
        if self._broken is not None:
            raise self._broken
        fd = self._fds[name]
        # os.write may write less than asked only for huge buffers, signals or a full disk; loop.
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                view = view[written:]
        except OSError as exc:
            full = disk_full(exc, self.dir)
            if full is None:
                raise
            self._broken = full
            raise full from None

    def drop_reserve(self) -> None:
        (self.dir / RESERVE).unlink(missing_ok=True)

    def _keep_reserve(self) -> None:
        path = self.dir / RESERVE
        if path.exists() and path.stat().st_size >= RESERVE_BYTES:
            return
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            try:
                os.posix_fallocate(fd, 0, RESERVE_BYTES)
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                    raise
                os.pwrite(fd, bytes(RESERVE_BYTES), 0)  # a file system without fallocate
        except OSError as exc:
            full = disk_full(exc, self.dir)
            os.close(fd)
            path.unlink(missing_ok=True)
            if full is not None:
                raise full from None
            raise
        os.close(fd)

    # -- resume support ------------------------------------------------------------
    def check_lines(self) -> None:
        """InputError naming the file and line of a broken record line (one before the last: a torn
        last line is a kill's, and ``repair`` drops it). Run before anything else on a resume."""
        for name in RECORD_FILES:
            for _ in iter_jsonl(self.dir / name):
                pass

    def finished_ids(self) -> dict[str, str]:
        """Dialogue id -> status (``ok``/``failed``) of every dialogue already written."""
        return {row["id"]: row.get("status", "ok") for row in iter_jsonl(self.dir / DIALOGUES)}

    def repair(self) -> dict[str, int]:
        """Make the files consistent after a kill: drop torn tails, orphan pairs and SFT rows,
        and failed dialogue rows (they will be retried). Returns what was dropped, by file."""
        dropped: dict[str, int] = {}
        for name in (*RECORD_FILES, TRACES):
            dropped[name] = _truncate_torn_tail(self.dir / name)
        dropped[TRACES_ZST] = spanfile.repair(self.dir / TRACES_ZST)  # a torn span, a frame left open
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


def disk_full(exc: BaseException, where: Path) -> DiskFull | None:
    """``DiskFull`` when ``exc`` (or what caused it) says the file system is full or over quota."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, DiskFull):
            return seen
        if isinstance(seen, OSError) and seen.errno in _FULL:
            return DiskFull(f"{where}: no space left on the device ({seen.strerror})")
        if isinstance(seen, sqlite3.OperationalError) and "disk is full" in str(seen):
            return DiskFull(f"{where}: no space left on the device (SQLite: {seen})")
        seen = seen.__cause__ or seen.__context__
    return None


def failure_causes(run_dir: Path, top: int = 3) -> list[dict[str, Any]]:
    """The commonest causes of the failed dialogues in ``run_dir``, most frequent first: what a run
    whose backend died says about it. A cause is an error up to its second ': ' (its kind and what
    failed, without the details that differ between dialogues); ``example`` is one error in full."""
    causes: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for row in iter_jsonl(run_dir / DIALOGUES):
        if row.get("status") == "failed":
            error = str(row.get("error") or "unknown error")
            cause = ": ".join(error.split(": ", 2)[:2]).strip()
            causes[cause] += 1
            examples.setdefault(cause, error[:300])
    return [{"cause": cause, "dialogues": n, "example": examples[cause]} for cause, n in causes.most_common(top)]


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
