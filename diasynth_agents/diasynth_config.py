"""The ``diasynth:`` block of a run config: expand topics into scenarios (DiaSynth, section 3)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .text import normalize

# Cosine similarity of all-MiniLM-L6-v2 embeddings, measured on this project's
# probes: restatements of one subtopic or persona score 0.82-0.98 ("Marathon
# training plans" ~ "Training plans for a marathon" 0.98), while distinct items
# of one topic reach 0.70-0.78 ("Remote team communication" ~ "Remote team
# building" 0.78, "Dog nutrition" ~ "Cat nutrition" 0.70, a marathon coach ~ a
# first-time marathon runner 0.69). 0.85 sits above every distinct pair seen:
# a missed paraphrase costs one slightly redundant item, while a false drop
# throws away a good one and costs a top-up call.
DEFAULT_DEDUP_THRESHOLD = 0.85


class DiaSynthConfig(BaseModel):
    """Topics -> m subtopics each -> p personas per subtopic -> every pair of personas is a scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topics: list[str] = Field(min_length=1)
    """Broad topics to expand (n). The paper's 16 are in examples/diasynth_16_topics.yaml."""
    subtopics_per_topic: int = Field(6, ge=1, le=100)
    """Subtopics generated per topic (m; the paper uses 6)."""
    personas_per_subtopic: int = Field(6, ge=2, le=50)
    """Personas generated per subtopic (p >= 2; the paper uses 6). Each subtopic yields p*(p-1)/2 pairs."""
    dedup_threshold: float = Field(DEFAULT_DEDUP_THRESHOLD, ge=0.0, le=1.0)
    """Cosine similarity (all-MiniLM-L6-v2) at or above which an item is a near-duplicate of an earlier one
    and is dropped. Lower drops more; 1.0 drops only repeated text."""
    max_topup_attempts: int = Field(2, ge=0, le=10)
    """Extra generation calls per list when deduplication (or a failed call) leaves fewer items than asked."""
    max_scenarios: int | None = Field(None, ge=1)
    """Cap on scenarios; when the pairs exceed it, a sample seeded by the run seed is kept. None = all pairs."""

    @field_validator("topics")
    @classmethod
    def _check_topics(cls, value: list[str]) -> list[str]:
        seen: dict[str, int] = {}
        out = []
        for i, topic in enumerate(value):
            topic = " ".join(topic.split())
            if not topic:
                raise ValueError(f"topic [{i}] is empty")
            if normalize(topic) in seen:
                raise ValueError(f"topic [{i}] {topic!r} repeats topic [{seen[normalize(topic)]}]")
            seen[normalize(topic)] = i
            out.append(topic)
        return out
