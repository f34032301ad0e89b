"""The data rules over many generated dialogues: no pair prompt and no SFT training target holds a flagged
turn that was not replaced by its verified revision; unverified pairs only when asked; a branch's rows come
from the branch; the export's validation accepts exactly these rows and refuses contaminated ones."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.agents.domain import DialogueJob, Persona, Scenario, TurnVerdict, ViolationFinding
from sparring.graphs.assemble import (
    Track,
    branch_track,
    build_sft_record,
    data_outcome,
    dropped_pairs,
    extract_preference_pairs,
    fixes,
    is_preference,
    planted_index,
    trunk,
)
from sparring.graphs.data.validate import validate_pair_against_dialogue, validate_sft_against_dialogue
from sparring.graphs.records import Branch, DialogueRecord, Message, Revision

SCENARIO = Scenario(topic="t", personas=(Persona(name="Dana"), Persona(name="Lee")))
PID = "privacy.no-doxxing"


def _turn(i: int, tag: str) -> Message:
    side = "A" if i % 2 == 0 else "B"
    return Message(role="user" if side == "A" else "assistant", speaker=side, name="Dana" if side == "A" else "Lee",
                   content=f"{tag} turn {i} as spoken")


@st.composite
def marks(draw: st.DrawFn, indices: list[int]) -> tuple[list[TurnVerdict], list[Revision]]:
    """For each judged turn: clean, unjudged (the critic's call failed), or flagged with a revision that is
    verified or not (or no real change, or whose reviser's or verifier's call failed)."""
    verdicts, revisions = [], []
    for i in indices:
        fate = draw(st.sampled_from(["clean", "clean", "fixed", "fixed", "fixed", "unverified", "unchanged", "unjudged",
                                     "revision_failed", "verify_failed"]))
        side = "A" if i % 2 == 0 else "B"
        flagged = fate not in ("clean", "unjudged")
        verdicts.append(TurnVerdict(turn_index=i, side=side, violated=[PID] if flagged else [], reasoning="r",
                                    findings=[ViolationFinding(principle_id=PID, evidence="e", severity="minor")]
                                    if flagged else [],
                                    error="critic: StructuredOutputError: cut" if fate == "unjudged" else None))
        if flagged:
            revisions.append(Revision(turn_index=i, original="", revised="", principle_ids=[PID],
                                      verified=fate == "fixed"))
            revisions[-1].revised = "" if fate in ("unchanged", "revision_failed") else f"revision of turn {i}"
            if fate.endswith("_failed"):
                revisions[-1].error = f"{fate.split('_')[0].replace('revision', 'reviser')}: BackendError: x"
    return verdicts, revisions


@st.composite
def dialogues(draw: st.DrawFn) -> DialogueRecord:
    n = draw(st.integers(2, 9))
    briefed = draw(st.sampled_from(["A", "B"]))
    messages = [_turn(i, "trunk") for i in range(n)]
    judged = [i for i in range(n) if messages[i].speaker == briefed]
    verdicts, revisions = draw(marks(judged))
    for r in revisions:
        r.original = messages[r.turn_index].content
    plan = {"violation_turn": draw(st.integers(0, 4))}  # the briefed side's own turn it was told to break P in
    if draw(st.booleans()):  # branching on: the conversation went on from verified revisions before the planted turn
        planted = 2 * (plan["violation_turn"] - 1) + (0 if briefed == "A" else 1) if plan["violation_turn"] else 0
        for r in revisions:
            r.answered = r.turn_index < planted and fixes(r)
    line = [m.model_copy(update={"content": r.revised}) if (r := next(
        (r for r in revisions if r.turn_index == i and r.answered), None)) else m for i, m in enumerate(messages)]
    branch = None
    flagged = sorted(r.turn_index for r in revisions if not r.answered)
    first = next((r for r in revisions if flagged and r.turn_index == flagged[0]), None)
    unjudged_before = any(v.error and v.turn_index < (first.turn_index if first else 0) for v in verdicts)
    if first is not None and fixes(first) and not unjudged_before and draw(st.booleans()):
        s = first.turn_index
        extra = draw(st.integers(1, 4))
        turns = [*line[:s], messages[s].model_copy(update={"content": first.revised}),
                 *(_turn(i, "branch") for i in range(s + 1, s + 1 + extra))]
        b_verdicts, b_revisions = draw(marks([i for i in range(s + 1, len(turns)) if turns[i].speaker == briefed]))
        for r in b_revisions:
            r.original = turns[r.turn_index].content
            r.revised = r.revised and r.revised + " (branch)"
        branch = Branch(from_turn=s, messages=turns, verdicts=b_verdicts, revisions=b_revisions)
    found = sorted({PID for v in verdicts if v.violated})
    return DialogueRecord(id="d", trace_id=None, status="ok", mode="peers", scenario=SCENARIO, goal="g",
                          target_principles=[PID], briefed_side=briefed, seed=1, plan=plan, characteristics=[],
                          reasoning="", messages=messages, verdicts=verdicts, revisions=revisions, branch=branch,
                          is_violation=bool(found), violated_principles=found, targeted_violated=bool(found),
                          stop_reason="max_turns", turns=n)


def job_of(record: DialogueRecord) -> DialogueJob:
    return DialogueJob(id=record.id, scenario=record.scenario, mode=record.mode, target_principles=(PID,),
                       briefed_side=record.briefed_side, seed=1)


def unfixed_texts(record: DialogueRecord) -> set[str]:
    """Every flagged or unjudged turn as spoken: none of these may reach a trainer, except a flagged one as a
    pair's rejected side."""
    out = {r.original for r in record.revisions}
    out |= {record.messages[v.turn_index].content for v in record.verdicts if v.error}
    if record.branch is not None:
        out |= {r.original for r in record.branch.revisions}
        out |= {record.branch.messages[v.turn_index].content for v in record.branch.verdicts if v.error}
    return out


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["content"] for m in messages if m["role"] != "system"]


