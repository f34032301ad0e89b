"""The ``diasynth:`` block of a run config: expand topics into scenarios (DiaSynth, section 3)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .characteristics import TABLE_11, Characteristic, builtin, names
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
    characteristics: list[Characteristic] = Field(default_factory=lambda: list(TABLE_11))
    """What the planner reasons about before each dialogue (default: Table 11's ten). An item is a
    ``{name, description}`` mapping or a bare name; a Table 11 name brings its description. Empty = no CoT."""
    few_shot: list[Path] = Field(default_factory=list)
    """JSONL files of example dialogues that set the register; relative paths are relative to the config
    file. Each dialogue gets one example, chosen by seed and recorded with it."""
    summaries: bool = False
    """Write a summary of each dialogue (into dialogues.jsonl and a summarization export)."""

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

    @field_validator("characteristics", mode="before")
    @classmethod
    def _names_to_characteristics(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [(builtin(item) or {"name": item.strip()}) if isinstance(item, str) else item for item in value]

    @field_validator("characteristics")
    @classmethod
    def _check_characteristics(cls, value: list[Characteristic]) -> list[Characteristic]:
        seen = set()
        for c in value:
            if not c.name.strip():
                raise ValueError("a characteristic needs a name")
            if normalize(c.name) in seen:
                raise ValueError(f"characteristic {c.name!r} is listed twice")
            seen.add(normalize(c.name))
        return value

    @field_validator("few_shot")
    @classmethod
    def _check_few_shot(cls, value: list[Path], info: ValidationInfo) -> list[Path]:
        # The config loader may pass context={"config_dir": ...}: then paths are
        # resolved and checked here, so a missing file is reported with its line.
        base = (info.context or {}).get("config_dir") if isinstance(info.context, dict) else None
        if base is None:
            return value
        resolved = [p if p.is_absolute() else Path(base) / p for p in value]
        for given, path in zip(value, resolved):
            if not path.is_file():
                raise ValueError(f"few-shot file {str(given)!r} not found (looked at {path})")
        return resolved

    def few_shot_paths(self, config_dir: str | Path) -> list[Path]:
        """The few-shot files with relative paths resolved against the config file's folder."""
        return [p if p.is_absolute() else Path(config_dir) / p for p in self.few_shot]

    def characteristic_names(self) -> tuple[str, ...]:
        """For ``DialogueJob.characteristics``."""
        return names(self.characteristics)
