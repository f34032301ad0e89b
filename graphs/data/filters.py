"""Filters over a run's rows: which dialogues and pairs a filtered copy keeps.

Dialogue filters run in a fixed order (ok status, turns, violation, then
near-duplicates among what is left, so a dropped dialogue never decides which
of two duplicates stays); pairs, SFT rows and scenarios follow the dialogues
they belong to, and pairs may additionally be restricted to verified ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .run_stats import NEAR_DUPLICATE_THRESHOLD, dialogue_text
from .rundata import Row, RunData


@dataclass(frozen=True)
class FilterSpec:
    """What a filtered copy keeps."""

    only_verified: bool = False
    """Keep only pairs whose revision the verifier found clean."""
    only_violations: bool = False
    """Keep only dialogues in which the critic confirmed a violation (``is_violation``)."""
    min_turns: int | None = None
    max_turns: int | None = None
    dedup_threshold: float | None = None
    """Drop dialogues whose embedding cosine to an earlier kept one is at least this; None keeps them."""

    def is_empty(self) -> bool:
        return self == FilterSpec()

    def describe(self) -> list[str]:
        """One line per active filter, for the manifest and the dataset card."""
        lines = ["failed dialogues removed"]
        if self.min_turns is not None or self.max_turns is not None:
            upper = self.max_turns if self.max_turns is not None else "any"
            lines.append(f"turns within [{self.min_turns or 0}, {upper}]")
        if self.only_violations:
            lines.append("only dialogues with a violation confirmed by the critic")
        if self.dedup_threshold is not None:
            lines.append(f"near-duplicate dialogues removed (embedding cosine >= {self.dedup_threshold}, first kept)")
        if self.only_verified:
            lines.append("only preference pairs whose revision passed verification")
        return lines


@dataclass
class FilterResult:
    dialogues: list[Row]
    pairs: list[Row]
    sft: list[Row]
    scenarios: list[Row]
    removed: dict[str, int] = field(default_factory=dict)
    """Dialogues (or pairs, for ``unverified_pairs``) removed, by the filter that removed them."""
    near_duplicates: list[dict[str, Any]] = field(default_factory=list)
    """``{id, duplicate_of, similarity}`` of each dialogue removed as a near-duplicate."""


def filter_ok(dialogues: Iterable[Row]) -> list[Row]:
    return [d for d in dialogues if d.get("status", "ok") == "ok"]


def filter_turns(dialogues: Iterable[Row], min_turns: int | None = None, max_turns: int | None = None) -> list[Row]:
    """Dialogues with at least ``min_turns`` and at most ``max_turns`` turns (None: no bound)."""
    def fits(d: Row) -> bool:
        n = len(d.get("messages") or [])
        return (min_turns is None or n >= min_turns) and (max_turns is None or n <= max_turns)

    return [d for d in dialogues if fits(d)]


def filter_violations(dialogues: Iterable[Row]) -> list[Row]:
    """Dialogues in which the critic found at least one violation."""
    return [d for d in dialogues if d.get("is_violation")]


def filter_verified_pairs(pairs: Iterable[Row]) -> list[Row]:
    return [p for p in pairs if p.get("verified")]


def filter_near_duplicates(dialogues: Sequence[Row], threshold: float = NEAR_DUPLICATE_THRESHOLD,
                           embedder: Any = None) -> tuple[list[Row], list[dict[str, Any]]]:
    """(kept, removed): a dialogue is removed when its embedding cosine to an earlier kept dialogue is at
    least ``threshold``; the first of a group stays."""
    if len(dialogues) < 2:
        return list(dialogues), []
    from sparring.diasynth_agents.dedup import default_embedder

    from .similarity import find_near_duplicates

    vectors = (embedder or default_embedder()).encode([dialogue_text(d) for d in dialogues])
    dropped = find_near_duplicates(vectors, threshold)
    removed = [{"id": dialogues[row]["id"], "duplicate_of": dialogues[match]["id"], "similarity": round(sim, 4)}
               for row, (match, sim) in sorted(dropped.items())]
    return [d for i, d in enumerate(dialogues) if i not in dropped], removed


def filter_by_dialogue(rows: Iterable[Row], dialogue_ids: set[str]) -> list[Row]:
    """Pairs or SFT rows that belong to one of ``dialogue_ids``."""
    return [r for r in rows if r.get("dialogue_id") in dialogue_ids]


def apply_filters(run: RunData, spec: FilterSpec, *, embedder: Any = None) -> FilterResult:
    """Every file's rows as ``spec`` keeps them."""
    removed: dict[str, int] = {}

    def step(name: str, before: list[Row], after: list[Row]) -> list[Row]:
        if len(after) != len(before):
            removed[name] = len(before) - len(after)
        return after

    dialogues = step("failed", run.dialogues, filter_ok(run.dialogues))
    if spec.min_turns is not None or spec.max_turns is not None:
        dialogues = step("turns", dialogues, filter_turns(dialogues, spec.min_turns, spec.max_turns))
    if spec.only_violations:
        dialogues = step("no_violation", dialogues, filter_violations(dialogues))
    near: list[dict[str, Any]] = []
    if spec.dedup_threshold is not None:
        kept, near = filter_near_duplicates(dialogues, spec.dedup_threshold, embedder)
        dialogues = step("near_duplicate", dialogues, kept)
    ids = {d["id"] for d in dialogues}
    pairs = filter_by_dialogue(run.pairs, ids)
    if spec.only_verified:
        pairs = step("unverified_pairs", pairs, filter_verified_pairs(pairs))
    scenario_ids = {(d.get("scenario") or {}).get("id") for d in dialogues}
    return FilterResult(dialogues=dialogues, pairs=pairs, sft=filter_by_dialogue(run.sft, ids),
                        scenarios=[s for s in run.scenarios if s.get("id") in scenario_ids], removed=removed,
                        near_duplicates=near)


def spec_as_dict(spec: FilterSpec) -> dict[str, Any]:
    return {k: v for k, v in asdict(spec).items() if v not in (None, False)}
