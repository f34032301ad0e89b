"""How many subtopics, personas, pairs and dialogues a config asks for: arithmetic, no model calls.

DiaSynth's Appendix B: n topics x m subtopics x p*(p-1)/2 persona pairs.
``sparring run --dry-run`` prints these before anything is generated.
"""

from __future__ import annotations

from math import comb

from pydantic import BaseModel, ConfigDict

from .diasynth_config import DiaSynthConfig


class Counts(BaseModel):
    """Sizes of one expansion, expected or actual."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: int
    subtopics: int
    personas: int
    pairs: int
    """Persona pairs over all subtopics: the sum of C(p_i, 2)."""
    scenarios: int
    """Pairs kept: all of them, or ``max_scenarios`` sampled from them."""
    dialogues: int
    """Scenarios x dialogues per scenario."""

    def describe(self) -> str:
        return (f"{self.topics} topics -> {self.subtopics} subtopics -> {self.personas} personas -> "
                f"{self.pairs} persona pairs -> {self.scenarios} scenarios -> {self.dialogues} dialogues")


def pairs_per_subtopic(personas: int) -> int:
    """C(p, 2): every unordered pair of the subtopic's personas."""
    return comb(personas, 2) if personas >= 2 else 0


def capped(pairs: int, max_scenarios: int | None) -> int:
    return pairs if max_scenarios is None else min(pairs, max_scenarios)


def expected_counts(config: DiaSynthConfig, dialogues_per_scenario: int = 1) -> Counts:
    """What ``config`` yields when no generated item is dropped as a duplicate."""
    if dialogues_per_scenario < 0:
        raise ValueError("dialogues_per_scenario must be >= 0")
    n = len(config.topics)
    m = config.subtopics_per_topic
    p = config.personas_per_subtopic
    pairs = n * m * pairs_per_subtopic(p)
    scenarios = capped(pairs, config.max_scenarios)
    return Counts(topics=n, subtopics=n * m, personas=n * m * p, pairs=pairs, scenarios=scenarios,
                  dialogues=scenarios * dialogues_per_scenario)
