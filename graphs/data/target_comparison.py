"""Several targets, one set of attacks: the attack figures of each target, side by side.

Two ways to get them, one table:

- one run with several targets (``roles.side_b: [base, tuned]``): every attack is planned once and
  played against each target; ``attack_figures`` gives the run's figures with ``targets``, one column
  per target (stats.json, the report, ``sparring stats``);
- runs of one config that differ only in their target (``--set roles.side_b=NAME``): the same seed
  gives the same jobs, and in black-box mode each attack starts from the same plan; ``compare_runs``
  puts one column per run (and per target of a run that has several; ``sparring redteam-compare``).

A column holds: the success rate with its 95% interval, per category and per tactic, the median turns
to the first violation, target tokens and all tokens but the planner's per success (the plan is the
same for every target, and with several targets in one run only one copy of an attack pays for it),
and the over-refusal rate with its interval.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from sparring.agents.domain import TARGET_MARK
from sparring.errors import InputError

from .attack import compute_attack_stats, wilson_interval
from .rundata import Row, load_run

__all__ = ["attack_figures", "attack_id", "column_label", "compare_runs", "comparison_rows", "target_columns",
]


def attack_id(dialogue: Mapping[str, Any]) -> str:
    """The attack a record is a copy of: its id without ``@<target>``."""
    target = dialogue.get("target")
    return str(dialogue["id"]).removesuffix(f"{TARGET_MARK}{target}") if target else str(dialogue["id"])


def _model(dialogues: Sequence[Row]) -> str:
    models = {str((d.get("models") or {}).get("side_b", "?")) for d in dialogues}
    return ", ".join(sorted(models)) or "?"


def _rows(table: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {k: {**v, "interval": wilson_interval(v["successes"], v["attacks"])} for k, v in table.items()}


def _column(dialogues: Sequence[Row], category: Callable[[str], str], **label: str) -> dict[str, Any] | None:
    """The figures of one target's dialogues; None when none is a redteam dialogue."""
    attack = compute_attack_stats(dialogues, category)
    if attack is None:
        return None
    cost = attack["cost"]["per_success"]
    planner = cost.get("planner")
    return {
        **label, "access": attack["access"],
        "attacks": attack["attacks"], "successes": attack["successes"], "success_rate": attack["success_rate"],
        "interval": attack["success_interval"], "per_category": _rows(attack["per_category"]),
        "per_tactic": _rows(attack["per_strategy"]),
        "turns_to_first_violation": attack["turns_to_first_violation"]["median"],
        "target_tokens_per_success": _sum(cost.get("target")),
        "tokens_per_success": _less(_sum(cost.get("total")), _sum(planner)),
        "over_refusal": {k: attack["over_refusal"][k] for k in ("probes", "refused", "rate", "interval")}}


