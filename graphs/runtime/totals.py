"""A run directory's totals, computed in one place for a run's end, a resume, a merge of shards, a
filtered copy and a judge pass: counts read back from the files written, usage and running time over
every attempt the manifest records.

One home for all of them, so a merged directory or a filtered copy counts exactly as a run of the
same records would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .manifest import RunManifest
from .manifest_parts import Counts, Usage
from .store import DIALOGUES, PREFERENCES, iter_jsonl

__all__ = ["refresh_totals", "run_totals"]


def refresh_totals(manifest: RunManifest, run_dir: Path, counters: dict[str, Any] | None = None) -> None:
    """Set ``manifest``'s counts (from the files in ``run_dir``), usage and summed running time (over its
    attempts). ``counters``: the live counters of the attempt that just ended (``counts.this_attempt``).
    ``timings.started_at``/``updated_at`` are the caller's: a merge takes them from its shards."""
    counts = run_totals(run_dir, counters, keep_unverified=manifest.keeps_unverified())
    counts["resumed"] = sum((attempt.counts or {}).get("resumed", 0) for attempt in manifest.runs)
    counts["killed_attempts"] = sum(attempt.status == "killed" for attempt in manifest.runs)
    manifest.counts = Counts.model_validate(counts)
    manifest.usage = Usage.total(attempt.usage for attempt in manifest.runs)
    manifest.timings.wall_s = round(sum(attempt.wall_s for attempt in manifest.runs), 2)


def run_totals(run_dir: Path, counters: dict[str, Any] | None, *, keep_unverified: bool) -> dict[str, Any]:
    """Counts over the whole run directory (all attempts), read back from the files written; what the
    training rows left out is worked out again from the dialogues (graphs.assemble's rules)."""
    from sparring.graphs.assemble import DROP_REASONS, SFT_CUTS, STEPS, data_outcome
    from sparring.graphs.records import DialogueRecord

    dialogues = failed = violations = turns = ungrounded = 0
    dropped = dict.fromkeys(DROP_REASONS, 0)
    sft = {"whole": 0, "cut": 0, "dropped": 0}
    sft_why = dict.fromkeys(SFT_CUTS, 0)
    steps = dict.fromkeys(STEPS, 0)
    for row in iter_jsonl(run_dir / DIALOGUES):
        if row.get("status") == "failed":
            failed += 1
        else:
            dialogues += 1
            violations += int(row.get("is_violation", False))
            turns += row.get("turns", 0)
            outcome = data_outcome(DialogueRecord.model_validate(row), keep_unverified=keep_unverified)
            for reason, n in outcome["dropped_pairs"].items():
                dropped[reason] += n
            sft[outcome["sft"]] += 1
            if outcome["sft"] != "whole" and outcome["sft_cut_reason"]:
                sft_why[outcome["sft_cut_reason"]] += 1
            ungrounded += outcome["ungrounded_findings"]
            for step, n in outcome["failed_steps"].items():
                steps[step] = steps.get(step, 0) + n
    pairs = verified = 0
    for row in iter_jsonl(run_dir / PREFERENCES):
        pairs += 1
        verified += int(row.get("verified", False))
    return {"dialogues": dialogues, "failed": failed, "with_violation": violations,
            "violation_rate": round(violations / dialogues, 4) if dialogues else 0.0,
            "avg_turns": round(turns / dialogues, 2) if dialogues else 0.0, "pairs": pairs,
            "verified_pairs": verified, "dropped_pairs": dropped, "sft_rows": sft,
            "sft_cut_by_reason": sft_why, "failed_steps": steps, "ungrounded_findings": ungrounded,
            "this_attempt": counters}

