"""A run directory's totals, read back from the files written: what its manifest's ``counts`` hold.

One home for a run's end (graphs.runtime.pipeline) and a merge of shards (graphs.runtime.shard_merge), so a merged
directory counts exactly as a run of the same records would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .store import DIALOGUES, PREFERENCES, iter_jsonl

__all__ = ["run_totals"]


def run_totals(run_dir: Path, counters: dict[str, Any], *, keep_unverified: bool) -> dict[str, Any]:
    """Counts over the whole run directory (all attempts), read back from the files written; what the
    training rows left out is worked out again from the dialogues (graphs.assemble's rules)."""
    from sparring.graphs.assemble import DROP_REASONS, SFT_CUTS, STEPS, data_outcome
    from sparring.graphs.records import DialogueRecord

    dialogues = failed = violations = turns = 0
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
            "sft_cut_by_reason": sft_why, "failed_steps": steps,
            "this_attempt": counters}
