"""``workers: N``: one run's dialogues shared out among N forked processes.

One Python process runs ~500 model calls a second (about 1.8 ms of CPU per call:
LangGraph steps, the HTTP client, spans; benchmarks/orchestration_overhead.py). At
that rate its event loop is ~90% busy and replies wait their turn, so a server that
could answer faster waits on the orchestrator instead. Workers are forked from the
process the user started (the parent) once the run is planned and its directory
open: they start in milliseconds, with everything already imported.

Who does what:

- each worker runs every N-th of the dialogues left (the shares differ by at most
  one), with its share of ``concurrency`` and of each backend's ``max_in_flight``, its own
  HTTP client and its own checkpoint file (SQLite lets one process write a file at a
  time; ``place_checkpoints`` moves checkpoints when a resume shares out differently);
- the parent writes everything. Workers send records, spans and usage over a socket,
  batched every ``_worker_process.FLUSH_INTERVAL_S``, and the parent appends them to the run's files:
  one writer keeps the single-process guarantees (whole lines, a dialogue's line last,
  nothing twice);
- the parent stops the workers (a signal, ``--max-failures``, a worker's error) with a
  message; they cancel their dialogues (checkpoints kept) and send what is left. A
  worker whose parent dies is killed by the kernel (Linux ``PR_SET_PDEATHSIG``), or
  exits when its socket closes.

A record a worker sent that the parent had not written when it was killed is not
lost: its dialogue has no line in dialogues.jsonl, so a resume runs it again.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import pickle
import signal
import socket
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sparring.agents.backends.base import UsageMeter
from sparring.agents.domain import DialogueJob
from sparring.errors import DiskFull, TooManyFailures, WorkerError
from sparring.traces.sinks import JsonlSpanSink

from ._worker_process import HEADER, STOP, WorkerContext, share, worker_main
from .checkpoints import place_checkpoints
from .runner import RunCounters
from .store import RunStore, disk_full

log = logging.getLogger(__name__)

__all__ = ["WorkerContext", "WorkerPool", "assign_workers", "share"]

STOP_GRACE_S = 30.0
"""How long stopped workers get to cancel their dialogues and send the rest before SIGKILL."""


def assign_workers(jobs: Iterable[DialogueJob], finished: dict[str, str], workers: int) -> tuple[dict[str, int], int]:
    """Dialogue id -> worker for every dialogue still to run (round robin in job order, the copies of one
    attack on several targets on one worker, which plans it once), and how many are done already."""
    worker_of: dict[str, int] = {}
    attack_of: dict[str, int] = {}
    skipped = 0
    for job in jobs:
        if finished.get(job.id) == "ok":
            skipped += 1
        else:
            worker_of[job.id] = attack_of.setdefault(job.attack_id, len(attack_of) % workers)
    return worker_of, skipped


@dataclass
class WorkerPool:
    """The parent's side: forks the workers, writes what they send, stops them. Stands in for a
    ``DialogueRunner`` in the pipeline (same ``run``, ``stop`` and ``counters``)."""

    context: WorkerContext
    workers: int
    store: RunStore
    spans: JsonlSpanSink
    meter: UsageMeter | None = None
    """The run's meter; the workers' usage is added to it as it comes."""
    max_failures: int | None = None
    on_record: Callable[[Any, list[Any]], None] | None = None
    on_started: Callable[[list[int]], None] | None = None
    """Called with the workers' process ids once they run."""
    counters: RunCounters = field(default_factory=RunCounters)
    pids: list[int] = field(default_factory=list)
    structured: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    """Worker -> backend name -> the structured-output decision that backend settled on (sent when it ends)."""
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)
    _failure: BaseException | None = None
    _stopping: bool = False
    _told: set[int] = field(default_factory=set)
    _usage: dict[int, tuple[int, int, int]] = field(default_factory=dict)
    _warned: set[str] = field(default_factory=set)

    def stop(self) -> None:
        """Start no new dialogue (the caller then cancels ``run``, which stops the workers)."""
        self._request_stop()

    def backend_state(self, name: str) -> dict[str, Any]:
        """What the workers' backend ``name`` settled on, for its manifest entry."""
        decisions = [self.structured[i][name] for i in sorted(self.structured) if name in self.structured[i]]
        modes = sorted({d["mode"] for d in decisions})
        return {"structured_output": " / ".join(modes) if modes else "auto (not probed yet)",
                "structured_output_decision": decisions[0] if len(decisions) == 1 else None,
                "structured_output_by_worker": decisions}

    async def run(self, jobs: Iterable[DialogueJob], finished: dict[str, str] | None = None) -> RunCounters:
        worker_of, self.counters.skipped = assign_workers(jobs, finished or {}, self.workers)
        place_checkpoints(self.context.run_dir, worker_of, self.workers)
        socks = self._fork(worker_of)
        if self.on_started is not None:
            self.on_started(list(self.pids))
        pumps = []
        for index, sock in enumerate(socks):
            reader, writer = await asyncio.open_connection(sock=sock)
            self._writers.append(writer)
            pumps.append(asyncio.create_task(self._pump(index, reader), name=f"worker-{index}"))
        if self._stopping:  # stopped while the workers were being started
            self._request_stop()
        try:
            await asyncio.wait(pumps)  # each ends when its worker has sent everything
        except asyncio.CancelledError:  # a signal: the workers checkpoint and send what they have
            self._request_stop()
            await self._drain(pumps)
            raise
        finally:
            for writer in self._writers:
                writer.close()
            self._reap()
        if self._failure is not None:
            raise self._failure
        return self.counters

    def _fork(self, worker_of: dict[str, int]) -> list[socket.socket]:
        ours: list[socket.socket] = []
        parent = os.getpid()
        gc.freeze()  # what exists now is shared with the workers; a collection would copy its pages
        try:
            for index in range(self.workers):
                mine, theirs = socket.socketpair()
                with warnings.catch_warnings():
                    # Python 3.12+ warns when a process with threads forks. A worker touches none of
                    # the parent's objects (it builds its own loop, client and files) and fork resets
                    # the interpreter's own locks (imports, logging).
                    warnings.simplefilter("ignore", DeprecationWarning)
                    pid = os.fork()
                if pid == 0:
                    mine.close()
                    for sock in ours:
                        sock.close()
                    worker_main(self.context, index, self.workers, worker_of, theirs, parent)
                theirs.close()
                ours.append(mine)
                self.pids.append(pid)
        finally:
            gc.unfreeze()
        return ours

    async def _pump(self, index: int, reader: asyncio.StreamReader) -> None:
        """Write what worker ``index`` sends until it closes its end."""
        finished = False
        while True:
            try:
                size = HEADER.unpack(await reader.readexactly(HEADER.size))[0]
                batch = pickle.loads(await reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            try:
                self._take(index, batch)
            except OSError as exc:  # the disk filled up: stop the workers, keep reading so they can end
                self._fail(disk_full(exc, self.store.dir) or exc)
            except DiskFull as exc:
                self._fail(exc)
            finished = finished or any(kind == "done" for kind, *_ in batch)
        if not finished:
            self._fail(WorkerError(f"worker {index} (pid {self.pids[index]}) ended before its dialogues did "
                                   f"({_exit_status(self.pids[index])})"))

    def _take(self, index: int, batch: list[tuple[Any, ...]]) -> None:
        """Write and count one batch a worker sent (records and spans only while the disk has room)."""
        writing = not isinstance(self._failure, (DiskFull, OSError))
        for kind, *body in batch:
            if kind == "row":
                if writing:
                    self.store.write_line(body[0], body[1])
            elif kind == "spans":
                if writing:
                    self.spans.write_lines(body[0])
            elif kind == "outcome":
                self._count(body[0])
            elif kind == "usage":
                if self.meter is not None:
                    before = self._usage.get(index, (0, 0, 0))
                    self.meter.add_counts(*(now - then for now, then in zip(body[0], before)))
                self._usage[index] = body[0]
            elif kind == "warning":
                if body[0] not in self._warned:  # every worker's backend may decide the same
                    self._warned.add(body[0])
                    log.warning("%s", body[0])
            elif kind == "error":
                self._fail(WorkerError(f"worker {index}: {body[0]}"))
            elif kind == "done":
                for key in ("planned", "resumed"):
                    setattr(self.counters, key, getattr(self.counters, key) + body[0].get(key, 0))
                if len(body) > 2:
                    self.structured[index] = body[2]

    def _count(self, outcome: dict[str, Any]) -> None:
        self.counters.add_outcome(outcome)
        if self.on_record is not None:
            self.on_record(None, [])
        if self.max_failures is not None and self.counters.failed > self.max_failures:
            self._fail(TooManyFailures(f"{self.counters.failed} dialogues failed (--max-failures {self.max_failures})"))

    def _fail(self, error: BaseException) -> None:
        if self._failure is None:
            self._failure = error
        self._request_stop()

    def _request_stop(self) -> None:
        self._stopping = True
        for index, writer in enumerate(self._writers):
            if index in self._told:
                continue
            self._told.add(index)
            try:
                writer.write(STOP)
            except (ConnectionError, RuntimeError):  # that worker is already gone
                pass

    async def _drain(self, pumps: list[asyncio.Task[None]]) -> None:
        try:
            _, pending = await asyncio.wait(pumps, timeout=STOP_GRACE_S)
        except asyncio.CancelledError:  # asked to stop twice: stop waiting
            pending = {p for p in pumps if not p.done()}
        if pending:
            for pid in self.pids:
                _kill(pid)
            for pump in pending:
                pump.cancel()

    def _reap(self) -> None:
        for pid in self.pids:
            _exit_status(pid)


def _exit_status(pid: int) -> str:
    """Wait for the worker (it exits right after closing its socket) and say how it ended."""
    try:
        _, status = os.waitpid(pid, 0)
    except ChildProcessError:  # reaped already
        return "exited"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