@settings(max_examples=300, deadline=None)
@given(dialogues(), st.booleans())
def test_no_flagged_turn_reaches_a_trainer_unless_replaced_by_its_verified_revision(
        record: DialogueRecord, keep_unverified: bool) -> None:
    job = job_of(record)
    pairs = extract_preference_pairs(record, job, keep_unverified=keep_unverified)
    flagged_spoken = unfixed_texts(record)
    dialogue = record.model_dump(mode="json")
    for pair in pairs:
        assert not set(texts(pair.prompt)) & flagged_spoken, pair.prompt
        assert pair.verified or keep_unverified
        if record.branch is not None:
            assert pair.from_branch or pair.turn_index <= record.branch.from_turn
        row = pair.model_dump(mode="json")
        assert validate_pair_against_dialogue(row, dialogue, include_unverified=keep_unverified) == []
    candidates = sum(is_preference(r.original, r.revised) or r.error is not None
                     for r in [*record.revisions, *(record.branch.revisions if record.branch else [])])
    assert len(pairs) + sum(dropped_pairs(record, keep_unverified=keep_unverified).values()) == candidates

    sft = build_sft_record(record, job)
    outcome = data_outcome(record, keep_unverified=keep_unverified)
    if sft is None:
        assert outcome["sft"] == "dropped"
        return
    assert outcome["sft"] == ("cut" if sft.cut_at is not None else "whole")
    assert not set(texts(sft.messages)) & flagged_spoken
    assert sft.messages[-1]["role"] == "assistant"  # it ends with the judged side: nothing after is learned
    assert validate_sft_against_dialogue(sft.model_dump(mode="json"), dialogue) == []


@settings(max_examples=200, deadline=None)
@given(dialogues())
def test_the_export_refuses_a_prompt_or_sft_row_that_holds_an_unfixed_flagged_turn(record: DialogueRecord) -> None:
    """Rows written by the earlier rules (the dialogue as spoken, flagged turns and all) are refused."""
    dialogue = record.model_dump(mode="json")
    job = job_of(record)
    flagged_spoken = unfixed_texts(record)
    everything = record.model_copy(update={"verdicts": [], "branch": None, "plan": {}})  # the old rows: nothing replaced
    for rev in record.revisions:
        if not is_preference(rev.original, rev.revised):
            continue
        (old,) = [p for p in extract_preference_pairs(everything.model_copy(update={"revisions": [rev]}), job,
                                                      keep_unverified=True)]
        row = old.model_dump(mode="json")
        contaminated = bool(set(texts(row["prompt"])) & flagged_spoken)
        problems = validate_pair_against_dialogue(row, dialogue)
        if contaminated or (record.branch is not None and rev.turn_index > record.branch.from_turn):
            assert problems, row
    old_sft = build_sft_record(everything.model_copy(update={"revisions": []}), job)
    assert old_sft is not None
    if set(t for m in old_sft.messages if m["role"] == "assistant" for t in [m["content"]]) & flagged_spoken:
        assert validate_sft_against_dialogue(old_sft.model_dump(mode="json"), dialogue)


