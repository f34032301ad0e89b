"""Table 11's characteristics."""

from __future__ import annotations

from sparring.diasynth_agents.characteristics import TABLE_11

PAPER_TABLE_11 = ["age and gender", "familiarity level", "emotional states", "formality level",
                  "duration of the conversation", "communication medium", "topic of the conversation",
                  "location of the conversation", "agreement or disagreement", "natural dialogue features"]


def test_the_ten_characteristics_of_table_11():
    assert [c.name for c in TABLE_11] == PAPER_TABLE_11
    assert all(c.description for c in TABLE_11)
