"""Dialogue characteristics the planner reasons about before a dialogue starts (DiaSynth, Table 11).

The planner (agents/planner.py) asks for a decision per characteristic and the
reasoning behind them; this module supplies what to reason about.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from .text import normalize


class Characteristic(BaseModel):
    """One aspect of a dialogue to decide before it starts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=100)
    """Short name, e.g. ``formality level``; the planner's decision carries the same name."""
    description: str = Field("", max_length=1000)
    """What the aspect covers and why it matters to the dialogue."""


# The ten characteristics of DiaSynth's Table 11, described in this project's words.
TABLE_11: tuple[Characteristic, ...] = (
    Characteristic(name="age and gender", description=(
        "How old each speaker is and their gender; shapes vocabulary, references and tone.")),
    Characteristic(name="familiarity level", description=(
        "How well the speakers know each other (strangers, acquaintances, colleagues, friends, family); "
        "sets how personal and how formal they are.")),
    Characteristic(name="emotional states", description=(
        "How each speaker feels going in (relaxed, anxious, excited, irritated, ...); colours tone and pace.")),
    Characteristic(name="formality level", description=(
        "How polite or casual the exchange is, from formal courtesy to slang.")),
    Characteristic(name="duration of the conversation", description=(
        "How long the exchange runs and how deep it goes, from a quick check-in to a long discussion.")),
    Characteristic(name="communication medium", description=(
        "How the words travel: face to face, phone call, video call, text chat; changes turn length and style.")),
    Characteristic(name="topic of the conversation", description=(
        "What exactly is discussed, and where the discussion is heading.")),
    Characteristic(name="location of the conversation", description=(
        "Where the speakers are (office, cafe, home, apart); adds context for formality and content.")),
    Characteristic(name="agreement or disagreement", description=(
        "How far the speakers agree on the subject; drives the dynamics, from easy consensus to debate.")),
    Characteristic(name="natural dialogue features", description=(
        "Fillers, pauses, interruptions, slang and other marks of real speech, where they fit the speakers.")),
)


def builtin(name: str) -> Characteristic | None:
    """The Table 11 characteristic called ``name``, if there is one."""
    wanted = normalize(name)
    return next((c for c in TABLE_11 if normalize(c.name) == wanted), None)


# Defaults for a user-and-assistant chat: Table 11 is about two people talking.
ASSISTANT_DEFAULTS = ("age and gender", "emotional states", "formality level", "topic of the conversation",
                      "natural dialogue features")


def _from_names(value: Any) -> Any:
    if not isinstance(value, list):
        return value
    return [(builtin(item) or {"name": item.strip()}) if isinstance(item, str) else item for item in value]


def _unique(value: list[Characteristic]) -> list[Characteristic]:
    seen = set()
    for c in value:
        if not c.name.strip():
            raise ValueError("a characteristic needs a name")
        if normalize(c.name) in seen:
            raise ValueError(f"characteristic {c.name!r} is listed twice")
        seen.add(normalize(c.name))
    return value


CharacteristicList = Annotated[list[Characteristic], BeforeValidator(_from_names), AfterValidator(_unique)]
"""A config list of characteristics: ``{name, description}`` mappings or bare names
(a Table 11 name brings its description); names must be unique."""


def defaults_for(mode: str) -> tuple[Characteristic, ...]:
    """What the planner reasons about when the config does not say: Table 11 for two people,
    a subset of it for a user talking to an assistant."""
    if mode == "peers":
        return TABLE_11
    return tuple(c for c in TABLE_11 if c.name in ASSISTANT_DEFAULTS)
