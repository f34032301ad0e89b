"""Records written to a run directory. Their field names are the public contract:
users load these files with ``datasets`` and train on them with TRL.

- ``dialogues.jsonl``: one DialogueRecord per finished (or failed) dialogue
- ``preferences.jsonl``: one PreferenceRecord per revised turn, TRL's
  conversational preference format (``prompt`` / ``chosen`` / ``rejected``)
  plus metadata columns
- ``sft.jsonl``: one SFTRecord (``messages``) per dialogue with its verified
  revisions applied
- ``scenarios.jsonl``: one Scenario per line (agents.types.Scenario)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sparring.agents.domain import Behaviour, CharacteristicValue, Mode, OverRefusalProbe, Scenario, Side, TurnVerdict

StopReason = Literal["done_signal", "max_turns", "violation", "error"]
SCHEMA_VERSION = 1


class Message(BaseModel):
    """One turn. ``role`` is from side B's point of view: A speaks as ``user``, B as ``assistant``."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    speaker: Side
    name: str
    """The persona's name (or ``AI assistant``)."""
    content: str
    finish_reason: str | None = None
    """Why the model stopped writing this turn (``stop``; ``length``: cut at ``max_tokens``, so never a
    training target); None in records written before it was kept."""


class Revision(BaseModel):
    """A rewrite of one violating turn and whether it passed re-judging."""

    model_config = ConfigDict(extra="forbid")

    turn_index: int
    original: str
    revised: str
    principle_ids: list[str]
    """What the original turn violated (what the revision had to fix)."""
    verified: bool
    """True when the verifier found nothing violated in the revision: no principle in the critic's scope (those
    the original broke or any other) and, in redteam mode, not the target's system prompt."""
    remaining: list[str] = Field(default_factory=list)
    """What the verifier found violated in the revision: principle ids, ``deployment.system-prompt`` for the
    deployment's rule. One the original did not break (``principle_ids``) is a new flaw (``revision_flagged``)."""
    error: str | None = None
    """Set when the reviser's (``revised`` is empty) or the verifier's call failed for good: the
    message names the step. Such a revision is not verified and gives no pair."""
    finish_reason: str | None = None
    """Why the reviser's reply ended (``length``: cut, so never a chosen); None before it was kept."""
    verify_finish_reason: str | None = None
    """Why the verifier's reply ended; None when not verified or before it was kept."""
    answered: bool = False
    """The conversation went on from this revision: the turns after it were written seeing it, not the original
    (with branching on, a verified revision of a turn before the planted one, made as the turn was spoken)."""


class Branch(BaseModel):
    """The dialogue continued from the verified revision of its first flagged turn (``dialogue.branch_turns``):
    a conversation consistent from start to end, from which its pairs and SFT row are made."""

    model_config = ConfigDict(extra="forbid")

    from_turn: int
    """The trunk turn whose verified revision the branch continues from."""
    messages: list[Message]
    """The whole branch: the trunk's turns before ``from_turn``, the revision, then the new turns."""
    verdicts: list[TurnVerdict] = Field(default_factory=list)
    """Verdicts on the judged side's new turns (after ``from_turn``)."""
    revisions: list[Revision] = Field(default_factory=list)
    stop_reason: StopReason = "max_turns"


class TokenCounts(BaseModel):
    """Tokens and model calls."""

    model_config = ConfigDict(extra="forbid")

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0


class DialogueUsage(TokenCounts):
    """A dialogue's model usage, retries and re-asks included."""

    by_agent: dict[str, TokenCounts] = Field(default_factory=dict)
    """Per agent: ``planner``, ``persona_A`` (redteam: the attacker), ``persona_B``, ``target``, ``critic``,
    ``reviser``, ``verifier``, ... (calls outside any agent: ``other``)."""


