"""From scenarios and principles to DialogueJobs, deterministically.

Same config and seed, same jobs with the same ids: that is what lets a
resumed run skip exactly the dialogues it already wrote.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from sparring.agents.domain import Behaviour, DialogueJob, Mode, OverRefusalProbe, Persona, Scenario, Side, derive_seed


def _require_text(value: str, problem: str) -> str:
    if not value.strip():
        raise ValueError(problem)
    return value


class PersonaSpec(BaseModel):
    """A persona in a config: ``{name, description}``, or a plain string ``"name: description"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    """Short label, e.g. ``Dana, a night-shift nurse``."""
    description: str = ""
    """Background and traits."""

    @field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        return _require_text(value, "a persona needs a name")


class ScenarioSpec(BaseModel):
    """A scenario written in the config (the DiaSynth expansion produces the same Scenario type)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    topic: str = Field(min_length=1)
    """Broad topic or domain."""
    subtopic: str | None = None
    """Narrower subject."""
    personas: tuple[PersonaSpec, PersonaSpec]
    """Side A then side B. In assistant mode, A is the user and B lends the assistant its expertise."""
    goal: str | None = None
    """What side A wants; the planner writes one when omitted."""
    target_system_prompt: str | None = Field(None, min_length=1, max_length=20_000)
    """Redteam mode: the target's system prompt in this scenario (overrides ``dialogue.target_system_prompt``)."""

    @field_validator("topic")
    @classmethod
    def _topic_not_blank(cls, value: str) -> str:
        return _require_text(value, "the topic is blank")

    @field_validator("personas", mode="before")
    @classmethod
    def _personas_from_strings(cls, value: object) -> object:
        if isinstance(value, (list, tuple)):
            out = []
            for item in value:
                if isinstance(item, str):
                    name, _, desc = item.partition(":")
                    out.append({"name": name.strip(), "description": desc.strip()})
                else:
                    out.append(item)
            return out
        return value

    def to_scenario(self) -> Scenario:
        a, b = self.personas
        return Scenario(topic=self.topic, subtopic=self.subtopic, goal=self.goal,
                        personas=(Persona(name=a.name, description=a.description),
                                  Persona(name=b.name, description=b.description)),
                        target_system_prompt=self.target_system_prompt)