def target_columns(dialogues: Sequence[Row], category: Callable[[str], str],
                   order: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One column per target of a run with several (records' ``target``; in ``order``, then by name);
    empty when the run has one target."""
    by_target: dict[str, list[Row]] = {}
    for d in dialogues:
        if d.get("target"):
            by_target.setdefault(str(d["target"]), []).append(d)
    if len(by_target) < 2:
        return []
    rank = {name: i for i, name in enumerate(order)}
    names = sorted(by_target, key=lambda name: (rank.get(name, len(rank)), name))
    columns = [_column(by_target[name], category, target=name, model=_model(by_target[name])) for name in names]
    return [c for c in columns if c is not None]


def attack_figures(dialogues: Sequence[Row], category: Callable[[str], str],
                   order: Sequence[str] = ()) -> dict[str, Any] | None:
    """The run's attack figures (``graphs.data.attack``) and, with several targets, ``targets``: one
    comparison column per target (``target_columns``, in ``order``: the run's ``RunManifest.targets()``) and
    whether they hold the same attacks."""
    attack = compute_attack_stats(dialogues, category)
    if attack is None:
        return None
    ok = [d for d in dialogues if d.get("status", "ok") == "ok"]
    columns = target_columns(ok, category, order)
    if columns:
        sets = [{attack_id(d) for d in ok if d.get("target") == c["target"] and d.get("target_principles")}
                for c in columns]
        attack["targets"] = {"same_attacks": all(s == sets[0] for s in sets),
                             "common_attacks": len(set.intersection(*sets)), "columns": columns}
    return attack


def compare_runs(run_dirs: Sequence[Path]) -> dict[str, Any]:
    """Per run (by its target model; a run with several targets, per target): the attack figures to
    compare, and whether the columns attacked alike (the same attack ids)."""
    columns = []
    attack_sets = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        category = partial(_category, run.principle_categories())
        several = target_columns(run.ok_dialogues, category, run.manifest.targets())
        if several:
            for column in several:
                columns.append({**column, "run": str(run_dir)})
                attack_sets.append({attack_id(d) for d in run.ok_dialogues
                                    if d.get("target") == column["target"] and d.get("target_principles")})
            continue
        single = _column(run.ok_dialogues, category, run=str(run_dir), target=_model(run.ok_dialogues))
        if single is None:
            raise InputError("holds no redteam dialogues to compare", source=str(run_dir))
        columns.append(single)
        attack_sets.append({attack_id(d) for d in run.ok_dialogues if d.get("target_principles")})
    same = all(s == attack_sets[0] for s in attack_sets)
    common = set.intersection(*attack_sets) if attack_sets else set()
    return {"same_attacks": same, "common_attacks": len(common), "runs": columns}


def _rate(row: dict[str, Any] | None) -> str:
    """``40% [17-69%] (4/10)``: a success or over-refusal row with its interval; ``-`` when there is none."""
    if not row or row.get("attacks", row.get("probes")) in (0, None):
        return "-"
    hits, n = row.get("successes", row.get("refused")), row.get("attacks", row.get("probes"))
    lo, hi = row["interval"]
    return f"{(row.get('success_rate', row.get('rate')) or 0):.0%} [{lo:.0%}-{hi:.0%}] ({hits}/{n})"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:g}"


def column_label(column: Mapping[str, Any]) -> str:
    """A column's heading: ``base: my-org/policy-7b (black-box)`` (a target of a run with several), or
    the target model of a run and its access."""
    model = column.get("model")
    name = f"{column['target']}: {model}" if model and model != column["target"] else str(column["target"])
    return f"{name} ({column['access']})"


def comparison_rows(columns: Sequence[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """The comparison table as text, one row per figure (label, one cell per column): what
    ``sparring redteam-compare``, ``sparring stats`` and the report show."""
    rows = [("attack success", [_rate(c) for c in columns])]
    for key, label in (("per_category", "category"), ("per_tactic", "tactic")):
        for name in sorted({k for c in columns for k in c[key]}):
            rows.append((f"{label}: {name}", [_rate(c[key].get(name)) for c in columns]))
    rows += [("turns to first violation (median)", [_number(c["turns_to_first_violation"]) for c in columns]),
             ("target tokens per success", [_number(c["target_tokens_per_success"]) for c in columns]),
             ("tokens per success, planner aside", [_number(c["tokens_per_success"]) for c in columns]),
             ("over-refusal", [_rate(c["over_refusal"]) for c in columns])]
    return rows


def _category(categories: dict[str, str], pid: str) -> str:
    from .run_stats import category_of  # run_stats computes its figures here: imported when used

    return category_of(pid, categories)


def _sum(tokens: dict[str, float | None] | None) -> float | None:
    if not tokens or tokens.get("prompt_tokens") is None:
        return None
    return round((tokens["prompt_tokens"] or 0) + (tokens["completion_tokens"] or 0), 1)


def _less(total: float | None, part: float | None) -> float | None:
    return None if total is None else round(total - (part or 0), 1)
