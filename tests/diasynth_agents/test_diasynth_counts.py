"""Expected counts without model calls (the --dry-run numbers)."""

from __future__ import annotations

from math import comb

import pytest

from sparring.diasynth_agents.counts import expected_counts
from sparring.diasynth_agents.diasynth_config import DiaSynthConfig


def config(n: int, m: int, p: int, **kw) -> DiaSynthConfig:
    return DiaSynthConfig(topics=[f"topic {i}" for i in range(n)], subtopics_per_topic=m, personas_per_subtopic=p, **kw)


# The three worked examples of the paper's Appendix B.
@pytest.mark.parametrize("n, m, p, dialogues", [(10, 5, 3, 150), (20, 4, 5, 800), (15, 6, 10, 4050)])
def test_paper_appendix_b_examples(n, m, p, dialogues):
    counts = expected_counts(config(n, m, p))
    assert counts.dialogues == counts.scenarios == counts.pairs == dialogues
    assert counts.subtopics == n * m and counts.personas == n * m * p


@pytest.mark.parametrize("n, m, p", [(1, 1, 2), (3, 2, 4), (16, 6, 6), (2, 7, 9)])
def test_pairs_are_n_m_choose_p_2(n, m, p):
    counts = expected_counts(config(n, m, p))
    assert (counts.topics, counts.pairs) == (n, n * m * comb(p, 2))


def test_cap_and_dialogues_per_scenario():
    capped = expected_counts(config(2, 3, 4, max_scenarios=10), dialogues_per_scenario=3)
    assert (capped.pairs, capped.scenarios, capped.dialogues) == (36, 10, 30)
    loose = expected_counts(config(2, 3, 4, max_scenarios=1000))
    assert loose.scenarios == loose.pairs == 36
    with pytest.raises(ValueError):
        expected_counts(config(1, 1, 2), dialogues_per_scenario=-1)


def test_describe_names_every_stage():
    text = expected_counts(config(1, 2, 3)).describe()
    for word in ("topics", "subtopics", "personas", "pairs", "scenarios", "dialogues"):
        assert word in text
