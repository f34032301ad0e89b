"""Turning a config (or an existing run directory) into a RunRequest, checking everything first.

All of this runs before any directory is created or model started, so bad
input costs nothing and leaves nothing behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agents.types import Scenario
from principles.model import Principle
from principles.yamlfile import InputError

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
    if not scenarios:
        raise InputError("no scenarios: list them under 'scenarios:'", source=str(config_path), field="scenarios")
    if cfg.jobs.principles_per_dialogue and not principles:
        raise InputError("the principle selection is empty", source=str(config_path), field="principles")
    return RunRequest(config=cfg, config_path=str(config_path), run_dir=cfg.run_dir(), principles=principles,
                      scenarios=scenarios, max_dialogues=max_dialogues, force=force)


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
    if max_failures is not None:
        cfg = cfg.model_copy(update={"max_failures": max_failures})
    return RunRequest(config=cfg, config_path=manifest.get("config_path"), run_dir=run_dir, principles=principles,
                      scenarios=scenarios, max_dialogues=manifest.get("max_dialogues"))


def describe_plan(request: RunRequest) -> str:
    """What ``--dry-run`` prints: the counts the config will produce, before any model call."""
    jobs = list(iter_jobs(request))
    targeted = sum(1 for j in jobs if j.target_principles)
    per_principle: dict[str, int] = {}
    for job in jobs:
        for pid in job.target_principles:
            per_principle[pid] = per_principle.get(pid, 0) + 1
    cfg = request.config
    lines = [
        f"run directory: {request.run_dir}",
        f"backend: {cfg.backend.kind}" + (f" ({cfg.backend.model})" if cfg.backend.model else ""),
        f"mode: {cfg.dialogue.mode}, up to {cfg.dialogue.max_turns} turns",
        f"scenarios: {len(request.scenarios)}",
        f"principles in the set: {len(request.principles)}",
        f"dialogues: {len(jobs)} ({targeted} with a planted violation, {len(jobs) - targeted} controls)",
        f"principles targeted: {len(per_principle)} (each {min(per_principle.values(), default=0)}"
        f"-{max(per_principle.values(), default=0)} times)",
    ]
    return "\n".join(lines)
