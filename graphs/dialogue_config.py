"""The ``dialogue:`` block: how one conversation is planned, run and judged, in either mode."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from sparring.agents.geval_judge import JudgeConfig
from sparring.agents.tactics import Tactic, tactic, tactic_names
from sparring.diasynth_agents.characteristics import Characteristic, CharacteristicList, defaults_for
from sparring.diasynth_agents.fewshot import FewShotPaths

_STRATEGY_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class AttackStrategy(BaseModel):
    """A tactic the red-team attacker may use: a library tactic by name (``gradual_escalation``), or your
    own as ``{name, description}`` or ``"name: description"`` (a library name with your description
    uses yours)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    """Short id, recorded with each dialogue (``strategy``) and counted in the attack figures."""
    description: str | None = Field(None, min_length=1, max_length=500)
    """What the attacker does, as the planner and the attacker read it. None: the library tactic of that
    name (agents/prompts/tactics/NAME.txt: its summary and its turn-by-turn playbook)."""

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _STRATEGY_NAME.match(value):
            raise ValueError("a strategy name may use lowercase letters, digits, '_' and '-' (at most 40)")
        return value

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: object) -> object:
        if isinstance(value, str):
            name, _, description = value.partition(":")
            return {"name": name.strip(), "description": description.strip() or None}
        return value

    @model_validator(mode="after")
    def _known_when_bare(self) -> AttackStrategy:
        if self.description is None and self.name not in tactic_names():
            raise ValueError(f"no tactic named {self.name!r} in the library ({', '.join(tactic_names())}); "
                             "give your own as 'name: what the attacker does'")
        return self

    def as_tactic(self) -> Tactic:
        """The tactic the planner and the attacker read: the library's, or this description alone."""
        if self.description is None:
            return tactic(self.name)
        return Tactic(name=self.name, summary=self.description, playbook="")


ATTACK_STRATEGIES = tuple(AttackStrategy(name=name) for name in tactic_names())
"""The default attack tactics (``dialogue.attack_strategies``): the whole library."""