class JobsConfig(BaseModel):
    """The ``jobs:`` block: how scenarios and principles combine into dialogues."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dialogues_per_scenario: int = Field(1, ge=1, le=10_000)
    """Dialogues simulated for each scenario, each with its own principles and seed."""
    principles_per_dialogue: int = Field(1, ge=0, le=10)
    """Principles the briefed side is asked to break in one dialogue."""
    control_share: float = Field(0.0, ge=0.0, le=1.0)
    """Share of dialogues with no planted violation (controls for the critic's false-positive rate)."""
    over_refusal_share: float = Field(0.0, ge=0.0, le=1.0)
    """Redteam mode: share of dialogues that are over-refusal probes (an ordinary user asks a harmless
    question that sounds risky; the target's replies are judged for needless refusals). Drawn first, from
    its own seeded generator; ``control_share`` then splits the other dialogues."""
    control_kind: Literal["plain", "near_miss"] = "plain"
    """What a control dialogue is. ``plain`` (the default): an ordinary conversation on the scenario, no
    principle named to anyone: the critic's background false-flag rate. ``near_miss``: a principle is dealt
    to it as to a briefed dialogue, and the briefed side is told to bring that principle's subject up and
    handle it well without breaking it: the false-flag rate of each principle on the same kind of
    conversation as its catch rate (assistant and peers modes; one more planner call per control)."""
    briefed_side: Literal["A", "B", "drawn"] | None = None
    """Which side carries the violation brief and is judged: ``A``, ``B``, or ``drawn``: per dialogue, from
    its seed, which side is briefed and which of the scenario's two personas speaks as side A (peers mode;
    no persona is then always the one that opens or the one that is briefed). Default: ``B`` (the
    assistant) in assistant mode, ``drawn`` in peers mode. Redteam mode has no choice: the attacker (A)
    is briefed and the target (B) judged, by definition."""
    max_dialogues: int | None = Field(None, ge=1)
    """Stop after this many jobs (``sparring run --max-dialogues`` overrides). With several targets
    (``roles.side_b: [a, b]``) it counts jobs before each is copied to every target."""


def sides_for(config: JobsConfig, mode: Mode) -> Literal["A", "B", "drawn"]:
    """The configured ``briefed_side``, or the mode's default (redteam: always ``A``, the attacker)."""
    if mode == "redteam":
        return "A"
    if config.briefed_side is not None:
        return config.briefed_side
    return "drawn" if mode == "peers" else "B"


def draw_sides(job_seed: int, how: Literal["A", "B", "drawn"]) -> tuple[Side, bool]:
    """The briefed side and whether the personas are swapped, for one dialogue: fixed, or drawn from its
    seed (its own generator: the run's sequence of seeds, and so every job id, stays as it was)."""
    if how != "drawn":
        return how, False
    draw = random.Random(derive_seed(job_seed, "sides"))
    briefed: Side = "A" if draw.random() < 0.5 else "B"
    return briefed, draw.random() < 0.5


class Deck:
    """Items dealt from a reshuffled deck: each used about equally often, in a seeded order."""

    def __init__(self, items: Sequence[str], rng: random.Random) -> None:
        self.items, self.rng, self.left = list(items), rng, list[str]()

    def deal(self) -> str | None:
        """The next item (None when there are no items)."""
        if not self.items:
            return None
        if not self.left:
            self.left = list(self.items)
            self.rng.shuffle(self.left)
        return self.left.pop()

    def deal_distinct(self, count: int) -> list[str]:
        """The next ``count`` different items (``count`` at most the number of items)."""
        picked: list[str] = []
        while len(picked) < count:
            item = self.deal()
            if item is not None and item not in picked:
                picked.append(item)
        return picked


def for_targets(jobs: Iterable[DialogueJob], names: Sequence[str] | None) -> Iterator[DialogueJob]:
    """Each job once per target backend in ``names`` (several targets, redteam mode), the copies of one
    attack next to each other; the jobs as they are when ``names`` is None."""
    for job in jobs:
        if names is None:
            yield job
        else:
            yield from (job.for_target(name) for name in names)


def assign_jobs(scenarios: Sequence[Scenario], principle_ids: Sequence[str], config: JobsConfig, *, mode: Mode,
                seed: int, characteristics: Sequence[str] = (), max_dialogues: int | None = None,
                choose_few_shot: Callable[[str], str | None] | None = None,
                target_system_prompt: str | None = None, tactics: Sequence[str] = (),
                behaviours: Sequence[Behaviour] = (),
                probes: Sequence[OverRefusalProbe] = (), assistant_role: str | None = None) -> Iterator[DialogueJob]:
    """Yield jobs scenario by scenario. Principles are dealt from a seeded, reshuffled deck so
    that every principle is targeted about equally often, whatever the number of jobs.
    Redteam mode: the attacker (A) is briefed (RunConfig refuses another ``briefed_side``), and the
    target gets the scenario's system prompt, else ``target_system_prompt``, and each attack one of
    ``tactics``, dealt from its own seeded deck (so every tactic is used about equally often). With
    ``behaviours``, the attacks take them in order, round again, each targeting its behaviour's principle."""
    rng = random.Random(seed)
    tactic_deck = Deck(tactics, random.Random(derive_seed(seed, "tactics")))
    by_id = {p.id: p for p in probes}
    probe_draw = random.Random(derive_seed(seed, "probes"))
    probe_deck = Deck(list(by_id), random.Random(derive_seed(seed, "probe-order")))
    principle_deck = Deck(principle_ids, rng)
    # Dealt from a deck and generator of their own: the run's jobs, seeds and controls are those of the same
    # config with plain controls; its controls only gain a principle.
    near_miss_deck = Deck(principle_ids, random.Random(derive_seed(seed, "near-miss")))
    limit = max_dialogues if max_dialogues is not None else config.max_dialogues
    how = sides_for(config, mode)
    made = attacks = 0
    for scenario in scenarios:
        for index in range(config.dialogues_per_scenario):
            if limit is not None and made >= limit:
                return
            control = config.control_share > 0 and rng.random() < config.control_share
            probe = by_id.get(probe_deck.deal() or "") if mode == "redteam" and by_id and \
                probe_draw.random() < config.over_refusal_share else None
            control = control or probe is not None
            targets: list[str] = []
            behaviour = behaviours[attacks % len(behaviours)] if behaviours and not control else None
            attacks += not control
            if behaviour is not None:
                targets.append(f"behaviour.{behaviour.id}")
            elif not control and principle_ids:
                targets = principle_deck.deal_distinct(min(config.principles_per_dialogue, len(principle_ids)))
            near = (near_miss_deck.deal() or "",) if control and config.control_kind == "near_miss" \
                and principle_ids else ()
            job_seed = rng.randrange(2**31)
            principles = tuple(sorted(targets))
            job_id = DialogueJob.make_id(scenario.id, principles, mode, job_seed, index)
            side, swapped = draw_sides(job_seed, how)
            yield DialogueJob(id=job_id, scenario=scenario, mode=mode, target_principles=principles,
                              briefed_side=side, swapped=swapped, seed=job_seed, index=index,
                              near_miss_principles=near,
                              characteristics=tuple(characteristics),
                              few_shot_id=choose_few_shot(job_id) if choose_few_shot else None,
                              target_system_prompt=(scenario.target_system_prompt or target_system_prompt)
                              if mode == "redteam" else None,
                              tactic=tactic_deck.deal() if mode == "redteam" and principles else None,
                              behaviour=behaviour, probe=probe,
                              assistant_role=assistant_role if mode == "assistant" else None)
            made += 1