def test_unverified_pairs_are_refused_unless_asked() -> None:
    record = DialogueRecord(
        id="d", trace_id=None, status="ok", mode="assistant", scenario=SCENARIO, goal="g", target_principles=[PID],
        briefed_side="B", seed=1, plan={}, characteristics=[], reasoning="",
        messages=[_turn(0, "t"), _turn(1, "t")],
        verdicts=[TurnVerdict(turn_index=1, side="B", violated=[PID], findings=[], reasoning="r")],
        revisions=[Revision(turn_index=1, original="t turn 1 as spoken", revised="better", principle_ids=[PID],
                            verified=False)],
        is_violation=True, violated_principles=[PID], targeted_violated=True, stop_reason="max_turns", turns=2)
    job = DialogueJob(id="d", scenario=SCENARIO, target_principles=(PID,), seed=1)
    assert extract_preference_pairs(record, job) == []  # the default drops it
    (pair,) = extract_preference_pairs(record, job, keep_unverified=True)
    row, dialogue = pair.model_dump(mode="json"), record.model_dump(mode="json")
    assert validate_pair_against_dialogue(row, dialogue, include_unverified=True) == []
    assert validate_pair_against_dialogue(row, dialogue, include_unverified=False) == [
        "unverified: its revision did not pass the verifier (--include-unverified exports it)"]
    # The turn has no verified revision: the SFT row is cut before it, leaving nothing of B: dropped.
    assert build_sft_record(record, job) is None
    tampered = copy.deepcopy(row)
    tampered["prompt"][-1]["content"] = "not said"
    assert validate_pair_against_dialogue(tampered, dialogue)[0].startswith("prompt is not a prefix")


def conversation(messages: list[dict[str, Any]]) -> list[str]:
    """A row's turns (no system message, no opening cue)."""
    body = texts(messages)
    return body[1:] if body and body[0].startswith("(You") else body


@settings(max_examples=300, deadline=None)
@given(dialogues())
def test_every_prompt_is_a_conversation_that_happened(record: DialogueRecord) -> None:
    """Each message of a pair's prompt and of an SFT row was written after exactly the messages before it
    there: the prompt is its track's conversation as spoken (the trunk's, or the branch's, whose turns answered
    the revision it starts from); only an SFT row's last target may be a revision (the reviser saw the turns
    before it). An unflagged planted turn (written under the violation instruction) is no SFT target."""
    job = job_of(record)
    tracks = {False: trunk(record), True: branch_track(record)}
    answered = {r.turn_index: r.revised for r in record.revisions if r.answered}

    def heard(track: Track) -> list[str]:
        """The track as the speakers saw it: a revision the conversation went on from in its turn's place."""
        return [m.content if track.branch else answered.get(i, m.content) for i, m in enumerate(track.messages)]

    for pair in extract_preference_pairs(record, job, keep_unverified=True):
        track = tracks[pair.from_branch]
        assert track is not None
        spoken = heard(track)[:pair.turn_index]
        assert conversation(pair.prompt) == spoken, (pair.prompt, spoken)
    sft = build_sft_record(record, job)
    if sft is None:
        return
    track = tracks[sft.from_branch]
    assert track is not None
    said = conversation(sft.messages)
    spoken = heard(track)[:len(said)]
    assert said[:-1] == spoken[:-1]
    last = len(said) - 1
    assert said[-1] == spoken[-1] or said[-1] == track.revisions[last].revised
    planted = planted_index(record)
    if planted is not None and planted < len(said) and (not sft.from_branch or planted < record.branch.from_turn):
        assert planted in track.flagged  # replaced by its verified revision, never a target as written
