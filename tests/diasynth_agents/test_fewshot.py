"""Few-shot JSONL files: loading, validation errors with file and line, seeded choice."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from sparring.diasynth_agents.fewshot import FewShotPool, load_file, load_pool, render, style_instruction
from sparring.errors import InputError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "fewshot"


def write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def turns_line(**extra) -> str:
    return json.dumps({"turns": [{"speaker": "A", "text": "Hello."}, {"speaker": "B", "text": "Hi there."}], **extra})


def test_both_shapes_load_with_default_ids_and_styles(tmp_path):
    path = write(tmp_path / "casual.jsonl", turns_line(), "", json.dumps({"id": "x1", "style": "terse",
                                                                          "dialogue": "Ann: yo\n\nBo:  sup "}))
    first, second = load_file(path)
    assert (first.id, first.style, first.line) == ("casual-1", "casual", 1)
    assert render(first) == "A: Hello.\nB: Hi there."
    assert (second.id, second.style, second.line) == ("x1", "terse", 3)
    assert render(second) == "Ann: yo\nBo:  sup"
    instruction = style_instruction(first)
    assert "casual" in instruction and render(first) in instruction


@pytest.mark.parametrize("bad_line, field, message", [
    ('{"turns": [', None, "not valid JSON"),
    ("[1, 2]", None, "JSON object"),
    (json.dumps({"dialogue": "A: hi", "turns": [{"speaker": "A", "text": "x"}, {"speaker": "B", "text": "y"}]}),
     None, "exactly one of"),
    (json.dumps({"style": "formal"}), None, "exactly one of"),
    (json.dumps({"turns": [{"speaker": "A", "text": "hi"}, {"speaker": "B"}]}), "turns[1].text", "required"),
    (json.dumps({"turns": [{"speaker": "A", "text": "only one"}]}), "turns", "at least 2"),
    (turns_line(mood="happy"), "mood", "unknown key"),
])
def test_bad_lines_name_file_and_line(tmp_path, bad_line, field, message):
    path = write(tmp_path / "shots.jsonl", turns_line(), bad_line)
    with pytest.raises(InputError) as info:
        load_file(path)
    err = info.value
    assert err.source == str(path) and err.line == 2
    assert err.field == field
    assert message in err.message


@pytest.mark.parametrize("content, message", [("", "no example dialogues"), ("\n  \n", "no example dialogues")])
def test_empty_file_is_an_error(tmp_path, content, message):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(InputError, match=message):
        load_file(path)


def test_missing_file_and_duplicate_ids(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_pool([tmp_path / "nope.jsonl"])
    a = write(tmp_path / "a.jsonl", turns_line(id="same"))
    b = write(tmp_path / "b.jsonl", turns_line(), turns_line(id="same"))
    with pytest.raises(InputError) as info:
        load_pool([a, b])
    assert info.value.source == str(b) and info.value.line == 2 and "already used" in info.value.message


def test_choice_is_seeded_per_dialogue_and_spreads(tmp_path):
    pool = load_pool([write(tmp_path / "s.jsonl", *(turns_line(id=f"e{i}") for i in range(4)))])
    picks = [pool.choose(7, f"job-{i}") for i in range(200)]
    assert picks == [pool.choose(7, f"job-{i}") for i in range(200)]
    assert set(Counter(p.id for p in picks)) == {"e0", "e1", "e2", "e3"}
    assert [p.id for p in picks] != [pool.choose(8, f"job-{i}").id for i in range(200)]
    assert pool.get(picks[0].id) is picks[0]
    assert FewShotPool().choose(7, "job-0") is None


def test_shipped_example_files_load():
    files = sorted(EXAMPLES.glob("*.jsonl"))
    assert len(files) >= 2
    pool = load_pool(files)
    for path in files:
        examples = [e for e in pool.examples if e.source == str(path)]
        assert 3 <= len(examples) <= 5
        assert len({e.style for e in examples}) == 1
