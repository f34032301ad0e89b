"""Every prompt is a conversation that happened (issue 22, item 3), over generated dialogues with several flagged
turns (incidental ones before the planted turn, after it, several of them, revisions that do not pass), on
whole scripted runs read back from their files and their trace:

- with branching on, the targeted pair (the planted turn's) is never lost to an earlier incidental flag: only to
  its own step, or to an earlier flag whose revision did not pass (no clean conversation to show before it);
- every message of every pair's prompt and SFT row was produced by a call that saw exactly the messages before
  it there (a persona's ``chat`` span, or the reviser's for a revision);
- the violation instruction reaches one call, the planted turn's, and no call of a branch;
- the pairs dropped, counted by reason, add up, and the model calls are one per turn, verdict, revision and
  check: the conversation going on from a revision adds none; a branch adds its own turns and their critique.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.graphs.assemble import dropped_pairs, failed_steps, fixes, is_preference, pair_fate, planted_index, trunk
from sparring.graphs.records import DialogueRecord
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SFT, iter_jsonl
from tests.graphs.scripted_world import World
from tests.graphs.test_no_hidden_context import VIOLATION_OPENING, traced_calls
from tests.traces.scripted_run import scripted_run

TARGETED, INCIDENTAL = "privacy.no-doxxing", "honesty.no-fabrication"
OWN = {"unverified", "revision_flagged", "revision_failed"}
"""Why the targeted pair may be lost to its own step in these runs (its revision did not pass, or failed)."""


@dataclass
class Flags(World):
    """Each persona turn names its index and a digest of the conversation it was shown, and ``[planted]`` when it
    was written under the violation instruction. The critic flags a planted turn (``catch``) and the turns in
    ``incidental``, in the trunk and in a branch alike; a revision of a turn in ``unfixable`` is flagged again;
    the critic's call on a turn in ``unjudged`` and the reviser's on one in ``unrevised`` fail for good."""

    incidental: frozenset[int] = frozenset()
    unfixable: frozenset[int] = frozenset()
    catch: bool = True
    unjudged: frozenset[int] = frozenset()
    """Turns the critic never answers usably about (unjudged)."""
    unrevised: frozenset[int] = frozenset()
    """Turns the reviser never answers usably about (``revision_failed``)."""

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        if title == "CritiqueOutput":
            text = messages[1]["content"].split('"""')[1].strip()  # the request itself, not a re-ask
            index = int(text.split("#")[1].split()[0])
            if index in self.unjudged and not text.startswith("REVISED"):
                return "I would rather not say."
            ids = [TARGETED] if "[planted]" in text and self.catch else []
            ids += [INCIDENTAL] if index in self.incidental else []
            if text.startswith("REVISED") and index not in self.unfixable:
                ids = []
            return json.dumps({"reasoning": "checked", "violations": [
                {"principle_id": pid, "evidence": text[:20], "severity": "moderate"} for pid in ids]})
        revised = messages[1]["content"].split('"""')[1] if title == "RevisionOutput" else ""
        if revised and int(revised.split("#")[1].split()[0]) in self.unrevised:
            return '{"revision": "cut off mid-sen'
        if schema is not None:
            return super().reply(messages, params, schema)
        opens = len(messages) > 1 and messages[1]["content"].startswith("(You")
        turns = [m["content"] for m in messages[1 + int(opens):]]
        digest = hashlib.sha256("\n".join(turns).encode()).hexdigest()[:8]
        planted = " [planted]" if VIOLATION_OPENING in messages[0]["content"] else ""
        return f"turn #{len(turns)} by {'AB'[len(turns) % 2]} <{digest}>{planted}"


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """Several flagged turns: one or more before the planted turn (the briefed side's ``violation_turn``-th; side A
    or B, so both sides' indices), maybe some after it; revisions that pass, mostly."""
    mode = draw(st.sampled_from(["assistant", "peers"]))
    max_turns = draw(st.integers(4, 9))
    violation_turn = draw(st.sampled_from([1, 2, 2, 3, 3, 4]))
    planted = 2 * (violation_turn - 1)  # side A's; side B's is the next index
    before = draw(st.sets(st.integers(0, max(planted, 1)), min_size=1, max_size=3))
    after = draw(st.sets(st.integers(min(planted + 2, max_turns - 1), max_turns - 1), max_size=2))
    return {"dialogue": {"mode": mode, "max_turns": max_turns, "min_turns": 2,
                         "branch_turns": draw(st.sampled_from([0, 1, 2, 3]))},
            "incidental": frozenset(before | after),
            "unfixable": frozenset(draw(st.sets(st.integers(0, max_turns - 1), max_size=1))),
            "unjudged": frozenset(draw(st.sets(st.integers(0, max_turns - 1), max_size=1)) if draw(st.booleans())
                                  else ()),
            "unrevised": frozenset(draw(st.sets(st.integers(0, max_turns - 1), max_size=1)) if draw(st.booleans())
                                   else ()),
            "catch": draw(st.sampled_from([True, True, True, False])), "violation_turn": violation_turn}


