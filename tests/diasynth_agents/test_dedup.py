"""Embedding deduplication on the real bundled model (all-MiniLM-L6-v2, offline)."""

from __future__ import annotations

import pytest

from sparring.agents.domain import Persona
from sparring.diasynth_agents.dedup import dedup, default_embedder
from sparring.diasynth_agents.diasynth_config import DEFAULT_DEDUP_THRESHOLD
from sparring.diasynth_agents.personas import persona_text

SUBTOPICS_DISTINCT = [
    "Setting up a productive home office",
    "Managing time zones in distributed teams",
    "Video call etiquette",
    "Security risks of working from cafes",
    "Remote team building activities",
]
# Each planted item restates one of the distinct ones above.
SUBTOPICS_PLANTED = {
    "Creating a productive home office setup": 0,
    "Coordinating across time zones in remote teams": 1,
}


def test_planted_near_duplicates_go_and_distinct_items_stay_in_order():
    items = [SUBTOPICS_DISTINCT[0], SUBTOPICS_DISTINCT[1], "Creating a productive home office setup",
             SUBTOPICS_DISTINCT[2], SUBTOPICS_DISTINCT[3], "Coordinating across time zones in remote teams",
             SUBTOPICS_DISTINCT[4]]
    result = dedup(items, DEFAULT_DEDUP_THRESHOLD)
    assert result.kept == SUBTOPICS_DISTINCT
    assert [d.text for d in result.dropped] == list(SUBTOPICS_PLANTED)
    for d in result.dropped:
        assert d.duplicate_of == SUBTOPICS_DISTINCT[SUBTOPICS_PLANTED[d.text]]
        assert DEFAULT_DEDUP_THRESHOLD <= d.similarity <= 1.0
        assert d.duplicate_of in d.reason and "cosine" in d.reason
        assert items[d.index] == d.text


def test_planted_duplicate_personas_go():
    personas = [
        Persona(name="Dana, a night-shift nurse", description="Works nights in a busy emergency room and struggles with sleep."),
        Persona(name="Marcus, a hospital administrator", description="Schedules staff rotas and fights for the budget."),
        Persona(name="Dee, an ER nurse on nights", description="Works night shifts in a busy emergency room and sleeps badly."),
        Persona(name="Lena, a medical student", description="Shadows doctors on her first clinical rotation and asks a lot of questions."),
    ]
    result = dedup(personas, DEFAULT_DEDUP_THRESHOLD, text=persona_text)
    assert result.kept == [personas[0], personas[1], personas[3]]
    assert len(result.dropped) == 1
    assert result.dropped[0].item == personas[2] and result.dropped[0].duplicate_of == personas[0]


def test_personas_differing_only_in_first_name_are_duplicates():
    # Small models repeat a description under another name; the name must not hide that.
    jane = Persona(name="Jane", description="Jane is a creative person who loves painting and mentoring kids.")
    michael = Persona(name="Michael", description="Michael is a creative person who loves painting and mentoring kids.")
    coach = Persona(name="Ben, a running coach", description="Prepares amateur clients for their first marathon.")
    result = dedup([jane, michael, coach], DEFAULT_DEDUP_THRESHOLD, text=persona_text)
    assert result.kept == [jane, coach]


def test_related_but_distinct_items_all_stay():
    # Same topic, different aspects: the default threshold must not merge them.
    items = ["Remote team communication", "Remote team building", "Dog nutrition", "Cat nutrition",
             "Index funds for beginners", "Day trading strategies"]
    assert dedup(items, DEFAULT_DEDUP_THRESHOLD).kept == items


def test_existing_items_count_as_kept_before_the_list():
    result = dedup(["Puppy training tips", "Adopting a rescue cat"], DEFAULT_DEDUP_THRESHOLD,
                   existing=["Tips for training a puppy", "Choosing a dog breed"])
    assert result.kept == ["Adopting a rescue cat"]
    assert result.dropped[0].duplicate_of == "Tips for training a puppy"


def test_repeated_text_is_a_duplicate_even_at_threshold_one():
    result = dedup(["Video Games", "video  games", "Board games"], 1.0)
    assert result.kept == ["Video Games", "Board games"]
    assert result.dropped[0].similarity == 1.0 and "repeats" in result.dropped[0].reason


def test_threshold_zero_keeps_only_the_first_of_related_items():
    items = ["Marathon training plans", "Training plans for a marathon", "Running shoes for a marathon"]
    assert dedup(items, 0.0).kept == items[:1]


@pytest.mark.parametrize("threshold", [-0.1, 1.5])
def test_threshold_outside_unit_interval_is_rejected(threshold):
    with pytest.raises(ValueError, match="threshold"):
        dedup(["a", "b"], threshold)


def test_empty_list_and_one_model_load_per_process():
    assert dedup([], 0.5).kept == []
    dedup(["first list item", "another item"], 0.9)
    model = default_embedder()._model
    assert model is not None
    dedup(["second list", "more"], 0.9)
    assert default_embedder()._model is model
