"""A worker process of ``workers: N`` (graphs/runtime/workers.py has the whole picture): run a share of
the dialogues and send the records, spans and usage to the parent, which writes them.

Also the few things both sides share: the wire format (a 4-byte length, then a pickled list
of messages; the parent sends one byte to say stop), the context a worker inherits, and how
totals are shared out.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import socket
import struct
import sys
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from sparring.agents.backends.base import UsageMeter, metered
from sparring.agents.domain import DialogueJob
from sparring.graphs.run_config import RunConfig
from sparring.graphs.selfplay import SelfPlay
from sparring.traces.sinks import encode_line
from sparring.traces.spans import Span, Tracer, use_tracer

from .checkpoints import InlineSqliteSaver, checkpoint_path
from .role_backends import RoleBackends
from .runner import DialogueRunner, outcome_of
from .store import encode_record
from .tracing import span_exporters

FLUSH_INTERVAL_S = 0.02
"""How long a worker gathers records and spans before sending them as one message."""
HEADER = struct.Struct("!I")  # length of the pickled message that follows
STOP = b"s"


def share(total: int, workers: int, index: int) -> int:
    """Worker ``index``'s part of ``total``: parts differ by at most one and add up to ``total``."""
    return total // workers + (1 if index < total % workers else 0)


@dataclass
class WorkerContext:
    """What a worker needs of the run; built by the parent, inherited through fork."""

    config: RunConfig
    run_dir: Path
    jobs: Callable[[], Iterator[DialogueJob]]
    """A fresh iterator over all the run's jobs, in order."""
    make_selfplay: Callable[[RoleBackends], SelfPlay]
    resume: bool
    keep_unverified: bool
    run_id: str = ""


def worker_main(context: WorkerContext, index: int, workers: int, worker_of: dict[str, int],
                 sock: socket.socket, parent: int) -> NoReturn:
    """The forked process: run this worker's dialogues, then leave without running any of the
    parent's clean-up (os._exit), since every object but the ones made here is the parent's."""
    code = 1
    try:
        _die_with_parent(parent)
        signal.set_wakeup_fd(-1)  # the inherited wakeup socket belongs to the parent's event loop
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Ctrl-C reaches the whole process group; the parent decides, and stops the workers.
            signal.signal(sig, signal.SIG_IGN)
        with asyncio.Runner(loop_factory=_fast_loop_factory()) as runner:
            runner.run(_serve(context, index, workers, worker_of, sock))
        code = 0
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def _fast_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when it is installed. A worker's loop is half idle (that is the point
    of having workers), so it wakes up for nearly every reply, and asyncio's pure-Python loop
    spends more per wake-up: ~6% less CPU per model call with uvloop, measured with
    ``benchmarks/orchestration_overhead.py --workers 2``."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _die_with_parent(parent: int) -> None:
    """Linux: the kernel SIGKILLs this worker when the parent dies (a SIGKILLed parent runs no code)."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() != parent:  # the parent died before that took effect
        os._exit(1)


async def _serve(context: WorkerContext, index: int, workers: int, worker_of: dict[str, int],
                 sock: socket.socket) -> None:
    reader, writer = await asyncio.open_connection(sock=sock)
    outbox = _Outbox(writer)
    cfg = context.config
    # Every backend of the run, each with this worker's share of its max_in_flight.
    backends = RoleBackends.create(cfg, share_of=lambda total: share(total, workers, index))
    for backend in backends:
        # The parent prints a decision about a server once, however many workers reach it.
        backend.schema_support.on_decision = \
            lambda reason, backend=backend: outbox.send(("warning", backend.schema_warning(reason)))
    saver: InlineSqliteSaver | None = None
    tracer: Tracer | None = None
    runner: DialogueRunner | None = None
    status = "crashed"
    try:
        await backends.start()
        tracer = Tracer([outbox.add_span, *span_exporters(cfg.tracing)], record_content=cfg.tracing.record_content)
        saver = InlineSqliteSaver.open(checkpoint_path(context.run_dir, index))
        with use_tracer(tracer), metered() as meter:
            outbox.meter = meter
            selfplay = context.make_selfplay(backends)
            runner = DialogueRunner(
                selfplay=selfplay, graph=selfplay.build(checkpointer=saver), store=outbox,  # type: ignore[arg-type]
                concurrency=share(cfg.concurrency, workers, index), keep_unverified=context.keep_unverified,
                resume=context.resume, delete_checkpoints=saver.adelete_thread, on_record=outbox.add_outcome,
                workflow_attributes={"app.worker": index}, run_id=context.run_id)
            jobs = (job for job in context.jobs() if worker_of.get(job.id) == index)
            work = asyncio.create_task(runner.run(jobs))
            control = asyncio.create_task(reader.read(1))
            await asyncio.wait({work, control}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done():
                if not control.result():
                    os._exit(1)  # the parent is gone: there is no one to write the records
                runner.stop()
                work.cancel()
                await asyncio.gather(work, return_exceptions=True)  # dialogues cancelled, checkpoints kept
                status = "interrupted"
            else:
                control.cancel()
                work.result()
                status = "completed"
    except Exception as exc:
        outbox.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        if saver is not None:
            saver.close()
        if tracer is not None:
            tracer.close()
        await backends.aclose()
        outbox.send(("done", runner.counters.as_dict() if runner is not None else {}, status,
                     {b.name: b.schema_support.describe() for b in backends}))
        await outbox.close()


class _Outbox:
    """What a worker sends the parent, batched: one message per ``FLUSH_INTERVAL_S``, not one per
    record or span. Has the ``append`` of a RunStore, so the runner writes its records here."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._items: list[tuple[Any, ...]] = []
        self._spans: list[bytes] = []
        self._flush_handle: asyncio.TimerHandle | None = None
        self._usage_sent = (0, 0, 0)
        self.meter: UsageMeter | None = None

    def append(self, name: str, record: Any) -> None:
        self.send(("row", name, encode_record(record)))

    def add_span(self, span: Span) -> None:
        self._spans.append(encode_line(span.to_dict()))
        self._flush_soon()

    def add_outcome(self, record: Any, pairs: list[Any]) -> None:
        self.send(("outcome", outcome_of(record, pairs)))

    def send(self, item: tuple[Any, ...]) -> None:
        self._items.append(item)
        self._flush_soon()

    def _flush_soon(self) -> None:
        if self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(FLUSH_INTERVAL_S, self.flush)

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        items, self._items = self._items, []
        if self._spans:
            items.append(("spans", b"".join(self._spans)))
            self._spans = []
        if self.meter is not None:
            usage = (self.meter.prompt_tokens, self.meter.completion_tokens, self.meter.calls)
            if usage != self._usage_sent:
                items.insert(0, ("usage", usage))
                self._usage_sent = usage
        if items:
            payload = pickle.dumps(items, protocol=pickle.HIGHEST_PROTOCOL)
            self._writer.write(HEADER.pack(len(payload)) + payload)

    async def close(self) -> None:
        self.flush()
        try:
            await self._writer.drain()
            self._writer.close()
            await self._writer.wait_closed()
        except ConnectionError:  # the parent is gone
            pass
