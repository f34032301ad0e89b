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
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver


class InlineSqliteSaver(SqliteSaver):
    """``SqliteSaver`` usable by an async graph; every call runs to completion on the caller's thread."""

    @classmethod
    def open(cls, path: str | Path) -> InlineSqliteSaver:
        saver = cls(sqlite3.connect(str(path), check_same_thread=False))
        saver.setup()  # tables, WAL mode
        saver.conn.execute("PRAGMA synchronous=NORMAL")
        return saver

    def close(self) -> None:
        self.conn.close()

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
