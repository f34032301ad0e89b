"""The rows of each export format, built from a run's rows and validated before anything is written.

Formats (``--format``):

- ``trl-dpo``: ``prompt`` / ``chosen`` / ``rejected`` (TRL conversational preference rows).
- ``trl-kto``: ``prompt`` / ``completion`` / ``label``, both sides of every pair (TRL's
  ``unpair_preference_dataset`` shape): the revision labelled True, the original False.
- ``sft``: ``messages`` (the dialogue from the judged side, verified revisions applied).
- ``summarization``: ``dialogue`` / ``summary`` (DiaSynth's downstream task; needs ``dialogue.summaries``).
- ``hf`` / ``parquet``: three tables with their metadata columns: ``preferences``, ``sft``
  and ``dialogues`` (flattened for Arrow), as a ``datasets`` folder or Parquet files.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sparring.diasynth_agents.summaries import summarization_rows

from .rundata import Row, RunData
from .validate import (
    Problem,
    validate_dialogue_row,
    validate_dpo_row,
    validate_kto_row,
    validate_pair_against_dialogue,
    validate_rows,
    validate_sft_against_dialogue,
    validate_sft_row,
    validate_summarization_row,
)

JSONL_FORMATS = ("trl-dpo", "trl-kto", "sft", "summarization")
TABLE_FORMATS = ("hf", "parquet")
FORMATS = (*JSONL_FORMATS, *TABLE_FORMATS)


@dataclass
class ExportTable:
    """One dataset of an export: its valid rows and the rows that failed validation."""

    name: str
    """``train`` for the single-table formats; ``preferences`` / ``sft`` / ``dialogues`` otherwise."""
    rows: list[Row]
    problems: list[Problem] = field(default_factory=list)
    checked: int = 0
    """Rows validated (valid + failed)."""


def extract_dpo_rows(pairs: Iterable[Mapping[str, Any]]) -> list[Row]:
    return [{"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in pairs]


def extract_kto_rows(pairs: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Two unpaired rows per pair: the revision as desirable, the original as undesirable."""
    rows = []
    for p in pairs:
        rows.append({"prompt": p["prompt"], "completion": p["chosen"], "label": True})
        rows.append({"prompt": p["prompt"], "completion": p["rejected"], "label": False})
    return rows


def maybe_trim_unanswered(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Drop trailing user turns: nobody answers them, so there is nothing to learn from them."""
    out = [dict(m) for m in messages]
    while out and out[-1].get("role") == "user":
        out.pop()
    return out


def extract_dialogue_table(dialogues: Iterable[Mapping[str, Any]]) -> list[Row]:
    """Dialogue records flattened to Arrow-friendly columns (free-form ``plan`` as JSON text)."""
    rows = []
    for d in dialogues:
        scenario = d.get("scenario") or {}
        rows.append({
            "id": d["id"], "mode": d.get("mode"), "topic": scenario.get("topic"), "subtopic": scenario.get("subtopic"),
            "personas": [{"name": p.get("name", ""), "description": p.get("description", "")}
                         for p in scenario.get("personas") or []],
            "goal": d.get("goal"), "messages": d.get("messages") or [],
            "target_principles": d.get("target_principles") or [],
            "violated_principles": d.get("violated_principles") or [], "is_violation": bool(d.get("is_violation")),
            "targeted_violated": bool(d.get("targeted_violated")), "revisions": d.get("revisions") or [],
            "characteristics": d.get("characteristics") or [], "stop_reason": d.get("stop_reason"),
            "turns": d.get("turns"), "summary": d.get("summary"),
            "scores": json.dumps(d.get("scores") or {}), "plan": json.dumps(d.get("plan") or {}),
            "few_shot_id": d.get("few_shot_id"), "seed": d.get("seed"), "trace_id": d.get("trace_id"),
            "models": json.dumps(d.get("models") or {}), "strategy": d.get("strategy"),
        })
    return rows


def _checked_pairs(run: RunData, include_unverified: bool) -> tuple[list[Row], list[Problem]]:
    """Pairs that pass the preference rules and the data rules against their dialogue (prompt free of
    unfixed flagged turns, rejected as spoken, verified unless ``include_unverified``)."""
    dialogues = {d["id"]: d for d in run.dialogues}

    def check(pair: Row) -> list[str]:
        return validate_dpo_row(pair) or validate_pair_against_dialogue(
            pair, dialogues.get(pair.get("dialogue_id")), include_unverified=include_unverified)

    report = validate_rows(run.pairs, check, ids=[p.get("id") for p in run.pairs])
    return report.valid, report.problems


def _table(name: str, rows: list[Row], check: Callable[[Row], list[str]], ids: Sequence[str | None] | None,
           earlier: Sequence[Problem] = (), checked: int | None = None) -> ExportTable:
    report = validate_rows(rows, check, ids=ids)
    problems = [*earlier, *report.problems]
    return ExportTable(name, report.valid, problems, checked if checked is not None else len(rows))


def _sft_check(run: RunData) -> Callable[[Row], list[str]]:
    dialogues = {d["id"]: d for d in run.dialogues}

    def check(row: Row) -> list[str]:
        return validate_sft_row(row) or validate_sft_against_dialogue(row, dialogues.get(row.get("dialogue_id")))

    return check


def build_export(run: RunData, fmt: str, *, include_unverified: bool = False) -> list[ExportTable]:
    """The validated tables of ``fmt`` for ``run``; failed dialogues are never exported, unverified pairs
    only with ``include_unverified``, and no flagged turn without its verified revision ever is."""
    ok = run.ok_dialogues
    if fmt == "trl-dpo":
        pairs, problems = _checked_pairs(run, include_unverified)
        return [_table("train", extract_dpo_rows(pairs), validate_dpo_row, [p["id"] for p in pairs], problems,
                       len(run.pairs))]
    if fmt == "trl-kto":
        pairs, problems = _checked_pairs(run, include_unverified)
        ids = [f"{p['id']}:{side}" for p in pairs for side in ("chosen", "rejected")]
        return [_table("train", extract_kto_rows(pairs), validate_kto_row, ids, problems, len(run.pairs))]
    ok_ids = {d["id"] for d in ok}
    sft = [r for r in run.sft if r.get("dialogue_id") in ok_ids]
    if fmt == "sft":
        rows = [{**r, "messages": maybe_trim_unanswered(r["messages"])} for r in sft]
        report = validate_rows(rows, _sft_check(run), ids=[r.get("id") for r in sft])
        return [ExportTable("train", [{"messages": r["messages"]} for r in report.valid], report.problems, len(rows))]
    if fmt == "summarization":
        with_summary = [d for d in ok if (d.get("summary") or "").strip()]
        return [_table("train", list(summarization_rows(with_summary)), validate_summarization_row,
                       [d["id"] for d in with_summary])]
    if fmt in TABLE_FORMATS:
        pairs, problems = _checked_pairs(run, include_unverified)
        # Arrow cannot store a struct without fields: rows made without role provenance leave ``models`` out.
        pairs = [{k: v for k, v in p.items() if k != "models" or v} for p in pairs]
        sft_rows = [{**r, "messages": maybe_trim_unanswered(r["messages"])} for r in sft]
        return [
            _table("preferences", pairs, validate_dpo_row, [p["id"] for p in pairs], problems, len(run.pairs)),
            _table("sft", sft_rows, _sft_check(run), [r.get("id") for r in sft_rows]),
            _table("dialogues", extract_dialogue_table(ok), validate_dialogue_row, [d["id"] for d in ok]),
        ]
    raise ValueError(f"unknown export format {fmt!r}; known: {', '.join(FORMATS)}")
