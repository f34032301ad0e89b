"""LangGraph checkpoints of unfinished dialogues in the run's state.sqlite, written on the event loop.

LangGraph's AsyncSqliteSaver goes through aiosqlite: every statement, cursor and
commit hops to aiosqlite's thread and back (about six round trips per saved
step), and that thread competes with the event loop for the GIL. Measured with
hundreds of dialogues in flight against the loopback server, that cost ~1.5 ms of
orchestrator CPU per model call, a third of the total (benchmarks/orchestration_overhead.py).

This saver is LangGraph's own synchronous ``SqliteSaver`` (same tables, same
file, same serializer) with its async methods calling the sync ones directly. A
saved step is two small INSERTs and a commit: tens of microseconds in WAL mode
with ``synchronous=NORMAL`` (no fsync per commit), less than one thread hop.
The price: the loop stalls while SQLite writes, which is short except when
SQLite folds its WAL back into the database (every ~1000 pages, a few ms).

``synchronous=NORMAL`` loses nothing when the process is killed; only power loss
or an OS crash could cost the last steps, which a resume redoes. The JSONL
records have the same guarantee (written, not fsynced).

Commits are grouped: on the event loop a write schedules one commit
``commit_interval_s`` later for everything written meanwhile (a commit per saved
step was a quarter of this saver's cost). A process killed in between loses at
most that interval of checkpoints: its dialogues resume from the step before,
and a resume redoes that step. Records are not at stake: they are in the JSONL
files, and a dialogue's checkpoints are deleted only after its record is written.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver


class InlineSqliteSaver(SqliteSaver):
    """``SqliteSaver`` usable by an async graph; every call runs to completion on the caller's thread."""

    commit_interval_s = 0.05
    """How long writes wait for the grouped commit (on an event loop; elsewhere each commits)."""

    def __init__(self, conn: sqlite3.Connection, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._commit_handle: asyncio.TimerHandle | None = None
        self._commit_failure: sqlite3.Error | None = None
        """A grouped commit that failed on the loop (a full disk): raised by the next write."""

    @classmethod
    def open(cls, path: str | Path) -> InlineSqliteSaver:
        saver = cls(sqlite3.connect(str(path), check_same_thread=False))
        saver.setup()  # tables, WAL mode
        saver.conn.execute("PRAGMA synchronous=NORMAL")
        return saver

    def close(self) -> None:
        self.flush()
        self.conn.close()

    def flush(self) -> None:
        """Commit what was written; a pending grouped commit is done now."""
        if self._commit_handle is not None:
            self._commit_handle.cancel()
            self._commit_handle = None
        with self.lock:
            self.conn.commit()

    @contextmanager
    def cursor(self, transaction: bool = True) -> Iterator[sqlite3.Cursor]:
        # SqliteSaver's cursor, except that a write transaction is committed by ``_commit_soon``.
        if self._commit_failure is not None:
            raise self._commit_failure
        with self.lock:
            self.setup()
            cur = self.conn.cursor()
            try:
                yield cur
            finally:
                cur.close()
        if transaction:
            self._commit_soon()

    def _commit_soon(self) -> None:
        if self._commit_handle is not None:
            return  # the commit already scheduled takes this write too
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside an event loop (a tool reading or cleaning up)
            self.flush()
            return
        self._commit_handle = loop.call_later(self.commit_interval_s, self._timed_flush)

    def _timed_flush(self) -> None:
        try:
            self.flush()
        except sqlite3.Error as exc:  # not in a loop callback's log: the next write raises it
            self._commit_failure = exc

    async def aget_tuple(self, config: Any) -> Any:
        return self.get_tuple(config)

    async def alist(self, config: Any, *, filter: dict[str, Any] | None = None, before: Any = None,
                    limit: int | None = None) -> AsyncIterator[Any]:
        for item in self.list(config, filter=filter, before=before, limit=limit):
            yield item

    async def aput(self, config: Any, checkpoint: Any, metadata: Any, new_versions: Any) -> Any:
        return self.put(config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config: Any, writes: Sequence[tuple[str, Any]], task_id: str,
                          task_path: str = "") -> None:
        self.put_writes(config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        self.delete_thread(thread_id)


def checkpoint_path(run_dir: Path, worker: int) -> Path:
    """Worker 0 (and a run without workers) uses state.sqlite; worker i > 0 its own state.<i>.sqlite."""
    return run_dir / ("state.sqlite" if worker == 0 else f"state.{worker}.sqlite")


def place_checkpoints(run_dir: Path, worker_of: dict[str, int], workers: int) -> dict[str, int]:
    """Move each unfinished dialogue's checkpoints into the file of the worker that will run it.

    A run resumed with another number of workers (or other dialogues left) finds its
    checkpoints spread over the files of the last attempt; a LangGraph saver reads one
    file. ``worker_of`` maps dialogue (thread) ids to workers; threads not in it (finished
    dialogues) go to worker 0's file, and files past the last worker are removed once empty.
    Rows are copied, then deleted at the source: a kill in between leaves a copy in both
    files, and the next placement copies again over it (same primary keys). Returns the
    number of threads moved into each file."""
    numbered = sorted((p for p in run_dir.glob("state.*.sqlite") if p.name.split(".")[1].isdigit()),
                      key=lambda p: int(p.name.split(".")[1]))
    sources = [p for p in [checkpoint_path(run_dir, 0), *numbered] if p.exists()]
    if workers == 1 and sources in ([], [checkpoint_path(run_dir, 0)]):
        return {}  # the usual case: one process, one file, nothing to move
    moved: dict[str, int] = {}
    for source in sources:
        conn = sqlite3.connect(str(source))
        try:
            tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            threads = set()
            if {"checkpoints", "writes"} <= tables:  # a file killed before its tables were made has none
                threads = {row[0] for row in conn.execute("SELECT thread_id FROM checkpoints UNION "
                                                          "SELECT thread_id FROM writes")}
            by_target: dict[int, list[str]] = {}
            for thread in threads:
                target = worker_of.get(thread, 0)
                if checkpoint_path(run_dir, target) != source:
                    by_target.setdefault(target, []).append(thread)
            for target, ids in sorted(by_target.items()):
                destination = checkpoint_path(run_dir, target)
                InlineSqliteSaver.open(destination).close()  # its tables exist before rows go in
                conn.execute("ATTACH DATABASE ? AS dst", (str(destination),))
                conn.execute("CREATE TEMP TABLE moving (thread_id TEXT PRIMARY KEY)")
                conn.executemany("INSERT INTO moving VALUES (?)", [(t,) for t in ids])
                for table in ("checkpoints", "writes"):
                    conn.execute(f"INSERT OR REPLACE INTO dst.{table} SELECT * FROM main.{table} "
                                 "WHERE thread_id IN (SELECT thread_id FROM moving)")
                conn.commit()
                for table in ("checkpoints", "writes"):
                    conn.execute(f"DELETE FROM main.{table} WHERE thread_id IN (SELECT thread_id FROM moving)")
                conn.execute("DROP TABLE moving")
                conn.commit()
                conn.execute("DETACH DATABASE dst")
                moved[destination.name] = moved.get(destination.name, 0) + len(ids)
        finally:
            conn.close()
        if source not in [checkpoint_path(run_dir, i) for i in range(workers)]:
            for leftover in (source, source.with_name(source.name + "-wal"), source.with_name(source.name + "-shm")):
                leftover.unlink(missing_ok=True)
    return moved
