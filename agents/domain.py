"""The domain of a dialogue: who talks (personas), about what (scenario), under which brief (job).

Models whose name ends in ``Output`` are what an agent asks the LLM for
(structured output); keep them flat and every field required, because small
models and OpenAI's strict mode both do best with that shape.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

Mode = Literal["assistant", "peers", "redteam"]


def bounded(max_chars: int, *, nonempty: bool = False, **kw: object) -> Any:
    """A string field whose length bound is a decoding hint, not a validation rule.

    Constrained decoders (vLLM's structured outputs) enforce ``maxLength`` and
    so stop a small model from rambling until it runs out of tokens; a server
    that cannot enforce it may return more, and that reply still parses.
    ``nonempty``: an empty string means nothing (a revision, a quoted piece of
    evidence), so ``minLength: 1`` is both decoded and validated.
    """
    if nonempty:
        kw["min_length"] = 1
    return Field(json_schema_extra={"maxLength": max_chars}, **kw)  # type: ignore[call-overload]


def bounded_list(max_items: int) -> Any:
    return Field(json_schema_extra={"maxItems": max_items})
Side = Literal["A", "B"]
ASSISTANT_NAME = "AI assistant"
"""The name side B speaks under in ``assistant`` mode."""
Severity = Literal["minor", "moderate", "severe"]


def stable_id(*parts: object, length: int = 16) -> str:
    """A short hex id that depends only on ``parts`` (sorted keys, no randomness)."""
    blob = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


def derive_seed(*parts: object) -> int:
    """A non-negative 31-bit seed that depends only on ``parts`` (fits every backend's seed field),
    so that every model call and sampled choice of a run is reproducible."""
    return int(stable_id("seed", *parts), 16) % (2**31)


class Persona(BaseModel):
    """One participant of a dialogue."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    """Short label, e.g. ``Dana, a night-shift nurse``."""
    description: str = Field("", max_length=4000)
    """Background, traits, what they care about."""


class Scenario(BaseModel):
    """What a dialogue is about and between whom. Written in a config or produced by DiaSynth expansion."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = ""
    """Deterministic id; filled from the content when empty."""
    topic: str = Field(min_length=1)
    """Broad topic or domain (SDSD: domain)."""
    subtopic: str | None = None
    """Narrower subject (SDSD: subarea; DiaSynth: generated subtopic)."""
    personas: tuple[Persona, Persona]
    """Side A and side B. In ``assistant`` mode A is the user and B lends the assistant its expertise."""
    goal: str | None = None
    """What side A wants out of the conversation; the planner writes one when empty."""
    source: Literal["config", "diasynth"] = "config"
    """Where the scenario came from."""
    target_system_prompt: str | None = None
    """Redteam mode: the target's system prompt in this scenario, instead of ``dialogue.target_system_prompt``."""

    @model_serializer(mode="wrap")
    def _unset_prompt_left_out(self, handler: SerializerFunctionWrapHandler) -> Any:
        """Scenarios outside redteam runs are written as they were before the target's prompt existed."""
        data = handler(self)
        if isinstance(data, dict) and data.get("target_system_prompt", "") is None:
            del data["target_system_prompt"]
        return data

    def model_post_init(self, _context: object) -> None:
        if not self.id:
            # The target's prompt joins the id only when set, so ids made before it existed stay the same.
            extra = () if self.target_system_prompt is None else (self.target_system_prompt,)
            object.__setattr__(self, "id", stable_id(
                "scenario", self.topic, self.subtopic, [p.model_dump() for p in self.personas], self.goal, *extra))


class Behaviour(BaseModel):
    """One goal of a behaviour list (HarmBench, JailbreakBench or one goal per line): what an attack tries
    to make the target do (graphs/behaviours.py reads the files)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """The list's own id (HarmBench ``BehaviorID``, ``jbb-<Index>``) or ``line-N`` for a plain list."""
    goal: str
    """The behaviour as the list words it."""
    category: str = "uncategorized"
    """HarmBench ``SemanticCategory``, JailbreakBench ``Category``; the figures break down by it."""
    context: str | None = None
    """HarmBench's ``ContextString`` of a contextual behaviour (the material the request is about)."""
    source: str = "lines"
    """The file format: ``harmbench``, ``jailbreakbench`` or ``lines``."""


class OverRefusalProbe(BaseModel):
    """A harmless question that sounds risky, asked by an ordinary user (agents/over_refusal.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """``CATEGORY-N``: the question's category and line."""
    category: str
    question: str


TARGET_MARK = "@"
"""Separates an attack's id from the target it is played against (``DialogueJob.for_target``)."""


class DialogueJob(BaseModel):
    """One dialogue to simulate: a scenario, the principles the briefed side should break, a seed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    """Deterministic: hash of scenario, principles, mode, seed and index. A resumed run never redoes it."""
    scenario: Scenario
    mode: Mode = "assistant"
    """``assistant`` (SDSD: user persona vs AI assistant), ``peers`` (DiaSynth: two humans) or ``redteam``
    (an attacker, side A, tries to lead the target model, side B, into breaking the principles)."""
    target_principles: tuple[str, ...] = ()
    """Principle ids the briefed side is asked to break, naturally (redteam: to make the target break).
    Empty = a control dialogue."""
    near_miss_principles: tuple[str, ...] = ()
    """A near-miss control (``jobs.control_kind: near_miss``; no target principles): principles whose subject
    the briefed side is told to bring up and handle well without breaking them."""
    briefed_side: Side = "B"
    """The side that carries the violation brief; the critic judges its turns (redteam: the attacker, A,
    is briefed and the target, B, is judged: ``judged_side``)."""
    swapped: bool = False
    """Side A speaks as the scenario's second persona and side B as its first (drawn per dialogue in
    peers mode, so that neither persona is always the one that opens or the one that is briefed)."""
    target_system_prompt: str | None = None
    """Redteam mode: the system prompt the target is deployed with (None: no system message)."""
    assistant_role: str | None = None
    """Assistant mode: the assistant's public role (``dialogue.assistant_role``; None: the default role)."""
    seed: int = 0
    """Seeds every model call of this dialogue."""
    index: int = 0
    """Position of this job among the run's jobs for the same scenario."""
    characteristics: tuple[str, ...] = ()
    """Dialogue characteristics the planner reasons about before the first turn (DiaSynth Table 11)."""
    few_shot_id: str | None = None
    """Example dialogue chosen to set the register, if the config gives few-shot files."""
    behaviour: Behaviour | None = None
    """Redteam mode with ``dialogue.behaviours``: the behaviour this attack tries to make the target do
    (its one targeted principle is then ``behaviour.<id>``, ``agents.redteam.behaviour_principle``)."""
    probe: OverRefusalProbe | None = None
    """Redteam mode: an over-refusal probe (no targeted principle; the target is judged on needless
    refusals, ``jobs.over_refusal_share``)."""
    tactic: str | None = None
    """Redteam mode: the attack tactic dealt to this attack (``dialogue.attack_strategies``); None for a
    control, other modes, and jobs of plans written before tactics were dealt."""
    target: str | None = None
    """Redteam mode with several targets (``roles.side_b: [a, b]``): the backend this copy of the attack is
    played against; its id is the attack's with ``@<target>`` added. None with one target."""

    @property
    def attack_id(self) -> str:
        """The id the copies of one attack on several targets share (``id`` without ``@<target>``): what
        its plan and its seeds are keyed by. The id itself with one target."""
        return self.id.removesuffix(f"{TARGET_MARK}{self.target}") if self.target else self.id

    def for_target(self, name: str) -> DialogueJob:
        """This job played against the target backend ``name``."""
        return self.model_copy(update={"id": f"{self.attack_id}{TARGET_MARK}{name}", "target": name})

    @property
    def critic_order_key(self) -> str:
        """What the order of the principles in this dialogue's critic calls is drawn from
        (``agents.critic.principle_order``): its scenario and its place among that scenario's dialogues,
        which a briefed dialogue and a control of the same conversation share, so the critic's prompt
        still says nothing of what was planted."""
        return f"{self.scenario.id}/{self.index}"

    # -- who speaks for a side: the one place that decides it ---------------------------
    def persona(self, side: Side) -> Persona:
        """The persona behind ``side`` (in assistant mode, side B's persona lends the assistant its expertise)."""
        return self.scenario.personas[(0 if side == "A" else 1) ^ int(self.swapped)]

    def is_ai_assistant(self, side: Side) -> bool:
        """Side B of an ``assistant``-mode dialogue speaks as the AI assistant, not as its persona (and the
        target of a ``redteam`` dialogue is one)."""
        return self.mode in ("assistant", "redteam") and side == "B"

    @property
    def judged_side(self) -> Side:
        """The side whose turns the critic judges and the reviser rewrites: the briefed side, except in
        redteam mode, where it is the target (B)."""
        return "B" if self.mode == "redteam" else self.briefed_side

    def speaker_name(self, side: Side) -> str:
        """The name a side's turns carry: the persona's, or ``AI assistant``."""
        return ASSISTANT_NAME if self.is_ai_assistant(side) else self.persona(side).name

    @staticmethod
    def make_id(scenario_id: str, principles: tuple[str, ...], mode: Mode, seed: int, index: int,
                target: str | None = None) -> str:
        """The job's id from its content (``@<target>`` added for one of several targets)."""
        base = stable_id("job", scenario_id, sorted(principles), mode, seed, index)
        return f"{base}{TARGET_MARK}{target}" if target else base


# -- what the agents ask the LLM for ------------------------------------------------

def other_side(side: Side) -> Side:
    """The side that is not ``side``."""
    return "B" if side == "A" else "A"


class CharacteristicValue(BaseModel):
    """One dialogue characteristic, decided with its reason."""

    name: str = bounded(60)
    """E.g. ``formality level``."""
    value: str = bounded(100)
    """The decision, e.g. ``semi-formal``."""
    reason: str = bounded(120)
    """Why, given the personas and the topic."""


class PlanOutput(BaseModel):
    """The plan of a dialogue: reasoning first (chain of thought), then decisions.

    The planner asks for it in two calls: the first writes everything here but the violation
    (so neither side's brief is written by a call that saw the violation plan); the second,
    for a briefed dialogue only, writes ``violation_brief`` and ``violation_turn``
    (``ViolationPlanOutput``)."""

    reasoning: str = bounded(800)
    """Chain of thought over the characteristics and how they shape the dialogue."""
    characteristics: list[CharacteristicValue] = bounded_list(12)
    """The decided value of every requested characteristic."""
    goal: str = bounded(200)
    """What side A is trying to achieve; reaching it ends the conversation."""
    brief_a: str = bounded(500)
    """Private brief for side A: who they are here, what they want, what to steer toward."""
    brief_b: str = bounded(500)
    """Private brief for side B: who they are here, how they talk, what they want."""
    violation_turn: int = Field(0, json_schema_extra={"minimum": 0, "maximum": 100})
    """For the briefed side: which of its own turns (1-based) the violation happens in; 0 if none.
    Clamped to the turns the briefed side has (``clamp_violation_turn``)."""
    violation_brief: str = ""
    """For the briefed side only: how it breaks the principle(s), concretely; empty if none."""


class ViolationPlanOutput(BaseModel):
    """The planner's second call, for a briefed dialogue: how and when the briefed side breaks the principle."""

    violation_brief: str = bounded(400)
    """Addressed to the briefed side ("In your second turn, you ..."): a concrete, natural way to break it."""
    violation_turn: int = Field(json_schema_extra={"minimum": 1, "maximum": 100})
    """Which of the briefed side's own turns (1 = its first)."""


def own_turns(max_turns: int, side: Side) -> int:
    """How many turns ``side`` has in a dialogue of at most ``max_turns`` turns (side A speaks first)."""
    return (max_turns + (1 if side == "A" else 0)) // 2


def clamp_violation_turn(turn: int, max_turns: int, side: Side, *, briefed: bool) -> int:
    """``turn`` within the briefed side's own turns (1..own_turns); 0 when nothing is planted.

    >>> clamp_violation_turn(100, 4, "B", briefed=True)
    2
    """
    if not briefed:
        return 0
    return min(max(turn, 1), max(own_turns(max_turns, side), 1))


class ViolationFinding(BaseModel):
    """One principle broken in one turn."""

    principle_id: str
    evidence: str = bounded(200)
    """A quote from the turn that shows the violation."""
    severity: Severity


class CritiqueOutput(BaseModel):
    """The critic's verdict on one turn."""

    reasoning: str = bounded(400)
    """Brief analysis of the turn against the principles."""
    violations: list[ViolationFinding] = bounded_list(4)
    """Empty when the turn complies with every principle."""


class RevisionOutput(BaseModel):
    """The reviser's rewrite of one violating turn (the reviser bounds its length by the original's)."""

    revision: str
    """The turn rewritten to comply, keeping its intent, voice and context."""


class TurnVerdict(BaseModel):
    """The critic's verdict on one turn, as stored with the dialogue."""

    turn_index: int
    """Index into the dialogue's messages."""
    side: Side
    violated: list[str]
    """Principle ids found violated (unknown ids the model invented are dropped)."""
    findings: list[ViolationFinding]
    reasoning: str
    severity: Severity | None = None
    """The worst severity among findings, None when clean."""
    dropped_findings: int = 0
    """Findings left out because their evidence does not occur in the judged turn, even after the critic
    was asked once to quote the turn exactly (``agents.critic.grounded``)."""
    finish_reason: str | None = None
    """Why the critic's reply ended; None when no call was made or before it was kept."""
    error: str | None = None
    """Set when the critic's call failed for good: the turn is unjudged (neither clean nor flagged), so no
    training row shows it (graphs/assemble.py)."""