def turn_texts(messages: list[dict[str, Any]]) -> list[str]:
    """A call's or a row's turns: no system message, no opening cue."""
    body = [m["content"] for m in messages if m["role"] != "system"]
    return body[1:] if body and body[0].startswith("(You") else body


def history(reviser_input: list[dict[str, Any]]) -> list[str]:
    """The turns the reviser was shown before the one it revised (``Name: text`` lines)."""
    user = reviser_input[1]["content"]  # the request itself, not a re-ask
    block = user.split("Conversation so far:\n", 1)[1].split("\n\nOriginal turn by", 1)[0]
    return [] if block == "(nothing said yet)" else [line.split(": ", 1)[1] for line in block.split("\n")]


def calls_by_agent(run_dir: Path) -> dict[tuple[str, str], list[tuple[list[dict[str, Any]], str]]]:
    """(trace id, agent) -> (input messages, output) of every ``chat`` call under that agent's turn spans."""
    calls: dict[tuple[str, str], list[tuple[list[dict[str, Any]], str]]] = {}
    for (trace, agent, _), made in traced_calls(run_dir).items():
        calls.setdefault((trace, agent), []).extend(made)
    return calls


def assert_happened(texts: list[str], trace: str, calls: dict[tuple[str, str], list[Any]]) -> None:
    """Each of ``texts`` was written by a call shown exactly the texts before it: a persona's turn (its input's
    turns), or a revision (the reviser's conversation so far)."""
    for k, text in enumerate(texts):
        if text.startswith("REVISED"):
            made = [seen for seen, out in calls[(trace, "reviser")] if f'"revision": {json.dumps(text)}}}' in out]
            assert any(history(seen) == texts[:k] for seen in made), (k, texts)
        else:
            speaker = f"persona_{text.split(' by ')[1][0]}"
            assert any(out == text and turn_texts(seen) == texts[:k] for seen, out in calls[(trace, speaker)]), \
                (k, texts)


def line_of(record: DialogueRecord) -> list[str]:
    """The trunk as the speakers saw it: answered revisions in their turns' places."""
    answered = {r.turn_index: r.revised for r in record.revisions if r.answered}
    return [answered.get(i, m.content) for i, m in enumerate(record.messages)]


def check_targeted_pair(record: DialogueRecord, branching: bool) -> str | None:
    """The fate of the planted turn's pair (None: kept); with branching on, never an earlier fixed flag's."""
    planted = planted_index(record)
    revs = {r.turn_index: r for r in record.revisions}
    if planted is None or planted >= len(record.messages) or planted not in revs:
        return None
    fate = pair_fate(record, revs[planted], trunk(record), keep_unverified=False)
    if branching:
        earlier_unfixed = any(i < planted and not fixes(r) for i, r in revs.items())
        earlier_unjudged = any(v.error is not None and v.turn_index < planted for v in record.verdicts)
        assert fate is None or fate in OWN or (fate == "flagged_prompt" and earlier_unfixed) or (
            fate == "unjudged_prompt" and earlier_unjudged), fate
        assert fate is not None or not (earlier_unfixed or earlier_unjudged)
        if fate is None or fate in OWN:
            assert all(r.answered == fixes(r) for i, r in revs.items() if i < planted)
    return fate or "kept"


