"""One ``sparring run``: validate everything, start the backend, simulate, write.

Everything a user can get wrong (config, principle files, scenarios, the
API-key variable, a run directory made by another config) is checked before
the run directory is created or an engine is started, so bad input leaves
nothing behind.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.agents._common import PrincipleLike
from sparring.agents.backends import Backend, create_backend
from sparring.agents.backends.base import metered
from sparring.agents.critic import CriticAgent
from sparring.agents.judge import JudgeAgent
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.agents.types import DialogueJob, Scenario
from sparring.diasynth_agents.fewshot import FewShotPool, style_instruction
from sparring.principles.yamlfile import InputError
from sparring.traces.sinks import JsonlSpanSink
from sparring.traces.spans import Tracer, use_tracer

from .config import RunConfig
from .jobs import assign_jobs
from .manifest import fingerprint, new_manifest
from .progress import Progress
from .reporting import write_report_quietly
from .tracing import span_exporters
from .runner import DialogueRunner, TooManyFailures
from .workers import WorkerContext, WorkerPool
from .selfplay import SelfPlay, SelfPlayAgents
from .store import CHECKPOINTS, SCENARIOS, TRACES, RunStore, iter_jsonl


@dataclass
class RunRequest:
    config: RunConfig
    config_path: str | None
    run_dir: Path
    principles: list[PrincipleLike]
    scenarios: list[Scenario]
    """Scenarios from the config; with a ``diasynth:`` block, filled by the expansion when the run starts."""
    few_shot: FewShotPool = field(default_factory=FewShotPool)
    max_dialogues: int | None = None
    force: bool = False
    """Run into a directory made by a different config."""


@dataclass
class RunResult:
    status: str
    run_dir: Path
    manifest: dict[str, Any]


def check_run_dir(request: RunRequest) -> dict[str, Any] | None:
    """The existing manifest when resuming; InputError when the directory belongs to another config."""
    store = RunStore(request.run_dir)
    if request.run_dir.exists() and not request.run_dir.is_dir():
        raise InputError("exists and is not a directory", source=str(request.run_dir))
    old = store.read_manifest()
    if old is None:
        if request.run_dir.exists() and any(request.run_dir.iterdir()):
            raise InputError("is not empty and holds no manifest.json; choose another --out",
                             source=str(request.run_dir))
        return None
    if old.get("parent") is not None:
        raise InputError("is a filtered copy of another run (see 'parent' in its manifest) and cannot be "
                         "continued; resume the parent run instead", source=str(request.run_dir))
    if old.get("config_fingerprint") != fingerprint(request.config) and not request.force:
        raise InputError("was made by a different config (its manifest's config_fingerprint differs); "
                         "use another --out, or --force to continue it anyway", source=str(request.run_dir))
    return old


def make_agents(config: RunConfig, backend: Backend) -> SelfPlayAgents:
    s = config.sampling
    return SelfPlayAgents(planner=PlannerAgent(backend, s.planner), persona=PersonaAgent(backend, s.persona),
                          critic=CriticAgent(backend, s.critic), reviser=ReviserAgent(backend, s.reviser),
                          verifier=CriticAgent(backend, s.verifier, name="verifier"))


def iter_jobs(request: RunRequest) -> Iterator[DialogueJob]:
    cfg = request.config
    pool = request.few_shot

    def few_shot_for(job_id: str) -> str | None:
        example = pool.choose(cfg.seed, job_id)
        return example.id if example is not None else None

    return assign_jobs(request.scenarios, [p.id for p in request.principles], cfg.jobs, mode=cfg.dialogue.mode,
                       seed=cfg.seed, max_dialogues=request.max_dialogues,
                       characteristics=[c.name for c in cfg.dialogue.planner_characteristics()],
                       choose_few_shot=few_shot_for if pool else None)


def make_selfplay(request: RunRequest, backend: Backend) -> SelfPlay:
    cfg = request.config
    pool = request.few_shot

    def style(job: DialogueJob) -> str | None:
        return style_instruction(pool.get(job.few_shot_id)) if job.few_shot_id else None

    return SelfPlay(agents=make_agents(cfg, backend), principles=request.principles, settings=cfg.dialogue,
                    characteristics=[(c.name, c.description) for c in cfg.dialogue.planner_characteristics()],
                    style_example=style, summary_params=cfg.sampling.summary if cfg.dialogue.summaries else None,
                    judge=JudgeAgent(backend, cfg.sampling.judge, cfg.dialogue.judge) if cfg.dialogue.judge else None)


async def expand_if_needed(request: RunRequest, backend: Backend, store: RunStore, manifest: dict[str, Any],
                           progress: Progress) -> None:
    """Run the DiaSynth expansion once per run directory; a resumed run reads scenarios.jsonl instead."""
    cfg = request.config
    if cfg.diasynth is None:
        return
    if manifest.get("expansion") is not None:
        request.scenarios = [Scenario.model_validate(r) for r in iter_jsonl(request.run_dir / SCENARIOS)]
        return
    from .scenario_graph import expand_scenarios

    progress.stage(f"expanding {len(cfg.diasynth.topics)} topics into scenarios (DiaSynth)")
    scenarios, report = await expand_scenarios(cfg.diasynth, backend, cfg.sampling, cfg.seed)
    request.scenarios = [*request.scenarios, *scenarios]
    for scenario in request.scenarios:
        store.append(SCENARIOS, scenario)
    manifest["expansion"] = {"report": report.model_dump(mode="json"), "explain": report.explain()}
    store.write_manifest(manifest)
    for line in report.explain():
        progress.note(line)


async def execute(request: RunRequest, *, progress: Progress | None = None, backend: Backend | None = None,
                  callbacks: list[Any] | None = None) -> RunResult:
    """Run ``request`` to the end (or to a signal). ``backend``: an already started backend to use
    instead of the configured one (it is left running); ``callbacks``: LangChain callback handlers
    (LangSmith, Langfuse, ...) that see every graph run."""
    cfg = request.config
    if cfg.workers > 1 and (backend is not None or callbacks):
        raise ValueError("workers > 1 make their own backends from the config and cannot carry callback "
                         "handlers; pass neither a backend nor callbacks, or set workers: 1")
    previous = check_run_dir(request)
    owned = backend is None
    if backend is None:
        backend = create_backend(cfg.backend)  # validates the API-key variable before anything is written
    exporters = span_exporters(cfg.tracing)  # header variables and the OTLP install, checked as early
    store = RunStore(request.run_dir)
    manifest = previous or new_manifest(cfg, config_path=request.config_path, run_dir=str(request.run_dir))
    if previous is None:
        # Enough to rebuild the same jobs on resume, whatever happens to the files the config named.
        manifest["principles"] = [_principle_dict(p) for p in request.principles]
        manifest["max_dialogues"] = request.max_dialogues
    attempt: dict[str, Any] = {"started_at": time.time(), "resumed": previous is not None}
    progress = progress or Progress(enabled=False)
    progress.stage(f"starting the {cfg.backend.kind} backend")
    t0 = time.perf_counter()
    await backend.start()  # a no-op for a backend that is already running
    attempt["backend_start_s"] = round(time.perf_counter() - t0, 2)
    manifest["backend"] = backend.describe()
    if previous is not None:
        attempt["repaired"] = store.repair()
    store.open()
    sink = JsonlSpanSink(request.run_dir / TRACES).open()
    tracer = Tracer([sink, *exporters], record_content=cfg.tracing.record_content)
    finished = store.finished_ids()
    for earlier in manifest["runs"]:
        if earlier.get("status") == "running":
            # That process never wrote its end: it was killed (SIGKILL, OOM, power).
            earlier["status"] = "killed"
    # Recorded now, not at the end, so that a killed attempt still shows in the manifest.
    manifest["runs"].append(attempt)
    attempt["status"] = "running"
    manifest["status"] = "running"
    store.write_manifest(manifest)
    if cfg.diasynth is None:
        known_scenarios = {row["id"] for row in iter_jsonl(request.run_dir / SCENARIOS)}
        for scenario in request.scenarios:
            if scenario.id not in known_scenarios:
                store.append(SCENARIOS, scenario)

    from .checkpoints import InlineSqliteSaver, place_checkpoints

    status = "crashed"  # until the run says otherwise: an unexpected error must not read as success
    runner: DialogueRunner | WorkerPool | None = None
    run_meter = None
    saver: InlineSqliteSaver | None = None
    try:
        if cfg.workers == 1:
            place_checkpoints(request.run_dir, {}, 1)  # gathers the files of an attempt that had workers
            saver = InlineSqliteSaver.open(request.run_dir / CHECKPOINTS)
        with use_tracer(tracer), metered() as run_meter:
            await expand_if_needed(request, backend, store, manifest, progress)
            keep_unverified = cfg.dialogue.unverified_pairs == "keep"
            if saver is None:
                runner = WorkerPool(
                    context=WorkerContext(config=cfg, run_dir=request.run_dir, jobs=lambda: iter_jobs(request),
                                          make_selfplay=lambda b: make_selfplay(request, b),
                                          resume=previous is not None, keep_unverified=keep_unverified),
                    workers=cfg.workers, store=store, spans=sink, meter=run_meter, max_failures=cfg.max_failures,
                    on_record=progress.record, on_started=lambda pids: _note_workers(store, manifest, attempt, pids))
            else:
                selfplay = make_selfplay(request, backend)
                runner = DialogueRunner(
                    selfplay=selfplay, graph=selfplay.build(checkpointer=saver), store=store,
                    concurrency=cfg.concurrency, keep_unverified=keep_unverified,
                    max_failures=cfg.max_failures, resume=previous is not None,
                    delete_checkpoints=saver.adelete_thread, on_record=progress.record,
                    callbacks=list(callbacks or []))
            progress.start(runner.counters, total=_count_jobs(request, finished), meter=run_meter)
            status = await _run_until_signal(runner, iter_jobs(request), finished)
    except TooManyFailures as exc:
        status = "failed"
        attempt["error"] = str(exc)
    except BaseException as exc:
        attempt["error"] = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        if saver is not None:
            saver.close()
        progress.stop()
        tracer.close()
        store.close()
        if owned:
            await backend.aclose()
        counters = runner.counters.as_dict() if runner else {}
        attempt.update({"finished_at": time.time(), "status": status, "counts": counters})
        if run_meter is not None:
            attempt["usage"] = {"prompt_tokens": run_meter.prompt_tokens,
                                "completion_tokens": run_meter.completion_tokens, "calls": run_meter.calls}
        if attempt not in manifest["runs"]:  # ended before it was recorded
            manifest["runs"].append(attempt)
        manifest["status"] = status
        manifest["counts"] = _totals(request.run_dir, counters)
        # Over all attempts: dialogues continued from a checkpoint, and attempts that were killed.
        manifest["counts"]["resumed"] = sum(r.get("counts", {}).get("resumed", 0) for r in manifest["runs"])
        manifest["counts"]["killed_attempts"] = sum(r.get("status") == "killed" for r in manifest["runs"])
        manifest["usage"] = {k: sum(r.get("usage", {}).get(k, 0) for r in manifest["runs"])
                             for k in ("prompt_tokens", "completion_tokens", "calls")}
        manifest["timings"]["updated_at"] = time.time()
        manifest["timings"]["wall_s"] = round(sum(r["finished_at"] - r["started_at"] for r in manifest["runs"]
                                                  if "finished_at" in r), 2)
        store.write_manifest(manifest)
        if cfg.report.stats:
            if status in ("completed", "failed"):
                _write_stats(request.run_dir, store, manifest, embeddings=cfg.report.embeddings)
            write_report_quietly(request.run_dir)
    return RunResult(status=status, run_dir=request.run_dir, manifest=manifest)


def _note_workers(store: RunStore, manifest: dict[str, Any], attempt: dict[str, Any], pids: list[int]) -> None:
    attempt["worker_pids"] = pids  # who wrote this attempt's checkpoints; what to look for if one hangs
    store.write_manifest(manifest)


async def _run_until_signal(runner: DialogueRunner | WorkerPool, jobs: Iterator[DialogueJob], finished: dict[str, str]) -> str:
    """Run; SIGINT/SIGTERM stop it cleanly: in-flight dialogues are cancelled (their
    checkpoints stay), written records stay, and a resume picks up."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(runner.run(jobs, finished))
    interrupted = False

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
    return "interrupted" if interrupted else "completed"


