"""The branch (``dialogue.branch_turns``) and the switch without critique (``dialogue.critique: false``),
on a scripted model: the branch continues from the verified revision, both agents see the revised
conversation, and its pairs and SFT row come from it."""

from __future__ import annotations

from sparring.graphs.assemble import build_sft_record, dropped_pairs, extract_preference_pairs
from sparring.graphs.data.validate import validate_pair_against_dialogue, validate_sft_against_dialogue
from tests.graphs.scripted_world import World
from tests.graphs.test_selfplay import make_job, run

PRIVACY = "privacy.no-doxxing"


async def test_the_branch_continues_from_the_verified_revision_and_gives_the_rows() -> None:
    world = World(violating_turns={1: [PRIVACY], 3: [PRIVACY]})
    job = make_job()
    state, record = await run(world, job, max_turns=4, branch_turns=2)
    assert record.branch is not None and record.branch.from_turn == 1
    branch = [m.content for m in record.branch.messages]
    assert branch == ["turn #0 by A", "REVISED turn #1 by B", "turn #2 by A", "turn #3 by B"]
    # Side A's branch turn was written after the revised turn, not the original.
    assert any(convo and convo[-1]["content"] == "REVISED turn #1 by B" for convo in world.seen_convos["A"])
    assert [v.turn_index for v in record.branch.verdicts] == [3]
    assert [(r.turn_index, r.verified) for r in record.branch.revisions] == [(3, True)]

    pairs = extract_preference_pairs(record, job)
    assert [(p.turn_index, p.from_branch) for p in pairs] == [(1, False), (3, True)]
    assert [m["content"] for m in pairs[1].prompt[1:]] == ["turn #0 by A", "REVISED turn #1 by B", "turn #2 by A"]
    assert dropped_pairs(record, keep_unverified=False) == {"after_branch": 1}  # the trunk's turn 3
    sft = build_sft_record(record, job)
    assert sft is not None and sft.from_branch and sft.cut_at is None and sft.revised_turns == [1, 3]
    assert [m["content"] for m in sft.messages[1:]] == [
        "turn #0 by A", "REVISED turn #1 by B", "turn #2 by A", "REVISED turn #3 by B"]
    dialogue = record.model_dump(mode="json")
    assert all(validate_pair_against_dialogue(p.model_dump(mode="json"), dialogue) == [] for p in pairs)
    assert validate_sft_against_dialogue(sft.model_dump(mode="json"), dialogue) == []


async def test_no_branch_without_a_verified_first_revision() -> None:
    world = World(violating_turns={1: [PRIVACY]}, revision_still_violates=True)
    _, record = await run(world, make_job(), max_turns=4, branch_turns=2)
    assert record.branch is None
    assert build_sft_record(record, make_job()) is None  # B's first turn is flagged and unfixed: nothing to learn


async def test_the_dialogue_without_critique_has_no_verdicts_no_pairs_and_a_whole_sft_row() -> None:
    world = World(violating_turns={1: [PRIVACY]})
    job = make_job(targets=())
    state, record = await run(world, job, max_turns=4, critique=False)
    assert record.verdicts == [] and record.revisions == [] and not record.is_violation
    assert extract_preference_pairs(record, job) == []
    sft = build_sft_record(record, job)
    assert sft is not None and sft.cut_at is None and len(sft.messages) == 5


async def test_a_pair_prompt_never_holds_an_earlier_revision_nobody_answered() -> None:
    world = World(violating_turns={1: [PRIVACY], 3: [PRIVACY]})
    job = make_job()
    _, record = await run(world, job, max_turns=4)
    pairs = extract_preference_pairs(record, job)
    assert [p.turn_index for p in pairs] == [1]  # turn 2 answered turn 1 as spoken, not its revision
    # Rows written by the earlier rules (turn 1 revised, or as spoken, in turn 3's prompt) are refused, and say why.
    old = {**pairs[0].model_dump(mode="json"), "turn_index": 3, "rejected": [
        {"role": "assistant", "content": "turn #3 by B"}], "prompt": [pairs[0].prompt[0], *(
            {"role": r, "content": c} for r, c in (("user", "turn #0 by A"), ("assistant", "REVISED turn #1 by B"),
                                                   ("user", "turn #2 by A")))]}
    assert validate_pair_against_dialogue(old, record.model_dump(mode="json")) == [
        "prompt holds turn 1, replaced by its revision, which the other side never answered: a conversation that "
        "did not happen"]


async def test_the_report_shows_the_branch() -> None:
    from sparring.traces.report_dialogues import dialogue_entry

    _, record = await run(World(violating_turns={1: [PRIVACY], 3: [PRIVACY]}), make_job(), max_turns=4,
                          branch_turns=2)
    html = dialogue_entry(record.model_dump(mode="json"), [], run_dir="runs/x")
    assert "Branch: the dialogue continued from the verified revision of turn 1" in html
    assert '<ol class="turns" start="1">' in html
    assert html.count("chosen (revision, verified)") == 3  # the trunk's turns 1 and 3, the branch's turn 3


async def test_a_dialogue_that_fails_inside_its_branch_is_recorded_with_its_error() -> None:
    from sparring.agents.domain import DialogueJob
    from sparring.graphs.assemble import build_dialogue_record
    from sparring.graphs.records import DialogueUsage

    state = {"plan": {"goal": "g"}, "messages": [], "verdicts": [], "revisions": [],
             "branch": {"from_turn": 1, "messages": [], "verdicts": [], "revisions": [], "done": False}}
    job: DialogueJob = make_job()
    record = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0,
                                   error="BackendError: gone")
    assert record.status == "failed" and record.branch is not None and record.branch.from_turn == 1


async def test_the_trace_header_names_the_branch_and_the_speakers_in_side_order() -> None:
    from sparring.traces.viewer import dialogue_header

    _, record = await run(World(violating_turns={1: [PRIVACY]}), make_job(mode="peers").model_copy(
        update={"swapped": True}), mode="peers", max_turns=4, branch_turns=2)
    header = dialogue_header(record.model_dump(mode="json"))
    assert "speakers: Lee / Dana" in header  # swapped: side A spoke as Lee
    assert "branch: continued from the verified revision of turn 1 for 2 turns" in header
