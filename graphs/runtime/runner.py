"""Runs many self-play graphs at once and streams their records to the run directory.

At most ``concurrency`` dialogues are in flight; jobs are pulled lazily from
an iterator, so memory holds the in-flight dialogues only, never the finished
ones. A dialogue whose backend fails for good is written as a failed record
(with its error and trace id) and the run goes on. An engine that died (``EngineDied``) is
no fault of a dialogue: nothing is written for the dialogues it cuts short (their
checkpoints stay), no new one starts, and the run raises it once those in flight have ended.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sparring.agents.backends.base import metered
from sparring.agents.backends.session import dialogue_session
from sparring.agents.domain import DialogueJob
from sparring.errors import EngineDied, TooManyFailures
from sparring.graphs.assemble import build_dialogue_record, build_sft_record, extract_preference_pairs
from sparring.graphs.records import DialogueRecord, DialogueUsage, PreferenceRecord, TokenCounts
from sparring.graphs.selfplay import SelfPlay
from sparring.traces import spans

from .manifest import session_id
from .store import DIALOGUES, PREFERENCES, SFT, RunStore


@dataclass
class RunCounters:
    """Live totals of a run; the manifest and the progress display read them."""

    planned: int = 0
    done: int = 0
    failed: int = 0
    skipped: int = 0
    """Already in the run directory (a resumed run)."""
    resumed: int = 0
    """Continued from a checkpoint."""
    violations: int = 0
    pairs: int = 0
    verified_pairs: int = 0
    turns: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    started: float = field(default_factory=time.time)

    def add(self, record: DialogueRecord, pairs: list[PreferenceRecord]) -> None:
        self.add_outcome(outcome_of(record, pairs))

    def add_outcome(self, outcome: dict[str, Any]) -> None:
        """Count one finished dialogue, as summed up by ``outcome_of`` (here or in a worker process)."""
        if outcome["failed"]:
            self.failed += 1
        else:
            self.done += 1
            self.violations += int(outcome["is_violation"])
            self.pairs += outcome["pairs"]
            self.verified_pairs += outcome["verified_pairs"]
            self.turns += outcome["turns"]
        self.prompt_tokens += outcome["prompt_tokens"]
        self.completion_tokens += outcome["completion_tokens"]
        self.calls += outcome["calls"]

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "started"}


def outcome_of(record: DialogueRecord, pairs: list[PreferenceRecord]) -> dict[str, Any]:
    """What the run's totals need of one finished dialogue: a few numbers, cheap to send between processes."""
    return {"failed": record.status == "failed", "is_violation": record.is_violation, "pairs": len(pairs),
            "verified_pairs": sum(p.verified for p in pairs), "turns": record.turns,
            "prompt_tokens": record.usage.prompt_tokens, "completion_tokens": record.usage.completion_tokens,
            "calls": record.usage.calls}


def workflow_outcome(record: DialogueRecord) -> dict[str, Any]:
    """What the dialogue's ``invoke_workflow`` span says of its outcome (the trace alone tells the story)."""
    outcome: dict[str, Any] = {
        "app.stop_reason": record.stop_reason, "app.is_violation": record.is_violation,
        "app.violated_principles": record.violated_principles, "app.turns": record.turns,
        "app.revisions": len(record.revisions),
        "gen_ai.usage.input_tokens": record.usage.prompt_tokens,
        "gen_ai.usage.output_tokens": record.usage.completion_tokens}
    if spans.content_enabled():  # the dialogue's input and output, for trace tools (traces.otlp)
        outcome["app.scenario"] = record.scenario.model_dump(mode="json")
        outcome["app.goal"] = record.goal
        outcome["app.transcript"] = [f"{m.name}: {m.content}" for m in record.messages]
    return outcome