def _write_stats(run_dir: Path, store: RunStore, manifest: dict[str, Any], *, embeddings: bool = True) -> None:
    """stats.json of the finished run. Statistics are a report on the data, not the data: when they
    fail, the manifest says why and the run keeps its status."""
    from .data.stats import StatsOptions, write_stats

    try:
        write_stats(run_dir, StatsOptions(embeddings=embeddings))
    except Exception as exc:
        manifest["stats_error"] = f"{type(exc).__name__}: {exc}"
        store.write_manifest(manifest)


def _principle_dict(p: PrincipleLike) -> dict[str, Any]:
    dump = getattr(p, "model_dump", None)
    if dump is not None:
        return dump(mode="json")
    return {k: getattr(p, k) for k in ("id", "category", "text", "critique", "revision")}


def _count_jobs(request: RunRequest, finished: dict[str, str]) -> int:
    return sum(1 for job in iter_jobs(request) if finished.get(job.id) != "ok")


def _totals(run_dir: Path, counters: dict[str, Any]) -> dict[str, Any]:
    """Counts over the whole run directory (all attempts), read back from the files written."""
    from .store import DIALOGUES, PREFERENCES

    dialogues = failed = violations = turns = 0
    for row in iter_jsonl(run_dir / DIALOGUES):
        if row.get("status") == "failed":
            failed += 1
        else:
            dialogues += 1
            violations += int(row.get("is_violation", False))
            turns += row.get("turns", 0)
    pairs = verified = 0
    for row in iter_jsonl(run_dir / PREFERENCES):
        pairs += 1
        verified += int(row.get("verified", False))
    return {"dialogues": dialogues, "failed": failed, "with_violation": violations,
            "violation_rate": round(violations / dialogues, 4) if dialogues else 0.0,
            "avg_turns": round(turns / dialogues, 2) if dialogues else 0.0, "pairs": pairs,
            "verified_pairs": verified, "this_attempt": counters}