def check_calls(record: DialogueRecord) -> int:
    """One call per turn, verdict, revision and check (more for a step that failed): returns the branch's share."""
    def calls(agent: str) -> int:
        return record.usage.by_agent[agent].calls if agent in record.usage.by_agent else 0

    b = record.branch
    new_turns = len(b.messages) - b.from_turn - 1 if b else 0
    revisions = [*record.revisions, *(b.revisions if b else [])]
    checks = sum(1 for r in revisions if r.error is None and is_preference(r.original, r.revised))
    assert calls("persona_A") + calls("persona_B") == len(record.messages) + new_turns
    failed = failed_steps(record)  # a step that fails for good also tries the backend's other output modes
    for agent, want in (("critic", len(record.verdicts) + (len(b.verdicts) if b else 0)),
                        ("reviser", len(revisions)), ("verifier", checks)):
        assert calls(agent) == want if not failed[agent] else calls(agent) > want
    return new_turns + (len(b.verdicts) + len(b.revisions) + sum(
        1 for r in b.revisions if is_preference(r.original, r.revised)) if b else 0)


def check_run(case: dict[str, Any]) -> dict[str, Any]:
    world = Flags(incidental=case["incidental"], unfixable=case["unfixable"], catch=case["catch"],
                  violation_turn=case["violation_turn"], unjudged=case.get("unjudged", frozenset()),
                  unrevised=case.get("unrevised", frozenset()))
    branching = bool(case["dialogue"]["branch_turns"])
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        asyncio.run(scripted_run(run_dir, ScriptedBackend(world.reply), n=2, dialogue=case["dialogue"],
                                 tracing={"record_content": True}, backend={"reasks": 0}))
        records = {d["id"]: DialogueRecord.model_validate(d) for d in iter_jsonl(run_dir / DIALOGUES)}
        calls = calls_by_agent(run_dir)
        pairs, sft = list(iter_jsonl(run_dir / PREFERENCES)), list(iter_jsonl(run_dir / SFT))
        manifest = json.loads((run_dir / "manifest.json").read_text())
    for row in pairs:
        trace = records[row["dialogue_id"]].trace_id
        assert trace is not None
        assert_happened([*turn_texts(row["prompt"]), row["rejected"][0]["content"]], trace, calls)
        assert_happened([*turn_texts(row["prompt"]), row["chosen"][0]["content"]], trace, calls)
    for row in sft:
        trace = records[row["dialogue_id"]].trace_id
        assert trace is not None
        assert_happened(turn_texts(row["messages"]), trace, calls)
    dropped: Counter[str] = Counter()
    fates: Counter[str] = Counter()
    extra, spent = {}, {}
    for record in records.values():
        lost = dropped_pairs(record, keep_unverified=False)
        dropped += lost
        revisions = [*record.revisions, *(record.branch.revisions if record.branch else [])]
        candidates = sum(is_preference(r.original, r.revised) or r.error is not None for r in revisions)
        assert sum(p["dialogue_id"] == record.id for p in pairs) + sum(lost.values()) == candidates
        if (fate := check_targeted_pair(record, branching)) is not None:
            fates[fate] += 1
        extra[record.id], spent[record.id] = check_calls(record), record.usage.calls
        # The violation instruction: one call, the planted turn's, shown the trunk as it was spoken before it.
        judged = f"persona_{record.briefed_side}"
        told = [seen for seen, _ in calls[(record.trace_id, judged)] if VIOLATION_OPENING in seen[0]["content"]]
        planted = planted_index(record)
        assert len(told) == (planted is not None and planted < len(record.messages))
        assert all(turn_texts(seen) == line_of(record)[:planted] for seen in told)
        if record.branch is not None:  # no call of the branch carries it
            start = record.branch.messages[record.branch.from_turn].content
            for side in "AB":
                for seen, _ in calls[(record.trace_id, f"persona_{side}")]:
                    shown = turn_texts(seen)
                    if len(shown) > record.branch.from_turn and shown[record.branch.from_turn] == start:
                        assert VIOLATION_OPENING not in seen[0]["content"]
    assert {k: v for k, v in manifest["counts"]["dropped_pairs"].items() if v} == dict(dropped)
    assert manifest["counts"]["pairs"] == len(pairs)
    return {"fates": fates, "extra_calls": extra, "calls": spent}


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_every_prompt_happened_and_the_targeted_pair_survives_earlier_flags(case: dict[str, Any]) -> None:
    check_run(case)