class DialogueRecord(BaseModel):
    """A whole simulated dialogue with its plan, verdicts and revisions."""

    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    id: str
    """The DialogueJob id."""
    trace_id: str | None
    """The trace in traces.jsonl that produced this record."""
    status: Literal["ok", "failed"]
    mode: Mode
    scenario: Scenario
    goal: str
    target_principles: list[str]
    near_miss_principles: list[str] = Field(default_factory=list)
    """A near-miss control's principles: the briefed side was told to bring their subject up and handle
    it well without breaking them (``jobs.control_kind: near_miss``); empty otherwise."""
    briefed_side: Side
    swapped: bool = False
    """Side A spoke as the scenario's second persona, side B as its first (``jobs.briefed_side: drawn``)."""
    seed: int
    plan: dict[str, Any]
    """The planner's output (briefs, goal, violation turn; redteam: the attacker's strategy) as decided."""
    characteristics: list[CharacteristicValue]
    """Decided dialogue characteristics (DiaSynth's CoT), structured."""
    reasoning: str
    """The planner's chain of thought, as text."""
    few_shot_id: str | None = None
    messages: list[Message]
    verdicts: list[TurnVerdict]
    """One per judged turn."""
    revisions: list[Revision]
    critic_principles: list[str] | None = None
    """The principle ids the critic judged against, when not the run's whole set (``critic_scope: targeted``:
    the targeted ones, or for a control the probe principle drawn for it)."""
    branch: Branch | None = None
    """The continuation from the first flagged turn's verified revision, when ``dialogue.branch_turns`` is set."""
    is_violation: bool
    """True when the critic found at least one violation in the judged side's turns."""
    violated_principles: list[str]
    """Union of principle ids found violated."""
    targeted_violated: bool
    """True when a targeted principle was among those found (the critic caught the planted violation)."""
    stop_reason: StopReason
    turns: int
    error: str | None = None
    usage: DialogueUsage = DialogueUsage()
    duration_s: float = 0.0
    summary: str | None = None
    """Optional summary (DiaSynth's downstream task)."""
    scores: dict[str, float] = Field(default_factory=dict)
    """Optional LLM-as-judge scores by criterion (G-Eval, 1-3): engagingness, naturalness, coherence,
    groundedness."""
    scoring: str | None = None
    """How ``scores`` were computed: ``logprobs`` (probability-weighted over the ratings 1-3) or
    ``samples:N`` (mean of N sampled ratings); None when unscored."""
    strategy: str | None = None
    """Redteam mode: the attack strategy the planner chose (None for a control dialogue and other modes)."""
    target_system_prompt: str | None = None
    """Redteam mode: the system prompt the target was deployed with (None: none, and other modes)."""
    behaviour: Behaviour | None = None
    """Redteam mode with a behaviour list: the behaviour attacked (id, goal, category, context, source)."""
    probe: OverRefusalProbe | None = None
    """Redteam mode: the over-refusal probe this dialogue asked (its target turns judged for needless refusals)."""
    attack_access: Literal["black-box", "white-box"] | None = None
    """Redteam mode: ``white-box`` when the attack planner was shown the target's system prompt
    (``dialogue.attacker_sees_system_prompt``), ``black-box`` when it saw only what a user sees."""
    assistant_role: str | None = None
    """Assistant mode: the assistant's public role when the config gave one (``dialogue.assistant_role``)."""
    models: dict[str, str] = Field(default_factory=dict)
    """The model behind each role of this dialogue (``planner``, ``side_a``, ``side_b``, ``critic``, ...)."""
    target: str | None = None
    """Redteam mode with several targets (``roles.side_b: [a, b]``): the backend the attack was played
    against (``models.side_b`` is its model); the id is the attack's with ``@<target>``. None with one target."""
    plan_from: str | None = None
    """Several targets: the dialogue whose planner call made this attack's plan, when another copy of the
    attack made it (its planner tokens are in that dialogue's ``usage``); None when this one made it."""


class PreferenceRecord(BaseModel):
    """One chosen/rejected pair in TRL's conversational preference format, plus metadata columns."""

    model_config = ConfigDict(extra="forbid")

    id: str
    prompt: list[dict[str, str]]
    """System message (the side's public role, never its private brief) + conversation before the turn."""
    chosen: list[dict[str, str]]
    """``[{"role": "assistant", "content": revision}]``."""
    rejected: list[dict[str, str]]
    """``[{"role": "assistant", "content": original turn}]``."""
    dialogue_id: str
    turn_index: int
    principle_ids: list[str]
    critique: str
    """The critic's evidence and reasoning for the original turn."""
    severity: str
    verified: bool
    mode: Mode
    trace_id: str | None
    from_branch: bool = False
    """The turn is one of the dialogue's branch (its prompt is the branch before it)."""
    models: dict[str, str] = Field(default_factory=dict)
    """The model behind each role of the dialogue: ``rejected`` is ``side_b``'s (or ``side_a``'s) own output,
    ``chosen`` the ``reviser``'s, checked by the ``verifier``'s."""
    target: str | None = None
    """Redteam mode with several targets: the target backend whose turn ``rejected`` is (the dialogue's ``target``)."""


class SFTRecord(BaseModel):
    """A dialogue for supervised fine-tuning: its flagged turns replaced by their verified revisions, cut
    before the first flagged turn that has none (no flagged turn is ever a training target)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    messages: list[dict[str, str]]
    dialogue_id: str
    revised_turns: list[int]
    cut_at: int | None = None
    """The turn the dialogue was cut before (``cut_reason`` says why); None when whole."""
    cut_reason: str | None = None
    """Why it was cut (graphs.assemble.SFT_CUTS): before ``unfixed`` (a flagged turn without a verified
    revision, or an unjudged one), ``cut_turn`` (a turn of the judged side cut at the token limit) or
    ``planted`` (the turn written under the violation instruction, not flagged), or ``after_revision`` (the
    other side answered the original); None when whole."""
    from_branch: bool = False
    """Made from the dialogue's branch."""
    target: str | None = None
    """Redteam mode with several targets: the target backend whose turns the row holds (the dialogue's ``target``)."""
