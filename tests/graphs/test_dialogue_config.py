"""The dialogue: block: characteristics by name or mapping, few-shot paths, bad values with their line."""

from __future__ import annotations

import pytest

from sparring.diasynth_agents.characteristics import TABLE_11
from sparring.errors import InputError
from sparring.graphs.run_config import load_config


def write(tmp_path, text: str):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


def test_mode_defaults_for_characteristics(tmp_path):
    peers = load_config(write(tmp_path, "dialogue: {mode: peers}\n"))
    assert peers.dialogue.planner_characteristics() == TABLE_11
    assistant = load_config(write(tmp_path, "dialogue: {mode: assistant}\n"))
    names = [c.name for c in assistant.dialogue.planner_characteristics()]
    assert 0 < len(names) < len(TABLE_11) and set(names) <= {c.name for c in TABLE_11}


def test_characteristics_by_name_or_mapping(tmp_path):
    cfg = load_config(write(tmp_path, "dialogue:\n  characteristics:\n    - Formality Level\n"
                                      "    - {name: pet ownership, description: whether each speaker owns a pet}\n"
                                      "    - weather\n"))
    formality, custom, bare = cfg.dialogue.planner_characteristics()
    assert formality == next(c for c in TABLE_11 if c.name == "formality level")
    assert (custom.name, custom.description) == ("pet ownership", "whether each speaker owns a pet")
    assert (bare.name, bare.description) == ("weather", "")
    assert load_config(write(tmp_path, "dialogue: {characteristics: []}\n")).dialogue.planner_characteristics() == ()


@pytest.mark.parametrize("text, field, line, message", [
    ("dialogue:\n  characteristics: [formality level, Formality Level]\n", "dialogue.characteristics", 2,
     "listed twice"),
    ("dialogue:\n  max_turns: 4\n  min_turns: 6\n", "dialogue", 1, "min_turns (6) is above max_turns (4)"),
    ("dialogue:\n  few_shot:\n    - shots/missing.jsonl\n", "dialogue.few_shot", 2, "not found"),
    ("dialogue:\n  mode: debate\n", "dialogue.mode", 2, "'assistant', 'peers' or 'redteam'"),
])
def test_bad_values_name_field_and_line(tmp_path, text, field, line, message):
    with pytest.raises(InputError) as info:
        load_config(write(tmp_path, text))
    err = info.value
    assert (err.field, err.line) == (field, line)
    assert message in err.message


def test_few_shot_paths_resolve_against_the_config_folder(tmp_path):
    (tmp_path / "shots").mkdir()
    (tmp_path / "shots" / "a.jsonl").write_text("{}\n")
    cfg = load_config(write(tmp_path, "dialogue:\n  few_shot: [shots/a.jsonl]\n"))
    assert cfg.dialogue.few_shot == [tmp_path / "shots" / "a.jsonl"]
