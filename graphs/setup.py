"""Turning a config (or an existing run directory) into a RunRequest, checking everything first.

All of this runs before any directory is created or model started, so bad
input costs nothing and leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sparring.agents.types import Scenario
from sparring.diasynth_agents.counts import expected_counts
from sparring.diasynth_agents.fewshot import load_pool
from sparring.principles.model import Principle
from sparring.principles.yamlfile import InputError

from .config import RunConfig, load_config_with_lines
from .pipeline import RunRequest, iter_jobs
from .store import SCENARIOS, RunStore, iter_jsonl


def plan_run(config_path: Path, overrides: tuple[str, ...] = (), *, out: Path | None = None,
             max_dialogues: int | None = None, max_failures: int | None = None, force: bool = False) -> RunRequest:
    cfg, lines = load_config_with_lines(config_path, overrides)
    updates: dict[str, Any] = {}
    if out is not None:
        updates["output_dir"] = out
    if max_failures is not None:
        updates["max_failures"] = max_failures
    if updates:
        cfg = cfg.model_copy(update=updates)
    principles = list(cfg.principles.resolve(config_path.parent, source=str(config_path), lines=lines))
    scenarios = [spec.to_scenario() for spec in cfg.scenarios]
    if not scenarios and cfg.diasynth is None:
        raise InputError("no scenarios: list them under 'scenarios:', or give topics under 'diasynth:'",
                         source=str(config_path), field="scenarios")
    if cfg.jobs.principles_per_dialogue and not principles:
        raise InputError("the principle selection is empty", source=str(config_path), field="principles")
    few_shot = load_pool(cfg.dialogue.few_shot)  # bad few-shot files are bad input: fail now
    return RunRequest(config=cfg, config_path=str(config_path), run_dir=cfg.run_dir(), principles=principles,
                      scenarios=scenarios, few_shot=few_shot, max_dialogues=max_dialogues, force=force)


def plan_resume(run_dir: Path, *, max_failures: int | None = None) -> RunRequest:
    """The request that continues ``run_dir``, rebuilt from its manifest and scenarios.jsonl."""
    manifest = RunStore(run_dir).read_manifest()
    if manifest is None:
        raise InputError("holds no manifest.json: not a sparring run directory", source=str(run_dir))
    try:
        cfg = RunConfig.model_validate({**manifest["config"], "output_dir": str(run_dir)})
        principles = [Principle.model_validate(p) for p in manifest.get("principles", [])]
        scenarios = [Scenario.model_validate(row) for row in iter_jsonl(run_dir / SCENARIOS)]
    except (KeyError, ValueError) as exc:
        raise InputError(f"its manifest or scenarios.jsonl cannot be read back: {exc}", source=str(run_dir)) from None
    few_shot = load_pool(cfg.dialogue.few_shot)  # stored as resolved paths
    if max_failures is not None:
        cfg = cfg.model_copy(update={"max_failures": max_failures})
    return RunRequest(config=cfg, config_path=manifest.get("config_path"), run_dir=run_dir, principles=principles,
                      scenarios=scenarios, few_shot=few_shot, max_dialogues=manifest.get("max_dialogues"))


def describe_plan(request: RunRequest) -> str:
    """What ``--dry-run`` prints: the counts the config will produce, before any model call."""
    cfg = request.config
    lines = [
        f"run directory: {request.run_dir}",
        f"backend: {cfg.backend.kind}" + (f" ({cfg.backend.model})" if cfg.backend.model else ""),
        f"mode: {cfg.dialogue.mode}, up to {cfg.dialogue.max_turns} turns",
        f"principles in the set: {len(request.principles)}",
    ]
    if cfg.diasynth is not None:
        counts = expected_counts(cfg.diasynth, dialogues_per_scenario=cfg.jobs.dialogues_per_scenario)
        if request.max_dialogues is not None or cfg.jobs.max_dialogues is not None:
            cap = min(x for x in (request.max_dialogues, cfg.jobs.max_dialogues) if x is not None)
            counts = counts.model_copy(update={"dialogues": min(counts.dialogues, cap)})
        lines.append(f"diasynth expansion: {counts.describe()}")
        lines.append(f"(written scenarios: {len(request.scenarios)}; fewer if deduplication drops items)")
        return "\n".join(lines)
    jobs = list(iter_jobs(request))
    targeted = sum(1 for j in jobs if j.target_principles)
    per_principle: dict[str, int] = {}
    for job in jobs:
        for pid in job.target_principles:
            per_principle[pid] = per_principle.get(pid, 0) + 1
    lines += [
        f"scenarios: {len(request.scenarios)}",
        f"dialogues: {len(jobs)} ({targeted} with a planted violation, {len(jobs) - targeted} controls)",
        f"principles targeted: {len(per_principle)} (each {min(per_principle.values(), default=0)}"
        f"-{max(per_principle.values(), default=0)} times)",
    ]
    return "\n".join(lines)
