"""Row validation before export, on rows with planted faults: each is reported with its reason."""

from __future__ import annotations

import copy

import pytest

from sparring.graphs.assemble import extract_preference_pairs
from sparring.graphs.data.validate import (
    validate_dpo_row,
    validate_kto_row,
    validate_pair_against_dialogue,
    validate_rows,
    validate_sft_row,
    validate_summarization_row,
)
from tests.graphs.data.fixture_run import make_dialogue

SYSTEM = {"role": "system", "content": "You are a helpful AI assistant."}
GOOD = {"prompt": [SYSTEM, {"role": "user", "content": "hi"}], "chosen": [{"role": "assistant", "content": "hello"}],
        "rejected": [{"role": "assistant", "content": "go away"}]}


def planted(**changes) -> dict:
    row = copy.deepcopy(GOOD)
    row.update(changes)
    return row


@pytest.mark.parametrize(("row", "reason"), [
    (planted(chosen=[{"role": "assistant", "content": "  "}]), "chosen message 0 (assistant) is empty"),
    (planted(rejected=[]), "rejected is not a non-empty list of messages"),
    (planted(chosen=[{"role": "assistant", "content": "go away "}]), "chosen and rejected are the same text"),
    (planted(prompt=[SYSTEM, {"role": "user", "content": "hi"}, {"role": "user", "content": "again"}]),
     "prompt roles do not alternate: turn 1 is 'user', expected 'assistant'"),
    (planted(prompt=[SYSTEM, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes?"}]),
     "prompt ends with 'assistant', expected 'user'"),
    (planted(prompt=[{"role": "user", "content": "hi"}, SYSTEM]), "prompt has a system message after the first position"),
    (planted(chosen=[{"role": "user", "content": "hello"}]), "chosen roles do not alternate: turn 0 is 'user', "
                                                              "expected 'assistant'"),
    (planted(prompt=[SYSTEM, {"role": "human", "content": "hi"}]), "prompt message 1 has unknown role 'human'"),
    (planted(prompt=[SYSTEM, {"role": "user", "content": "hi", "name": "Dana"}]),
     "prompt message 1 is not a {role, content} dict"),
    ({"prompt": GOOD["prompt"], "chosen": GOOD["chosen"]}, "missing column(s) rejected"),
])
def test_bad_preference_rows_say_why(row: dict, reason: str) -> None:
    assert validate_dpo_row(GOOD) == []
    assert validate_dpo_row(row) == [reason]


def test_kto_sft_and_summarization_rules() -> None:
    kto = {"prompt": GOOD["prompt"], "completion": GOOD["chosen"], "label": True}
    assert validate_kto_row(kto) == []
    assert validate_kto_row({**kto, "label": "yes"}) == ["label is str, not a boolean"]
    sft = {"messages": [SYSTEM, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    assert validate_sft_row(sft) == []
    assert validate_sft_row({"messages": sft["messages"][:2]}) == ["messages ends with 'user', expected 'assistant'"]
    assert validate_summarization_row({"dialogue": "A: hi", "summary": ""}) == ["summary is empty"]


def test_one_format_in_every_row() -> None:
    standard = {"prompt": "hi", "chosen": "hello", "rejected": "go away"}
    extra = {**GOOD, "score": 1}
    report = validate_rows([GOOD, extra, GOOD], lambda row: [], ids=["a", "b", "c"])
    assert [p.row_id for p in report.problems] == ["b"]
    assert report.problems[0].reason.startswith("its format differs from row 0 (columns ['chosen', 'prompt', "
                                                 "'rejected', 'score'] vs ['chosen', 'prompt', 'rejected']")
    mixed = validate_rows([GOOD, standard], lambda row: [])
    assert len(mixed.valid) == 1
    assert "conversational [] vs ['chosen', 'prompt', 'rejected']" in mixed.problems[0].reason
    assert str(mixed.problems[0]).startswith("row 1: its format differs")


@pytest.mark.parametrize("opener", ["A", "B"])
def test_prompt_is_a_prefix_of_its_dialogue(opener: str) -> None:
    # In peers mode with side A briefed, A opens: its prompt starts with the kick-off cue.
    turns = ["hello there", "hi, what's up", "I need advice", "sure, go on"]
    violating = 2 if opener == "A" else 3
    record, job = make_dialogue("d", turns, violations={violating: ["privacy.no-doxxing"]}, mode="peers")
    if opener == "A":
        job = job.model_copy(update={"briefed_side": "A"})  # turn 2 is A's
    (pair,) = [p.model_dump() for p in extract_preference_pairs(record, job)]
    dialogue = record.model_dump()
    assert validate_pair_against_dialogue(pair, dialogue) == []

    tampered = copy.deepcopy(pair)
    tampered["prompt"][-1]["content"] = "something nobody said"
    assert validate_pair_against_dialogue(tampered, dialogue)[0].startswith(
        "prompt is not a prefix of its dialogue: message")
    wrong_turn = {**pair, "rejected": [{"role": "assistant", "content": "hi, what's up"}]}
    assert validate_pair_against_dialogue(wrong_turn, dialogue) == [
        f"rejected is not turn {violating} of its dialogue as spoken"]
    assert validate_pair_against_dialogue({**pair, "turn_index": 9}, dialogue) == [
        "turn_index 9 is outside its dialogue (4 turns)"]
    assert validate_pair_against_dialogue(pair, None) == ["its dialogue 'd' is not in dialogues.jsonl"]
