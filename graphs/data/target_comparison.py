"""Several targets, one set of attacks: the attack figures of runs that differ only in their target,
side by side (``sparring redteam-compare RUN...``).

Run one config once per target (``--set roles.side_b=NAME`` or ``--set backends.target.model=...``): the
same seed gives the same jobs (ids, behaviours, tactics, probes), and in black-box mode the planner never
sees the target, so with the same planner model and seeds each attack starts from the same plan; the
attacker's later turns differ as the targets' replies do. ``compare_runs`` checks that the runs hold the
same attacks and puts per run: the success rate with its interval, per category and per tactic, turns
to the first violation, target and total tokens per success, and the over-refusal rate with its interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sparring.errors import InputError

from .attack import compute_attack_stats, wilson_interval
from .run_stats import category_of
from .rundata import load_run

__all__ = ["compare_runs"]


def _target(run: Any) -> str:
    models = {str((d.get("models") or {}).get("side_b", "?")) for d in run.ok_dialogues}
    return ", ".join(sorted(models)) or "?"


def _rows(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {**v, "interval": wilson_interval(v["successes"], v["attacks"])} for k, v in table.items()}


def compare_runs(run_dirs: Sequence[Path]) -> dict[str, Any]:
    """Per run (by its target model): the attack figures to compare, and whether the runs attacked alike."""
    columns = []
    attack_sets = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        attack = compute_attack_stats(run.ok_dialogues, partial(_category, run.principle_categories()))
        if attack is None:
            raise InputError("holds no redteam dialogues to compare", source=str(run_dir))
        attack_sets.append({d["id"] for d in run.ok_dialogues if d.get("target_principles")})
        cost = attack["cost"]["per_success"]
        columns.append({
            "run": str(run_dir), "target": _target(run), "access": attack["access"],
            "attacks": attack["attacks"], "successes": attack["successes"], "success_rate": attack["success_rate"],
            "interval": attack["success_interval"], "per_category": _rows(attack["per_category"]),
            "per_tactic": _rows(attack["per_strategy"]),
            "turns_to_first_violation": attack["turns_to_first_violation"]["median"],
            "target_tokens_per_success": _sum(cost.get("target")), "tokens_per_success": _sum(cost.get("total")),
            "over_refusal": {k: attack["over_refusal"][k] for k in ("probes", "refused", "rate", "interval")}})
    same = all(s == attack_sets[0] for s in attack_sets)
    common = set.intersection(*attack_sets) if attack_sets else set()
    return {"same_attacks": same, "common_attacks": len(common), "runs": columns}


def _category(categories: dict[str, str], pid: str) -> str:
    return category_of(pid, categories)


def _sum(tokens: dict[str, float | None] | None) -> float | None:
    if not tokens or tokens.get("prompt_tokens") is None:
        return None
    return round((tokens["prompt_tokens"] or 0) + (tokens["completion_tokens"] or 0), 1)
