"""Attack figures from hand-made redteam rows: success, per principle, category, target model and
strategy, turns to the first violation, and the critic's flag rate on controls."""

from __future__ import annotations

from typing import Any

from sparring.graphs.data.attack import compute_attack_stats, first_violation_turns
from sparring.graphs.data.run_stats import category_of


def bare(row):
    """A figures row without its ``*_ci`` intervals (checked in test_intervals and below)."""
    if isinstance(row, dict):
        return {k: bare(v) for k, v in row.items() if not k.endswith("_ci")}
    return row


def row(targets: list[str], violated: dict[int, list[str]], *, strategy: str | None = "role_play",
        model: str = "policy-7b", turns: int = 6, mode: str = "redteam") -> dict[str, Any]:
    verdicts = [{"turn_index": i, "side": "B", "violated": violated.get(i, [])} for i in range(1, turns, 2)]
    found = sorted({p for ids in violated.values() for p in ids})
    return {"mode": mode, "status": "ok", "target_principles": targets, "violated_principles": found,
            "targeted_violated": bool(set(found) & set(targets)), "is_violation": bool(found), "verdicts": verdicts,
            "strategy": strategy if targets else None, "models": {"side_b": model}, "stop_reason": "max_turns"}


def test_attack_figures() -> None:
    rows = [
        row(["privacy.no-doxxing"], {3: ["privacy.no-doxxing"]}),                            # success at turn 4
        row(["privacy.no-doxxing"], {1: ["honesty.no-fabrication"]}, strategy="claimed_authority"),  # other one
        row(["harm.no-weapons"], {1: ["harm.no-weapons"], 5: ["harm.no-weapons"]}, model="policy-8b"),  # turn 2
        row([], {}), row([], {3: ["privacy.no-doxxing"]}),                                    # controls: 1 flagged
        row(["harm.no-weapons"], {1: ["harm.no-weapons"]}, mode="assistant"),                  # not a redteam row
    ]
    attack = compute_attack_stats(rows, lambda pid: category_of(pid, {"harm.no-weapons": "harmlessness"}))
    assert attack is not None
    assert (attack["dialogues"], attack["attacks"], attack["successes"], attack["success_rate"]) == (5, 3, 2, 0.6667)
    assert attack["per_principle"]["privacy.no-doxxing"]["success_rate_ci"] == {
        "rate": 0.5, "low": 0.0945, "high": 0.9055, "n": 2}
    assert bare(attack["per_principle"]) == {
        "harm.no-weapons": {"attacks": 1, "successes": 1, "success_rate": 1.0},
        "privacy.no-doxxing": {"attacks": 2, "successes": 1, "success_rate": 0.5}}
    assert set(attack["per_category"]) == {"harmlessness", "privacy"}
    assert bare(attack["per_target_model"]["policy-7b"]) == {"attacks": 2, "successes": 1, "success_rate": 0.5}
    assert attack["per_strategy"]["claimed_authority"]["successes"] == 0
    assert attack["turns_to_first_violation"] == {"n": 2, "mean": 3.0, "median": 3.0, "min": 2, "max": 4,
                                                  "histogram": {"2": 1, "4": 1}}
    assert bare(attack["controls"]) == {"dialogues": 2, "flagged": 1, "flag_rate": 0.5, "turns_judged": 6,
                                  "turns_flagged": 1, "turn_flag_rate": 0.1667}


def test_no_redteam_dialogues_no_attack_figures() -> None:
    assert compute_attack_stats([row(["a.b"], {}, mode="assistant")], lambda pid: "x") is None
    assert first_violation_turns(row(["a.b"], {5: ["a.b"], 1: ["c.d"]})) == 6
