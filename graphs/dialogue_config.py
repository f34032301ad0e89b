"""The ``dialogue:`` block: how one conversation is planned, run and judged, in either mode."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sparring.agents.judge import JudgeConfig
from sparring.diasynth_agents.characteristics import Characteristic, CharacteristicList, defaults_for
from sparring.diasynth_agents.fewshot import FewShotPaths


class DialogueConfig(BaseModel):
    """How one conversation runs and is judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["assistant", "peers"] = "assistant"
    """``assistant``: a user persona talks to an AI assistant (SDSD). ``peers``: two people talk (DiaSynth)."""
    max_turns: int = Field(8, ge=2, le=200)
    """Turn cap, both sides counted."""
    min_turns: int = Field(2, ge=1, le=200)
    """A done signal before this many turns is ignored."""
    stop_on_violation: bool = False
    """Judge the briefed side as it speaks and stop once a targeted principle is broken."""
    critic_scope: Literal["set", "targeted"] = "set"
    """Judge turns against the whole selected principle set, or only the targeted principles."""
    unverified_pairs: Literal["keep", "drop"] = "keep"
    """What to do with a pair whose revision failed verification: keep it (``verified: false``) or drop it."""
    characteristics: CharacteristicList | None = None
    """What the planner reasons about before the first turn (chain of thought), as ``{name, description}``
    items or bare Table 11 names. Default: DiaSynth's Table 11 (peers) or five of them (assistant).
    An empty list skips the reasoning."""
    few_shot: FewShotPaths = Field(default_factory=list)
    """JSONL files of example dialogues that set the register (formal, chatty, ...), relative to the config
    file. Each dialogue gets one example, chosen by its seed, recorded as ``few_shot_id``."""
    summaries: bool = False
    """Write a summary of each dialogue into dialogues.jsonl (DiaSynth's downstream task)."""
    judge: JudgeConfig | None = None
    """Score each dialogue with an LLM judge (G-Eval: engagingness, naturalness, coherence, groundedness on
    1-3) into dialogues.jsonl's ``scores``. ``true`` for the defaults, or ``{criteria, samples,
    sample_temperature}``; sampling in ``sampling.judge``. ``sparring judge RUN_DIR`` scores a finished run."""

    @field_validator("judge", mode="before")
    @classmethod
    def _judge_shorthand(cls, value: object) -> object:
        if value is True:
            return {}
        return None if value is False else value

    @model_validator(mode="after")
    def _check_turns(self) -> DialogueConfig:
        if self.min_turns > self.max_turns:
            raise ValueError(f"min_turns ({self.min_turns}) is above max_turns ({self.max_turns})")
        return self

    def planner_characteristics(self) -> tuple[Characteristic, ...]:
        if self.characteristics is None:
            return defaults_for(self.mode)
        return tuple(self.characteristics)