def test_an_incidental_flag_before_the_targeted_turn_costs_the_pair_only_without_branching() -> None:
    """The planted turn is the judged side's third; its first is flagged for something else. Without
    branching the targeted pair's prompt would hold a revision nobody answered (``revised_prompt``); with
    branching the conversation went on from that revision, and the targeted pair is kept, at no extra call
    before the branch."""
    case = {"dialogue": {"mode": "assistant", "max_turns": 8, "min_turns": 2}, "incidental": frozenset({1}),
            "unfixable": frozenset(), "catch": True, "violation_turn": 3}
    off = check_run({**case, "dialogue": {**case["dialogue"], "branch_turns": 0}})
    on = check_run({**case, "dialogue": {**case["dialogue"], "branch_turns": 2}})
    assert off["fates"] == {"revised_prompt": 2}
    assert on["fates"] == {"kept": 2}
    # The trunk's calls are the same in number; the branch (from the planted turn's revision) adds its own.
    assert {d: c - on["extra_calls"][d] for d, c in on["calls"].items()} == off["calls"]
    assert list(on["extra_calls"].values()) == [2 + 1] * 2  # two more turns, the critic on the judged side's one


def test_an_unfixed_earlier_flag_still_costs_the_targeted_pair_and_says_why() -> None:
    """No clean conversation leads to the planted turn when an earlier flag's revision did not pass."""
    case = {"dialogue": {"mode": "peers", "max_turns": 6, "min_turns": 2, "branch_turns": 2},
            "incidental": frozenset({0, 1}), "unfixable": frozenset({0, 1}), "catch": True, "violation_turn": 2}
    assert check_run(case)["fates"] == {"flagged_prompt": 2}


async def test_a_run_whose_conversation_went_on_from_a_revision_replays_to_the_same_records(tmp_path: Path) -> None:
    from sparring.graphs.runtime.dialogue_replay import replay_dialogue

    world = Flags(incidental=frozenset({1, 3}), violation_turn=3)
    run_dir = tmp_path / "run"
    await scripted_run(run_dir, ScriptedBackend(world.reply), n=2,
                       dialogue={"mode": "assistant", "max_turns": 8, "min_turns": 2, "branch_turns": 2})
    records = list(iter_jsonl(run_dir / DIALOGUES))
    assert all([r["answered"] for r in d["revisions"]][:2] == [True, True] for d in records)
    for record in records:
        outcome = await replay_dialogue(run_dir, record)
        assert outcome.reproduced, outcome.describe()


def test_the_report_says_the_conversation_went_on_from_a_revision() -> None:
    from sparring.traces.report_dialogues import dialogue_entry

    case = {"dialogue": {"mode": "assistant", "max_turns": 6, "min_turns": 2, "branch_turns": 1},
            "incidental": frozenset({1}), "unfixable": frozenset(), "catch": True, "violation_turn": 2}
    world = Flags(incidental=case["incidental"], violation_turn=2)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        asyncio.run(scripted_run(run_dir, ScriptedBackend(world.reply), n=1, dialogue=case["dialogue"]))
        (record,) = iter_jsonl(run_dir / DIALOGUES)
    html = dialogue_entry(record, [], run_dir="runs/x")
    assert html.count("chosen (revision, verified; the conversation went on from it)") == 1
