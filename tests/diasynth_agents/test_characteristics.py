"""Table 11's characteristics and their rendering for the planner."""

from __future__ import annotations

from agents.types import CharacteristicValue
from diasynth_agents.characteristics import TABLE_11, Characteristic, match_decided, planner_instructions, render_list

PAPER_TABLE_11 = ["age and gender", "familiarity level", "emotional states", "formality level",
                  "duration of the conversation", "communication medium", "topic of the conversation",
                  "location of the conversation", "agreement or disagreement", "natural dialogue features"]


def test_the_ten_characteristics_of_table_11():
    assert [c.name for c in TABLE_11] == PAPER_TABLE_11
    assert all(c.description for c in TABLE_11)


def test_planner_instructions_list_every_characteristic_in_order():
    text = planner_instructions(TABLE_11)
    positions = [text.index(f"{i}. {name}") for i, name in enumerate(PAPER_TABLE_11, 1)]
    assert positions == sorted(positions)
    assert "reasoning" in text and "characteristics" in text
    assert planner_instructions([]) == ""
    custom = render_list([Characteristic(name="pet ownership"), "Formality Level"])
    assert custom.splitlines()[0] == "1. pet ownership"
    assert custom.splitlines()[1].startswith("2. formality level: ")


def test_match_decided_orders_renames_and_reports_missing():
    decided = [CharacteristicValue(name="Formality Level", value="casual", reason="friends"),
               CharacteristicValue(name="weather", value="rain", reason="not asked"),
               CharacteristicValue(name="age and gender", value="30s", reason="peers")]
    ordered, missing = match_decided(["age and gender", "formality level", "communication medium"], decided)
    assert [(c.name, c.value) for c in ordered] == [("age and gender", "30s"), ("formality level", "casual")]
    assert missing == ["communication medium"]
