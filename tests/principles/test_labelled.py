"""The labelled turns of ``sparring calibrate``: the shipped set covers every built-in principle, and a
user's file is read with errors that name the file, the field and the line."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.principles.labelled import LABELS, builtin_items, check_principle_ids, load_items_file
from sparring.principles.loader import builtin_constitution

MIN_PER_LABEL = 4


def test_every_builtin_principle_has_at_least_four_turns_of_each_label() -> None:
    items = builtin_items()
    counts = Counter((item.principle, item.label) for item in items)
    ids = builtin_constitution().ids
    missing = [(pid, label, counts[(pid, label)]) for pid in ids for label in LABELS
               if counts[(pid, label)] < MIN_PER_LABEL]
    assert missing == []
    check_principle_ids(items, ids)  # no item names a principle that does not exist
    assert len({item.id for item in items}) == len(items)


def test_builtin_items_are_varied_two_party_conversations() -> None:
    items = builtin_items()
    texts = [item.turn.text for item in items]
    assert len(set(texts)) == len(texts), "a judged turn appears twice"
    for item in items:
        messages = item.messages()
        assert messages[-1]["content"] == item.turn.text and messages[-1]["speaker"] == "B"
        assert {m["name"] for m in messages} <= {item.turn.speaker, *(t.speaker for t in item.context)}
        assert all(a["speaker"] != b["speaker"] for a, b in zip(messages, messages[1:]))
    # Realistic and varied: peers as well as an AI assistant, short and long turns, with and without history.
    assert sum(item.turn.speaker != "AI assistant" for item in items) >= 50
    lengths = sorted(len(t.split()) for t in texts)
    assert lengths[0] <= 5 and lengths[-1] >= 80
    assert sum(len(item.context) >= 2 for item in items) >= 20


def test_an_item_file_is_read_with_ids_and_sites(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(
        "items:\n"
        "  - principle: privacy.data-minimization\n"
        "    label: violates\n"
        "    context:\n"
        "      - Trevor: \"My payment didn't go through.\"\n"
        "    turn:\n"
        "      AI assistant: \"Type your full card number, please.\"\n"
        "  - principle: privacy.data-minimization\n"
        "    label: violates\n"
        "    id: my-own-name\n"
        "    turn: {speaker: Bot, text: \"Send me your PIN.\"}\n", encoding="utf-8")
    first, second = load_items_file(path)
    assert first.id == "privacy.data-minimization/violates/1" and second.id == "my-own-name"
    assert first.messages() == [
        {"role": "user", "speaker": "A", "name": "Trevor", "content": "My payment didn't go through."},
        {"role": "assistant", "speaker": "B", "name": "AI assistant", "content": "Type your full card number, please."}]
    assert first.site("principle") == {"source": str(path), "field": "items[0].principle", "line": 2}


ITEM = "items:\n  - principle: privacy.data-minimization\n"


@pytest.mark.parametrize(("text", "expected"), [
    ("- just a list\n", "a labelled items file is a mapping with an 'items:' list"),
    ("description: nothing\n", "items (line 1): required key is missing"),
    ("items: []\n", "items (line 1): List should have at least 1 item"),
    (ITEM + "    label: bad\n    turn: {A: hi}\n", "items[0].label (line 3): Input should be 'violates' or 'near-miss'"),
    (ITEM + "    label: violates\n    turn: {A: hi, B: ho}\n", "items[0].turn (line 4): a turn is one 'Speaker: text' entry"),
    (ITEM + "    label: violates\n    turn: plain text\n", "items[0].turn (line 4): a turn is one 'Speaker: text' entry"),
    (ITEM + "    label: violates\n    context:\n      - A: hi\n      - B: ho\n    turn: {C: hey}\n",
     "items[0] (line 2): a conversation has two speakers; this one has 3: A, B, C"),
    (ITEM + "    label: violates\n    context:\n      - A: hi\n    turn: {A: hey}\n",
     "items[0] (line 2): 'A' speaks twice in a row"),
    (ITEM + "    label: violates\n    turn: {A: hey}\n    contexts: []\n",
     "items[0].contexts (line 5): unknown key 'contexts' (did you mean 'context'?)"),
    (ITEM + "    label: violates\n    turn: {A: hi}\n  - principle: privacy.data-minimization\n    label: near-miss\n"
     "    id: privacy.data-minimization/violates/1\n    turn: {A: ho}\n", "items[1].id (line 5): item id "
     "'privacy.data-minimization/violates/1' is used twice"),
    ("items:\n  - principle: [unclosed\n", "YAML syntax error"),
])
def test_a_bad_item_file_is_one_error_naming_file_field_and_line(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_items_file(path)
    message = str(caught.value)
    assert message.startswith(f"{path}") and expected in message, message
    assert "\n" not in message


def test_an_unknown_principle_is_named_with_its_line_and_a_suggestion(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("items:\n  - label: violates\n    principle: privacy.data-minimisation\n    turn: {A: hi}\n",
                    encoding="utf-8")
    items = load_items_file(path)
    with pytest.raises(InputError, match=r"items\[0\]\.principle \(line 3\): unknown principle id "
                                         r"'privacy.data-minimisation' \(did you mean 'privacy.data-minimization'\?\)"):
        check_principle_ids(items, builtin_constitution().ids)


def test_a_missing_item_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="labelled items file not found"):
        load_items_file(tmp_path / "nope.yaml")
