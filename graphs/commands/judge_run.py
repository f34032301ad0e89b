"""``sparring judge RUN_DIR``: score the dialogues of a finished run with the G-Eval judge, in place.

The judge stage can run inside a run (``dialogue.judge``); this scores a run
made without it, or rescores one with another judge model (``--set
backend.model=...``, or ``--set roles.judge=NAME`` for a named backend: a judge stronger than the
generator is the usual choice).
Scores are merged into dialogues.jsonl (swapped in atomically), the manifest
records which backend judged, and stats.json is rewritten.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sparring.agents.backends import Backend, BackendConfig
from sparring.agents.backends.base import metered
from sparring.agents.backends.session import dialogue_session
from sparring.agents.geval_judge import JudgeAgent, JudgeConfig
from sparring.errors import InputError
from sparring.graphs.data.run_stats import write_stats
from sparring.graphs.data.rundata import Row, load_run
from sparring.graphs.roles import named_backends, role_backends
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.manifest import RunManifest, session_id, write_manifest
from sparring.graphs.runtime.manifest_parts import JudgeInfo, Usage
from sparring.graphs.runtime.runlock import RunDirLock
from sparring.graphs.runtime.store import DIALOGUES, replace_jsonl
from sparring.graphs.runtime.totals import refresh_totals
from sparring.principles.yamlfile import LineMap, pydantic_error


def config_for_judging(manifest: RunManifest, overrides: Sequence[str], *, source: str) -> RunConfig:
    """The run's own config (from its manifest) with ``--set`` overrides applied."""
    return manifest.run_config(list(overrides), source=source)


def judge_backend(config: RunConfig, *, source: str) -> BackendConfig:
    """The backend of the ``judge`` role (``roles.judge``, else the one named ``default``)."""
    try:
        name = role_backends(config, ("judge",))["judge"]
    except KeyError:
        raise InputError("the judge role has no backend: name one with --set roles.judge=NAME",
                         source=source, field="roles.judge") from None
    return named_backends(config)[name]


def judge_settings(config: RunConfig, criteria: Sequence[str] = (), samples: int | None = None) -> JudgeConfig:
    """The run's ``dialogue.judge`` block (or the defaults), with command-line choices on top."""
    base = config.dialogue.judge or JudgeConfig()
    update: dict[str, Any] = {}
    if criteria:
        update["criteria"] = tuple(criteria)
    if samples is not None:
        update["samples"] = samples
    try:
        return JudgeConfig.model_validate({**base.model_dump(), **update})
    except ValidationError as exc:
        raise pydantic_error(exc, source="--criteria/--samples", lines=LineMap()) from None


def needs_scores(row: Row, criteria: Sequence[str], force: bool) -> bool:
    """An ok dialogue lacking one of ``criteria`` (every ok dialogue with ``force``)."""
    if row.get("status", "ok") != "ok" or not row.get("messages"):
        return False
    return force or any(c not in (row.get("scores") or {}) for c in criteria)


async def judge_run(run_dir: Path, *, overrides: Sequence[str] = (), criteria: Sequence[str] = (),
                    samples: int | None = None, force: bool = False,
                    backend: Backend | None = None) -> dict[str, Any]:
    """Score the dialogues of ``run_dir`` that lack scores; returns what was done (also in the manifest).
    Holds the run directory's lock throughout (it rewrites dialogues.jsonl)."""
    load_run(run_dir)  # a run directory: checked before its lock is taken
    with RunDirLock(run_dir):
        return await _judge_locked(run_dir, overrides, criteria, samples, force, backend)


async def _judge_locked(run_dir: Path, overrides: Sequence[str], criteria: Sequence[str], samples: int | None,
                        force: bool, backend: Backend | None) -> dict[str, Any]:
    run = load_run(run_dir)
    if run.manifest.status == "running":
        raise InputError("was killed while running (manifest status 'running'): resume it, then judge",
                         source=str(run_dir))
    config = config_for_judging(run.manifest, overrides, source=f"{run_dir}/manifest.json")
    settings = judge_settings(config, criteria, samples)
    todo = [row for row in run.dialogues if needs_scores(row, settings.criteria, force)]
    summary: dict[str, Any] = {"criteria": list(settings.criteria), "to_score": len(todo), "scored": 0,
                               "failed": 0, "methods": {}}
    if not todo:
        return summary
    owned = backend is None
    if backend is None:
        from sparring.graphs.runtime.role_backends import RoleBackends, probe_roles

        judge_backend(config, source=f"{run_dir}/manifest.json")  # the judge role has a backend
        backend = RoleBackends.create(config, roles=("judge",))["judge"]
        await probe_roles(config, ("judge",))  # an unusable judge fails now, in seconds
    await backend.start()
    judge = JudgeAgent(backend, config.sampling.judge, settings)
    slots = asyncio.Semaphore(config.concurrency)
    methods: Counter[str] = Counter()
    errors: Counter[str] = Counter()

    run_id = run.manifest.run_id or ""

    async def score(row: Row) -> None:
        async with slots:
            try:
                with dialogue_session(session_id(run_id, row["id"]) if run_id else row["id"]):
                    result = await judge.score(int(row.get("seed", 0)), row["id"], row.get("scenario") or {},
                                               row.get("goal"), row["messages"])
            except Exception as exc:  # one dialogue's failure leaves it unscored, not the rest
                errors[type(exc).__name__] += 1
                return
        row["scores"] = {**(row.get("scores") or {}), **result.scores}
        row["scoring"] = result.method
        methods[result.method] += 1

    t0 = time.perf_counter()
    try:
        with metered() as meter:
            await asyncio.gather(*(score(row) for row in todo))
    finally:
        if owned:
            await backend.aclose()
        if methods:  # keep whatever was scored, even when interrupted
            replace_jsonl(run.dir / DIALOGUES, run.dialogues)
        summary.update(scored=sum(methods.values()), failed=sum(errors.values()), methods=dict(methods),
                       errors=dict(errors), backend=backend.describe(), judged_at=time.time(),
                       wall_s=round(time.perf_counter() - t0, 2), usage=Usage.of_meter(meter).model_dump())
        run.manifest.judge = JudgeInfo.model_validate(summary)
        refresh_totals(run.manifest, run.dir, run.manifest.counts.this_attempt)
        write_manifest(run.dir, run.manifest)
    write_stats(run.dir)
    return summary