@contextmanager
def _collector_tuned_for_many_dialogues() -> Iterator[None]:
    """Python's cycle collector, set for a loop that allocates fast and keeps little.

    Hundreds of dialogues in flight allocate thousands of short-lived objects per
    model call (coroutines, dicts, spans); with the default gen-0 threshold (700)
    the collector runs several times per call, and each full collection walks
    every object of the process (modules, models, the compiled graph). What exists
    when the run starts is moved out of the collector's view (``gc.freeze``) and
    collections are made rarer: ~10% less orchestrator CPU per call (measured with
    benchmarks/orchestration_overhead.py). Cycles are still collected.
    """
    thresholds = gc.get_threshold()
    # Objects someone else froze stay frozen: unfreeze() would release theirs too.
    ours = gc.get_freeze_count() == 0
    if ours:
        gc.freeze()
    gc.set_threshold(10_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if ours:
            gc.unfreeze()


@dataclass
class DialogueRunner:
    selfplay: SelfPlay
    graph: Any
    store: RunStore
    concurrency: int
    keep_unverified: bool = False
    max_failures: int | None = None
    resume: bool = False
    """Look for checkpoints of unfinished dialogues (a run directory that existed before)."""
    delete_checkpoints: Callable[[str], Any] | None = None
    on_record: Callable[[DialogueRecord, list[PreferenceRecord]], None] | None = None
    callbacks: list[Any] = field(default_factory=list)
    """LangChain callback handlers (LangSmith, Langfuse, ...) passed to every graph invocation."""
    workflow_attributes: dict[str, Any] = field(default_factory=dict)
    """Extra attributes of every ``invoke_workflow`` span (``app.worker`` in a worker process)."""
    run_id: str = ""
    """The run directory's id (manifest ``run_id``); with it, a dialogue's conversation id is unique
    across runs (graphs.runtime.manifest.session_id). Empty: the dialogue id alone."""
    counters: RunCounters = field(default_factory=RunCounters)
    _stopping: bool = False

    def stop(self) -> None:
        """Start no new dialogue; in-flight ones are cancelled by the caller."""
        self._stopping = True

    async def run(self, jobs: Iterable[DialogueJob], finished: dict[str, str] | None = None) -> RunCounters:
        with _collector_tuned_for_many_dialogues():
            return await self._run(jobs, finished)

    async def _run(self, jobs: Iterable[DialogueJob], finished: dict[str, str] | None = None) -> RunCounters:
        finished = finished or {}
        slots = asyncio.Semaphore(self.concurrency)
        tasks: set[asyncio.Task[None]] = set()
        failure: BaseException | None = None

        def done_callback(task: asyncio.Task[None]) -> None:
            nonlocal failure
            tasks.discard(task)
            slots.release()
            if not task.cancelled() and task.exception() is not None and failure is None:
                failure = task.exception()

        try:
            for job in jobs:
                if finished.get(job.id) == "ok":
                    self.counters.skipped += 1
                    continue
                self.counters.planned += 1
                await slots.acquire()
                if self._stopping or failure is not None:
                    slots.release()
                    break
                task = asyncio.create_task(self._run_one(job), name=f"dialogue-{job.id}")
                tasks.add(task)
                task.add_done_callback(done_callback)
            while tasks:
                await asyncio.wait(set(tasks))
        except BaseException:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.gather(*tasks, return_exceptions=True)
            raise
        if failure is not None:
            raise failure
        return self.counters

    async def _run_one(self, job: DialogueJob) -> None:
        config = {"configurable": {"thread_id": job.id}, "recursion_limit": self.selfplay.recursion_limit(),
                  "callbacks": self.callbacks, "run_name": "selfplay", "tags": ["sparring"],
                  "metadata": {"dialogue_id": job.id}}
        t0 = time.perf_counter()
        state: dict[str, Any] = {}
        error: str | None = None
        trace_id: str | None = None
        conversation = session_id(self.run_id, job.id) if self.run_id else job.id
        # Every request of this dialogue, whichever role makes it, carries the conversation id as its session.
        with metered() as meter, dialogue_session(conversation):
            with spans.span("invoke_workflow", {
                    "gen_ai.operation.name": "invoke_workflow",
                    "gen_ai.conversation.id": conversation,
                    "app.dialogue_id": job.id,
                    "gen_ai.agent.name": "selfplay", "app.mode": job.mode,
                    "app.principle_ids": list(job.target_principles), "app.scenario_id": job.scenario.id,
                    **self.workflow_attributes}, reraise=True) as root:
                trace_id = root.trace_id
                try:
                    start, finished_state = await self._resume_point(job, config, root)
                    if finished_state is not None:
                        state = finished_state
                    else:
                        state = await self.graph.ainvoke(start, config)
                except (asyncio.CancelledError, EngineDied):  # the run stops: nothing written, checkpoints kept
                    raise
                except Exception as exc:  # one dialogue's failure must not stop the run
                    error = f"{type(exc).__name__}: {exc}"
                    root.fail(error)
                    state = await self._last_state(config)
                usage = DialogueUsage(prompt_tokens=meter.prompt_tokens, completion_tokens=meter.completion_tokens,
                                      calls=meter.calls, by_agent={
                                          agent: TokenCounts(prompt_tokens=p, completion_tokens=c, calls=n)
                                          for agent, (p, c, n) in sorted(meter.by_agent.items())})
                record = build_dialogue_record(job, state, trace_id=trace_id, usage=usage,
                                               duration_s=time.perf_counter() - t0, error=error,
                                               models=self.selfplay.models_for(job))
                root.update(workflow_outcome(record))
        pairs: list[PreferenceRecord] = []
        if error is None:
            pairs = extract_preference_pairs(record, job, keep_unverified=self.keep_unverified)
            for pair in pairs:
                self.store.append(PREFERENCES, pair)
            sft = build_sft_record(record, job)
            if sft is not None:  # None: nothing of the judged side left before its first unfixed flagged turn
                self.store.append(SFT, sft)
        self.store.append(DIALOGUES, record)  # last: the commit marker of this dialogue
        if self.selfplay.attempts is not None:  # adaptive attacks: later rounds on its goal may go on
            self.selfplay.attempts.report(record.model_dump(mode="json"))
        if error is None and self.delete_checkpoints is not None:
            await self.delete_checkpoints(job.id)
        self.counters.add(record, pairs)
        if self.on_record is not None:
            self.on_record(record, pairs)
        if self.max_failures is not None and self.counters.failed > self.max_failures:
            raise TooManyFailures(f"{self.counters.failed} dialogues failed (--max-failures {self.max_failures})")

    async def _resume_point(self, job: DialogueJob, config: dict[str, Any], root: Any
                            ) -> tuple[Any, dict[str, Any] | None]:
        """Where the dialogue's graph starts: its job (a new dialogue), None (continue from the last
        checkpoint of a resumed one), or, second, the final state of a graph that had reached its end
        when the process died, before the record was written (invoking the thread again would start a
        second run on top of the old state)."""
        start: Any = {"job": job.model_dump(mode="json")}
        if not self.resume:
            return start, None
        snapshot = await self.graph.aget_state(config)
        # ``next`` leaves out the tasks of the step whose writes were saved before the kill; they still
        # belong to an unfinished run.
        if not (snapshot.next or snapshot.tasks or snapshot.values):
            return start, None
        self.counters.resumed += 1
        root.set("app.resumed", True)
        if snapshot.next or snapshot.tasks:
            return None, None
        return start, dict(snapshot.values)

    async def _last_state(self, config: dict[str, Any]) -> dict[str, Any]:
        try:
            snapshot = await self.graph.aget_state(config)
            return dict(snapshot.values or {})
        except Exception:  # no checkpointer, or nothing saved yet
            return {}
