"""One run, start to end: start the backend, open the run directory, simulate, write what is left.

``execute`` reads as its steps: ``_open_run`` (the directory and the manifest's new attempt),
``_simulate`` (expansion, then every dialogue on one process or on workers) and ``_close_run``
(totals, manifest, statistics and report). Everything a user can get wrong was checked by
``run_request`` before this module is reached, so bad input leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sparring.agents.agent_calls import PrincipleLike
from sparring.agents.backends import Backend
from sparring.agents.backends.base import UsageMeter, metered
from sparring.agents.backends.probe import ProbeResult
from sparring.agents.domain import DialogueJob, Scenario
from sparring.errors import DiskFull, EngineDied, TooManyFailures
from sparring.graphs.adaptive import AttemptBoard
from sparring.graphs.shared_plans import SharedPlans
from sparring.graphs.wiring import make_selfplay
from sparring.traces.sinks import JsonlSpanSink
from sparring.traces.spanfile import span_path
from sparring.traces.spans import Tracer, use_tracer

from .engine_log import EngineLog
from .manifest import RunManifest, new_manifest, new_run_id, write_manifest
from .manifest_parts import Attempt, EndStatus, Usage
from .plan_expansion import expand
from .plan_files import JOBS, write_jobs
from .progress import Progress
from .reporting import write_report_quietly
from .role_backends import RoleBackends, probe_roles
from .run_request import RunRequest, check_run_dir, continued, iter_jobs
from .run_result import RunResult
from .runlock import RunDirLock
from .runner import DialogueRunner
from .store import (
    CHECKPOINTS,
    DIALOGUES,
    ENGINE_LOG,
    MANIFEST,
    SCENARIOS,
    RunStore,
    disk_full,
    failure_causes,
    iter_jsonl,
)
from .totals import refresh_totals
from .tracing import span_exporters
from .workers import WorkerContext, WorkerPool


@dataclass
class _OpenRun:
    """A run directory while an attempt writes to it."""

    request: RunRequest
    store: RunStore
    manifest: RunManifest
    attempt: Attempt
    sink: JsonlSpanSink
    tracer: Tracer
    finished: dict[str, str]
    """Dialogue id -> status of the records already written (by earlier attempts)."""
    resumed: bool
    runner: DialogueRunner | WorkerPool | None = None

    @property
    def run_id(self) -> str:
        return str(self.manifest.run_id)
    """Set once the dialogues start; its counters go into the manifest however the attempt ends."""
    total: int = 0
    """Dialogues in the run: those stored by earlier attempts and those left (set when they start)."""


async def execute(request: RunRequest, *, progress: Progress | None = None,
                  backend: Backend | Mapping[str, Backend] | None = None,
                  callbacks: list[Any] | None = None, signals: bool = True, engine_log: bool = False,
                  verbose: bool = False) -> RunResult:
    """Run ``request`` to the end (or to a signal). ``backend``: already started backends to use
    instead of the configured ones (they are left running, and not probed): one for every role, or
    one per backend name the config uses; ``callbacks``: LangChain callback handlers (LangSmith,
    Langfuse, ...) that see every graph run. ``signals``: SIGINT/SIGTERM stop the run cleanly (the
    CLI; the Python API installs no handler, a cancelled task stops it the same way). ``engine_log``:
    what the engine and libraries print goes to RUN_DIR/engine.log, not the terminal (``verbose``
    copies it there as well).

    Before anything is written each backend the config uses is probed (``BackendUnavailable``, exit
    2, when one cannot work) and the run directory locked (``InputError`` when another process
    writes it). ``DiskFull`` when the file system filled up, ``EngineDied`` when the in-process engine's own
    process died: the run stopped (manifest status ``engine_died``), resume continues."""
    cfg = request.config
    if cfg.workers > 1 and (backend is not None or callbacks):
        raise ValueError("workers > 1 make their own backends from the config and cannot carry callback "
                         "handlers; pass neither a backend nor callbacks, or set workers: 1")
    check_run_dir(request)  # a directory of another config fails before the probe (checked again, locked)
    owned = backend is None
    # Made from the config, they check their API-key variables before anything is written.
    backends = RoleBackends.create(cfg) if backend is None else RoleBackends.of(cfg, backend)
    exporters = span_exporters(cfg.tracing)  # header variables and the OTLP install, checked as early
    progress = progress or Progress(enabled=False)
    # Locked first (another writer is refused at once); a directory the lock made is removed again
    # if the probe fails, so an unusable backend leaves nothing behind.
    with RunDirLock(request.run_dir, create=True):
        previous = check_run_dir(request)
        request = continued(request, previous)
        if previous is not None:
            RunStore(request.run_dir).check_lines()  # a damaged record file is bad input, found now
        probes = await probe_roles(cfg, on_slow=progress.stage) if owned else {}
        output = EngineLog(request.run_dir / ENGINE_LOG, echo=verbose) if engine_log else None
        with output or contextlib.nullcontext():
            if output is not None and _writes_to_fd(progress.stream, 2):
                progress.use_stream(output.terminal, live=not verbose)
            return await _attempt(request, previous, probes, backends, owned, exporters, progress, callbacks,
                                  signals)


def _writes_to_fd(stream: Any, fd: int) -> bool:
    try:
        return bool(stream.fileno() == fd)
    except (AttributeError, OSError, ValueError):
        return False


async def _attempt(request: RunRequest, previous: RunManifest | None, probes: dict[str, ProbeResult],
                   backends: RoleBackends, owned: bool, exporters: list[Any], progress: Progress,
                   callbacks: list[Any] | None, signals: bool) -> RunResult:
    """One attempt on the locked directory: start the backends, open the run, simulate, close."""
    attempt = Attempt(resumed=previous is not None, pid=os.getpid())
    if probes:
        attempt.probe = {name: result.detail for name, result in probes.items()}
    progress.stage(f"starting {backends.label()}")
    t0 = time.perf_counter()
    try:
        await backends.start()  # a no-op for backends that are already running
    except BaseException:
        if owned:
            await backends.aclose()  # one that started (an engine) must not outlive the failure
        raise
    attempt.backend_start_s = round(time.perf_counter() - t0, 2)
    try:
        run = _open_run(request, previous, attempt, backends, exporters)
    except OSError as exc:  # no room for even the manifest: the directory is as it was, or a run killed at birth
        at_birth = disk_full(exc, request.run_dir)
        if at_birth is None:
            raise
        raise at_birth from None
    status: EndStatus = "crashed"  # until the run says otherwise: an unexpected error must not read as success
    meter: UsageMeter | None = None
    full: DiskFull | None = None
    died: EngineDied | None = None
    try:
        with use_tracer(run.tracer), metered() as meter:
            status = await _simulate(run, backends, progress, meter, list(callbacks or []), signals)
    except TooManyFailures as exc:
        status = "failed"
        attempt.error = str(exc)
    except EngineDied as exc:  # fatal for this attempt, not for the run: a resume starts a new engine
        status, died = "engine_died", exc
        attempt.error = str(exc)
    except (asyncio.CancelledError, KeyboardInterrupt):  # a signal outside the simulation (start, expansion),
        status = "interrupted"  # or the library caller's task cancelled (Ctrl-C in a notebook): resume continues
        raise
    except BaseException as exc:
        full = disk_full(exc, request.run_dir)
        if full is None:
            attempt.error = f"{type(exc).__name__}: {exc}"
            raise
        status = "failed"
        attempt.error = str(full)
    finally:
        progress.stop()
        if owned:
            await backends.aclose()
        _close_run(run, status, meter, backends, disk_is_full=full is not None)
    if full is not None:
        raise full
    if died is not None:
        if run.runner is not None:  # (not when it died during a DiaSynth expansion)
            died.stored = (run.manifest.counts.dialogues, run.total)
        raise died
    return RunResult(status=status, run_dir=request.run_dir, manifest=run.manifest)


def _open_run(request: RunRequest, previous: RunManifest | None, attempt: Attempt, backends: RoleBackends,
              exporters: list[Any]) -> _OpenRun:
    """Repair what a killed attempt left, open the record files and the span sink, and record this
    attempt in the manifest now, so that a killed attempt still shows there."""
    cfg = request.config
    store = RunStore(request.run_dir)
    manifest = previous or new_manifest(cfg, config_path=request.config_path, run_dir=str(request.run_dir))
    if previous is None:
        # Enough to rebuild the same jobs on resume, whatever happens to the files the config named.
        manifest.principles = [_principle_dict(p) for p in request.principles]
        manifest.max_dialogues = request.max_dialogues
        manifest.plan = request.plan
    if manifest.run_id is None:  # directories written before run ids existed
        manifest.run_id = new_run_id()
    backends.record_in(manifest)
    if previous is not None:
        attempt.repaired = store.repair()
    manifest.begin_attempt(attempt)  # an earlier attempt still "running" was killed (SIGKILL, OOM, power)
    # The manifest first: a directory killed at any later moment is a run that resume continues.
    write_manifest(request.run_dir, manifest)
    if request.plan is not None and not (request.run_dir / JOBS).exists():
        write_jobs(request.run_dir / JOBS, iter_jobs(request))  # a shard keeps its jobs: a resume needs nothing else
    store.open()
    sink = JsonlSpanSink(span_path(request.run_dir)).open()
    tracer = Tracer([sink, *exporters], record_content=cfg.tracing.record_content)
    if cfg.diasynth is None or request.jobs is not None:
        _record_scenarios(store, request.run_dir, request.scenarios)
    return _OpenRun(request=request, store=store, manifest=manifest, attempt=attempt, sink=sink, tracer=tracer,
                    finished=store.finished_ids(), resumed=previous is not None)


def _record_scenarios(store: RunStore, run_dir: Path, scenarios: list[Scenario]) -> None:
    known = {row["id"] for row in iter_jsonl(run_dir / SCENARIOS)}
    for scenario in scenarios:
        if scenario.id not in known:
            store.append(SCENARIOS, scenario)


async def _simulate(run: _OpenRun, backends: RoleBackends, progress: Progress, meter: UsageMeter,
                    callbacks: list[Any], signals: bool = True) -> EndStatus:
    """Expand (DiaSynth) if the config asks, then run every unfinished dialogue; the status."""
    from .checkpoints import InlineSqliteSaver, place_checkpoints

    request, cfg = run.request, run.request.config
    saver: InlineSqliteSaver | None = None
    if cfg.workers == 1:
        place_checkpoints(request.run_dir, {}, 1)  # gathers the files of an attempt that had workers
        saver = InlineSqliteSaver.open(request.run_dir / CHECKPOINTS)
    try:
        request = await _expand_if_needed(request, backends, run.store, run.manifest, progress)
        keep_unverified = cfg.dialogue.unverified_pairs == "keep"
        runner: DialogueRunner | WorkerPool
        if saver is None:
            runner = WorkerPool(
                context=WorkerContext(config=cfg, run_dir=request.run_dir, jobs=lambda: iter_jobs(request),
                                      make_selfplay=lambda b: make_selfplay(request, b), resume=run.resumed,
                                      keep_unverified=keep_unverified, run_id=run.run_id),
                workers=cfg.workers, store=run.store, spans=run.sink, meter=meter,
                max_failures=cfg.max_failures, on_record=progress.record,
                on_started=lambda pids: _note_workers(run, pids))
        else:
            selfplay = make_selfplay(request, backends)
            if cfg.dialogue.adaptive_attacks:
                selfplay.attempts = AttemptBoard.of_run(iter_jobs(request), iter_jsonl(request.run_dir / DIALOGUES))
            if selfplay.plans is not None:  # several targets: the plans of the attacks already played somewhere
                selfplay.plans = SharedPlans.of_run(iter_jsonl(request.run_dir / DIALOGUES))
            runner = DialogueRunner(
                selfplay=selfplay, graph=selfplay.build(checkpointer=saver), store=run.store,
                concurrency=cfg.concurrency, keep_unverified=keep_unverified, max_failures=cfg.max_failures,
                resume=run.resumed, delete_checkpoints=saver.adelete_thread, on_record=progress.record,
                callbacks=callbacks, run_id=run.run_id)
        run.runner = runner
        left = _count_jobs(request, run.finished)
        run.total = left + sum(status == "ok" for status in run.finished.values())
        progress.start(runner.counters, total=left, meter=meter)
        if signals:
            return await _run_until_signal(runner, iter_jobs(request), run.finished)
        await runner.run(iter_jobs(request), run.finished)
        return "completed"
    finally:
        if saver is not None:
            saver.close()


async def _expand_if_needed(request: RunRequest, backends: RoleBackends, store: RunStore, manifest: RunManifest,
                            progress: Progress) -> RunRequest:
    """The request with its DiaSynth scenarios: expanded once per run directory; a resumed run reads
    scenarios.jsonl instead."""
    cfg = request.config
    if cfg.diasynth is None or request.jobs is not None:  # no expansion, or a shard of a plan that made it
        return request
    if manifest.expansion is not None:
        return replace(request, scenarios=[Scenario.model_validate(r)
                                           for r in iter_jsonl(request.run_dir / SCENARIOS)])
    scenarios, manifest.expansion = await expand(cfg, backends, progress)
    request = replace(request, scenarios=[*request.scenarios, *scenarios])
    for scenario in request.scenarios:
        store.append(SCENARIOS, scenario)
    write_manifest(request.run_dir, manifest)
    return request


def _close_run(run: _OpenRun, status: EndStatus, meter: UsageMeter | None, backends: RoleBackends, *,
               disk_is_full: bool = False) -> None:
    """Close the files, write the attempt's end and the run's totals, then statistics and report.
    On a full disk: the manifest only (in the space the store kept in reserve), no statistics."""
    run.tracer.close()
    run.store.close()
    manifest, attempt = run.manifest, run.attempt
    # Each backend's structured-output mode, settled by now (with workers: by each worker's copy).
    backends.record_in(manifest, run.runner.backend_state if isinstance(run.runner, WorkerPool) else None)
    counters = run.runner.counters.as_dict() if run.runner else {}
    attempt.finish(status, counters, Usage.of_meter(meter) if meter is not None else None)
    manifest.status = status
    refresh_totals(manifest, run.request.run_dir, counters)
    manifest.timings.updated_at = time.time()
    attempt.failure_causes = failure_causes(run.request.run_dir) or None
    if disk_is_full:
        _write_in_reserve(run.store, manifest)
        return
    write_manifest(run.request.run_dir, manifest)
    run.store.drop_reserve()
    report = run.request.config.report
    if report.stats:
        if status in ("completed", "failed"):
            _write_stats(run, embeddings=report.embeddings)
        write_report_quietly(run.request.run_dir)


def _write_in_reserve(store: RunStore, manifest: RunManifest) -> bool:
    """The manifest on a full disk: the reserve is given back first. False when even that did not fit."""
    store.drop_reserve()
    try:
        write_manifest(store.dir, manifest)
    except OSError:
        (store.dir / f".{MANIFEST}.tmp").unlink(missing_ok=True)
        return False
    return True


def _note_workers(run: _OpenRun, pids: list[int]) -> None:
    run.attempt.worker_pids = pids  # who wrote this attempt's checkpoints; what to look for if one hangs
    write_manifest(run.request.run_dir, run.manifest)


async def _run_until_signal(runner: DialogueRunner | WorkerPool, jobs: Iterator[DialogueJob],
                            finished: dict[str, str]) -> EndStatus:
    """Run; SIGINT/SIGTERM stop it cleanly: in-flight dialogues are cancelled (their
    checkpoints stay), written records stay, and a resume picks up."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(runner.run(jobs, finished))
    interrupted = False
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def on_signal() -> None:
        nonlocal interrupted
        interrupted = True
        runner.stop()
        task.cancel()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or no signals here
            pass
    try:
        await task
    except asyncio.CancelledError:
        if not interrupted:
            raise
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
            if before[sig] is not None:
                signal.signal(sig, before[sig])  # remove_signal_handler resets to the default, not to these
    return "interrupted" if interrupted else "completed"


def _write_stats(run: _OpenRun, *, embeddings: bool = True) -> None:
    """stats.json of the finished run. Statistics are a report on the data, not the data: when they
    fail, the manifest says why and the run keeps its status."""
    from sparring.graphs.data.run_stats import StatsOptions, write_stats

    try:
        write_stats(run.request.run_dir, StatsOptions(embeddings=embeddings))
    except Exception as exc:
        run.manifest.stats_error = f"{type(exc).__name__}: {exc}"
        write_manifest(run.request.run_dir, run.manifest)


def _principle_dict(p: PrincipleLike) -> dict[str, Any]:
    dump = getattr(p, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    return {k: getattr(p, k) for k in ("id", "category", "text", "critique", "revision")}


def _count_jobs(request: RunRequest, finished: dict[str, str]) -> int:
    return sum(1 for job in iter_jobs(request) if finished.get(job.id) != "ok")
