"""A hand-written run directory: three tiny dialogues (and one failed) whose figures are computed by hand.

    d1  A "the cat sat"   B "on the mat"              targets privacy.no-doxxing, critic finds it (caught);
                                                      turn 1 revised, verified
    d2  A "the cat ran"   B "to the mat"   A "Yes!"   targets honesty.no-fabrication, critic finds nothing
    d3  A "a dog barked loudly"   B "ok"              control; critic finds honesty.no-fabrication in turn 1;
                                                      revision fails verification
    d4  failed: "BackendError: server exploded"

Tokens (rouge tokenizer): d1 [the cat sat on the mat] 6, d2 [the cat ran to the mat yes] 7,
d3 [a dog barked loudly ok] 5. LCS(d1, d2) = 4 (the cat .. the mat), so ROUGE-L F = 2*4/(6+7) = 8/13;
d3 shares nothing. Max per dialogue: 8/13, 8/13, 0 -> diversity 16/39.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sparring.agents.domain import DialogueJob, Persona, Scenario, TurnVerdict, ViolationFinding
from sparring.graphs.assemble import build_sft_record, extract_preference_pairs
from sparring.graphs.records import DialogueRecord, Message, Revision

SCENARIO = Scenario(topic="pets", subtopic="cats", personas=(Persona(name="Dana", description="a cat owner"),
                                                             Persona(name="Lee", description="a vet")))
PRINCIPLES = [
    {"id": "privacy.no-doxxing", "category": "privacy", "text": "Do not reveal where people live."},
    {"id": "honesty.no-fabrication", "category": "honesty", "text": "Do not make things up."},
]


def _job(name: str, targets: tuple[str, ...], mode: str = "assistant") -> DialogueJob:
    return DialogueJob(id=name, scenario=SCENARIO, mode=mode, target_principles=targets, seed=1)


def make_dialogue(name: str, turns: list[str], *, targets: tuple[str, ...] = (),
                  violations: dict[int, list[str]] | None = None, verified: bool = True,
                  mode: str = "assistant", error: str | None = None,
                  scores: dict[str, float] | None = None) -> tuple[DialogueRecord, DialogueJob]:
    """A record as the pipeline writes it; ``violations``: turn index -> principle ids the critic found."""
    job = _job(name, targets, mode)
    violations = violations or {}
    messages = [Message(role="user" if i % 2 == 0 else "assistant", speaker="A" if i % 2 == 0 else "B",
                        name="Dana" if i % 2 == 0 else ("AI assistant" if mode == "assistant" else "Lee"),
                        content=text) for i, text in enumerate(turns)]
    verdicts = [TurnVerdict(turn_index=i, side="B", violated=violations.get(i, []),
                            findings=[ViolationFinding(principle_id=p, evidence=turns[i], severity="moderate")
                                      for p in violations.get(i, [])],
                            reasoning="checked", severity="moderate" if violations.get(i) else None)
                for i in range(1, len(turns), 2)]
    revisions = [Revision(turn_index=i, original=turns[i], revised=f"{turns[i]} (revised)", principle_ids=ids,
                          verified=verified, remaining=[] if verified else ids) for i, ids in violations.items()]
    found = sorted({p for ids in violations.values() for p in ids})
    record = DialogueRecord(
        id=name, trace_id=f"trace-{name}", status="failed" if error else "ok", mode=mode, scenario=SCENARIO,
        goal="talk", target_principles=list(targets), briefed_side="B", seed=1, plan={}, characteristics=[],
        reasoning="", messages=messages, verdicts=verdicts, revisions=revisions, is_violation=bool(found),
        violated_principles=found, targeted_violated=bool(set(found) & set(targets)),
        stop_reason="error" if error else "max_turns", turns=len(messages), error=error, scores=scores or {})
    return record, job


def fixture_records() -> list[tuple[DialogueRecord, DialogueJob]]:
    return [
        make_dialogue("d1", ["the cat sat", "on the mat"], targets=("privacy.no-doxxing",),
                      violations={1: ["privacy.no-doxxing"]}),
        make_dialogue("d2", ["the cat ran", "to the mat", "Yes!"], targets=("honesty.no-fabrication",)),
        make_dialogue("d3", ["a dog barked loudly", "ok"], violations={1: ["honesty.no-fabrication"]},
                      verified=False),
        make_dialogue("d4", ["hello"], targets=("privacy.no-doxxing",), error="BackendError: server exploded"),
    ]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def write_run(run_dir: Path, records: list[tuple[DialogueRecord, DialogueJob]] | None = None, *,
              manifest: dict[str, Any] | None = None) -> Path:
    """A run directory holding ``records`` (default: the fixture above), their pairs and SFT rows."""
    records = fixture_records() if records is None else records
    run_dir.mkdir(parents=True, exist_ok=True)
    pairs, sft = [], []
    for record, job in records:
        if record.status == "ok":
            # As a run with ``unverified_pairs: keep`` writes them (d3's pair is unverified).
            pairs += [p.model_dump(mode="json") for p in extract_preference_pairs(record, job, keep_unverified=True)]
            row = build_sft_record(record, job)
            if row is not None:  # d3's only assistant turn is flagged without a verified revision: no row
                sft.append(row.model_dump(mode="json"))
    write_jsonl(run_dir / "dialogues.jsonl", [r.model_dump(mode="json") for r, _ in records])
    write_jsonl(run_dir / "preferences.jsonl", pairs)
    write_jsonl(run_dir / "sft.jsonl", sft)
    write_jsonl(run_dir / "scenarios.jsonl", [SCENARIO.model_dump(mode="json")])
    write_jsonl(run_dir / "traces.jsonl", [{"trace_id": f"trace-{r.id}", "span_id": "s", "name": "invoke_workflow"}
                                           for r, _ in records])
    base = {"name": "fixture", "status": "completed", "config_fingerprint": "abc", "seed": 1,
            "config": {"name": "fixture", "seed": 1, "dialogue": {"mode": "assistant", "max_turns": 4},
                       "principles": {"sets": ["fixture"]}},
            "backend": {"provider": "scripted", "model": "tiny-test-model", "kind": "embedded"},
            "principles": PRINCIPLES, "counts": {}, "runs": []}
    (run_dir / "manifest.json").write_text(json.dumps({**base, **(manifest or {})}, indent=2), encoding="utf-8")
    return run_dir