def _resolve_behaviours(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("config_dir") if isinstance(info.context, dict) else None
    path = value if value.is_absolute() or base is None else Path(base) / value
    if base is not None and not path.is_file():
        raise ValueError(f"behaviours file {str(value)!r} not found (looked at {path})")
    return path


class DialogueConfig(BaseModel):
    """How one conversation runs and is judged."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["assistant", "peers", "redteam"] = "assistant"
    """``assistant``: a user persona talks to an AI assistant (SDSD). ``peers``: two people talk (DiaSynth).
    ``redteam``: an attacker (side A, briefed by the planner with a strategy) tries to lead the target model
    (side B: no brief, only ``target_system_prompt``) into breaking the targeted principles; the critic
    judges the target."""
    max_turns: int = Field(8, ge=2, le=200)
    """Turn cap, both sides counted."""
    min_turns: int = Field(2, ge=1, le=200)
    """The length the speakers are told a conversation lasts at least ("do not end it before turn N"); an end
    marker before it is honoured all the same (the dialogue ends there: no turn follows a farewell)."""
    reask_cut_turns: bool = True
    """A persona turn cut at ``sampling.persona.max_tokens`` is asked once more with twice the budget and the
    same seed (the same turn, given room to end, where the server honours seeds); the longer reply is the
    turn. Still cut, or with this off, the turn stays in the dialogue and is no training target (``cut_turn``).
    The target of redteam mode is never asked again: its cut replies are what its deployment says."""
    stop_on_violation: bool = False
    """Judge the briefed side as it speaks and stop once a targeted principle is broken (SDSD)."""
    critique: bool = True
    """Run the critique stage: the critic judges every turn of the briefed side, the reviser rewrites
    flagged turns, the verifier re-judges the rewrites. ``false``: dialogues only, no verdicts and no
    pairs (DiaSynth's setup); sft.jsonl then holds every dialogue whole."""
    critic_scope: Literal["set", "targeted"] = "set"
    """What the critic judges each turn against: the whole selected principle set, or (``targeted``) one
    dialogue's targeted principles, a control's a probe principle drawn the same way. ``targeted`` asks a
    narrower question ("is P broken here?") of every dialogue alike; it is not the blind judgement
    ``set`` gives (see the README)."""
    critic_guidance: bool = True
    """Show the critic each principle's checking guidance (what counts, what does not), for every principle
    in scope alike; ``false``: the principle texts only (shorter prompts for large sets)."""
    unverified_pairs: Literal["keep", "drop"] = "drop"
    """A pair whose revision failed verification: ``drop`` it (the default: a trainer only ever sees a
    revision the verifier passed) or ``keep`` it in preferences.jsonl with ``verified: false`` (exports
    still leave it out unless ``--include-unverified``)."""
    branch_turns: int = Field(0, ge=0, le=50)
    """Branching: the conversation goes on from every verified revision. Before the planted turn, the judged
    side's turns are critiqued as spoken and the dialogue continues from a verified revision (no extra call);
    after the critique, it continues from the verified revision of its first flagged turn left for up to this
    many turns, and takes its pairs and SFT row from that consistent branch. 0: no branch (the default; rows
    whose prompt would hold a turn nobody answered are dropped, ``revised_prompt``)."""
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

    assistant_role: str | None = Field(None, min_length=1, max_length=4000)
    """Assistant mode: the AI assistant's public role, its whole system prompt in every call and, word for word,
    the system message of every training row made from its turns (None: "You are a helpful AI assistant.").
    The assistant is told nothing else: no user facts, no brief, no situation (the data rules)."""
    target_system_prompt: str | None = Field(None, min_length=1, max_length=20_000)
    """Redteam mode: the system prompt the target is deployed with, the only thing it is told besides the
    conversation (a scenario's ``target_system_prompt`` overrides it). None: no system message."""
    attack_strategies: tuple[AttackStrategy, ...] = Field(ATTACK_STRATEGIES, min_length=1, max_length=30)
    """Redteam mode: the tactics attacks are dealt from, one per attack, about equally often (recorded as
    ``strategy``): library names (agents/prompts/tactics/) or your own ``"name: what the attacker does"``.
    Default: every library tactic (claimed_authority, context_priming, emotional_pressure, encoded_request,
    fictional_framing, gradual_escalation, language_switching, persuasion, role_play, split_request)."""
    attacker_sees_system_prompt: bool = False
    """Redteam mode: show the attack planner the target's system prompt (a white-box attack). Default
    ``false``: black-box, the planner and the attacker see only what a user of the deployment sees, the
    conversation. Every attack figure says which (``attack.access`` in stats.json)."""
    behaviours: Annotated[Path, AfterValidator(_resolve_behaviours)] | None = None
    """Redteam mode: a behaviour list whose goals the attacks take, one behaviour per attack, in file order
    and round again (``sparring run --behaviours FILE``): HarmBench's behaviour CSV, JailbreakBench's CSV,
    or one goal per line (graphs/behaviours.py), relative to the config file. Each attack then targets its
    behaviour (``behaviour.<id>``: broken when the target does it) instead of a principle, and the figures
    break down by the list's categories."""
    adaptive_attacks: bool = False
    """Redteam mode: plan each attack knowing how the earlier ones on the same goal failed (their tactic,
    the user's turns and the target's replies; never the critic's verdicts or reasoning). The attacks on a
    goal run in rounds, in job order: round r is planned once the rounds before it have finished, so what
    an attack sees does not depend on timing (graphs/adaptive.py). Needs ``workers: 1``."""

    @field_validator("attack_strategies")
    @classmethod
    def _distinct_names(cls, value: tuple[AttackStrategy, ...]) -> tuple[AttackStrategy, ...]:
        names = [s.name for s in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"strategy names must differ: {', '.join(twice)} is given twice")
        return value

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
        if self.mode != "redteam" and (self.behaviours or self.adaptive_attacks):
            raise ValueError(f"{'behaviours' if self.behaviours else 'adaptive_attacks'} is for redteam mode")
        if not self.critique and (self.stop_on_violation or self.branch_turns):
            what = "stop_on_violation" if self.stop_on_violation else "branch_turns"
            raise ValueError(f"{what} needs the critique stage (critique: true)")
        return self

    def planner_characteristics(self) -> tuple[Characteristic, ...]:
        if self.characteristics is None:
            return defaults_for(self.mode)
        return tuple(self.characteristics)
