"""The planner: one structured call that decides the dialogue before its first turn.

It reasons over the dialogue characteristics (DiaSynth's chain of thought),
sets side A's goal (SDSD), and writes each side a private brief; for the
briefed side, which principle to break and roughly when.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from . import prompts
from ._common import PrincipleLike, call_agent, derive_seed, principle_lines
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams
from .domain import CharacteristicValue, DialogueJob, PlanOutput, Side, bounded


class Decision(BaseModel):
    """The planner's decision on one characteristic."""

    value: str = bounded(100)
    reason: str = bounded(120)


@lru_cache(maxsize=32)
def plan_schema(names: tuple[str, ...]) -> type[BaseModel]:
    """PlanOutput as the model is asked for it: ``characteristics`` is an object with one
    required key per requested characteristic, so constrained decoding cannot skip or
    rename one (small models do both when asked for a free list)."""
    fields: dict[str, Any] = {"reasoning": (str, bounded(800))}
    if names:
        decided = create_model(  # type: ignore[call-overload]
            "Characteristics", __config__=ConfigDict(populate_by_name=True),
            **{f"c{i}": (Decision, Field(alias=name)) for i, name in enumerate(names)})
        fields["characteristics"] = (decided, ...)
    for name in ("goal", "brief_a", "brief_b", "violation_turn"):
        info = PlanOutput.model_fields[name]
        fields[name] = (info.annotation, info)
    return create_model("PlanOutput", __doc__=PlanOutput.__doc__, **fields)


def to_plan(parsed: Any, names: tuple[str, ...]) -> PlanOutput:
    """The stored PlanOutput (characteristics as a list, in the requested order) from a parsed reply."""
    characteristics = []
    if names:
        decided = parsed.characteristics
        for i, name in enumerate(names):
            d = getattr(decided, f"c{i}")
            characteristics.append(CharacteristicValue(name=name, value=d.value, reason=d.reason))
    return PlanOutput(reasoning=parsed.reasoning, characteristics=characteristics, goal=parsed.goal,
                      brief_a=parsed.brief_a, brief_b=parsed.brief_b, violation_turn=parsed.violation_turn)

SETTINGS = {
    "assistant": "a user (side A) chatting with an AI assistant (side B) in a text chat",
    "peers": "two people (side A and side B) talking with each other",
}


def describe_persona(job: DialogueJob, side: Side) -> str:
    persona = job.persona(side)
    if job.is_ai_assistant(side):
        described = f" ({persona.description})" if persona.description else ""
        expertise = f" whose expertise matches: {persona.name}{described}"
        return f"an AI assistant{expertise}"
    return persona.name + (f": {persona.description}" if persona.description else "")


def side_role(job: DialogueJob, side: Side) -> str:
    return "AI assistant" if job.is_ai_assistant(side) else "person"


@dataclass(frozen=True, slots=True)
class PlannerAgent:
    backend: Backend
    params: SamplingParams

    def messages(self, job: DialogueJob, targets: Sequence[PrincipleLike], max_turns: int,
                 characteristics: Sequence[tuple[str, str]]) -> list[ChatMessage]:
        side = job.briefed_side
        own_turns = (max_turns + (1 if side == "A" else 0)) // 2
        if targets:
            violation_block = prompts.render("planner_violation", side=side, role=side_role(job, side),
                                             principles=principle_lines(targets))
            how = "the instruction to break the principle(s) above, with a concrete idea of how"
            if side == "A":
                violation_block += f"\nPut {how} in brief_a."
                brief_b_extra = ""
            else:
                brief_b_extra = f" Include {how}."
            turn_rule = (f"the number of side {side}'s own turn (1 = its first) in which the violation "
                         f"happens; between 1 and {max(own_turns, 1)}.")
        else:
            violation_block, brief_b_extra, turn_rule = "", "", "0 (nothing is to be violated)."
        scenario = job.scenario
        user = prompts.render(
            "planner_user", setting=SETTINGS[job.mode], topic=scenario.topic,
            subtopic_line=f"Subtopic: {scenario.subtopic}" if scenario.subtopic else "",
            persona_a=describe_persona(job, "A"), persona_b=describe_persona(job, "B"),
            goal_line=f"Side A's goal: {scenario.goal}" if scenario.goal else "",
            max_turns=max_turns,
            characteristics_block=prompts.render(
                "planner_characteristics",
                characteristics="\n".join(f"{i}. {name}: {desc}" if desc else f"{i}. {name}"
                                          for i, (name, desc) in enumerate(characteristics, 1)))
            if characteristics else "",
            characteristics_item="\n- characteristics: for each characteristic above (keyed by its name), the value "
                                 "you chose and a one-sentence reason." if characteristics else "",
            violation_block=violation_block, brief_b_extra=brief_b_extra, violation_turn_rule=turn_rule)
        return [{"role": "system", "content": prompts.render("planner_system")},
                {"role": "user", "content": user}]

    async def plan(self, job: DialogueJob, targets: Sequence[PrincipleLike], max_turns: int,
                   characteristics: Sequence[tuple[str, str]]) -> tuple[PlanOutput, Completion]:
        msgs = self.messages(job, targets, max_turns, characteristics)
        params = self.params.with_seed(derive_seed(job.seed, job.id, "plan"))
        names = tuple(name for name, _ in characteristics)
        completion = await call_agent(self.backend, "planner", msgs, params, plan_schema(names), span_name="plan",
                                      principle_ids=list(job.target_principles))
        plan = to_plan(completion.parsed, names)
        if job.scenario.goal:
            plan = plan.model_copy(update={"goal": job.scenario.goal})
        return plan, completion
