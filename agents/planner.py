"""The planner: structured calls that decide the dialogue before its first turn.

The first call reasons over the dialogue characteristics (DiaSynth's chain of
thought), sets side A's goal (SDSD) and writes each side a private brief. It is
never shown the violation plan, so no brief can leak it. For a briefed dialogue
a second call, shown that plan and the principles, writes how and in which of
its own turns the briefed side breaks them; only that side's prompt gets it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from . import prompts
from .agent_calls import PrincipleLike, call_agent, derive_seed, principle_lines
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams
from .domain import (
    CharacteristicValue,
    DialogueJob,
    PlanOutput,
    Side,
    ViolationPlanOutput,
    bounded,
    clamp_violation_turn,
    own_turns,
)


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
    for name in ("goal", "brief_a", "brief_b"):
        info = PlanOutput.model_fields[name]
        fields[name] = (info.annotation, info)
    return create_model("PlanOutput", __doc__=PlanOutput.__doc__, **fields)


def characteristic_values(parsed: Any, names: tuple[str, ...]) -> list[CharacteristicValue]:
    """The decided characteristics of a reply to ``plan_schema(names)``, as a list in the requested order."""
    characteristics = []
    if names:
        decided = parsed.characteristics
        for i, name in enumerate(names):
            d = getattr(decided, f"c{i}")
            characteristics.append(CharacteristicValue(name=name, value=d.value, reason=d.reason))
    return characteristics


def to_plan(parsed: Any, names: tuple[str, ...]) -> PlanOutput:
    """The stored PlanOutput (characteristics as a list, in the requested order) from a parsed reply."""
    return PlanOutput(reasoning=parsed.reasoning, characteristics=characteristic_values(parsed, names),
                      goal=parsed.goal, brief_a=parsed.brief_a, brief_b=parsed.brief_b)

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

    def messages(self, job: DialogueJob, max_turns: int, characteristics: Sequence[tuple[str, str]],
                 ) -> list[ChatMessage]:
        """The first call: the plan and both briefs. It depends on nothing that was planted."""
        scenario = job.scenario
        user = prompts.render(
            "planner_user", **_setting(job), max_turns=max_turns,
            goal_line=f"Side A's goal: {scenario.goal}" if scenario.goal else "",
            characteristics_block=prompts.render(
                "planner_characteristics",
                characteristics="\n".join(f"{i}. {name}: {desc}" if desc else f"{i}. {name}"
                                          for i, (name, desc) in enumerate(characteristics, 1)))
            if characteristics else "",
            characteristics_item="\n- characteristics: for each characteristic above (keyed by its name), the value "
                                 "you chose and a one-sentence reason." if characteristics else "")
        return [{"role": "system", "content": prompts.render("planner_system")},
                {"role": "user", "content": user}]

    def violation_messages(self, job: DialogueJob, plan: PlanOutput, targets: Sequence[PrincipleLike],
                           max_turns: int) -> list[ChatMessage]:
        """The second call: how the briefed side breaks ``targets``, given the plan; in a near-miss control
        (``job.near_miss_principles``), how it brings their subject up and handles it without breaking them."""
        side = job.briefed_side
        template = "planner_violation" if job.target_principles else "planner_near_miss"
        user = prompts.render(
            template, **_setting(job), goal=plan.goal,
            situation="; ".join(f"{c.name}: {c.value}" for c in plan.characteristics) or "(not specified)",
            side=side, brief=plan.brief_a if side == "A" else plan.brief_b, role=side_role(job, side),
            principles=principle_lines(targets), own_turns=max(own_turns(max_turns, side), 1))
        return [{"role": "system", "content": prompts.render("planner_system")},
                {"role": "user", "content": user}]

    async def plan(self, job: DialogueJob, targets: Sequence[PrincipleLike], max_turns: int,
                   characteristics: Sequence[tuple[str, str]]) -> tuple[PlanOutput, Completion]:
        """The plan of ``job``; with ``targets``, its violation plan too (``violation_turn`` clamped)."""
        msgs = self.messages(job, max_turns, characteristics)
        params = self.params.with_seed(derive_seed(job.seed, job.id, "plan"))
        names = tuple(name for name, _ in characteristics)
        completion = await call_agent(self.backend, "planner", msgs, params, plan_schema(names), span_name="plan",
                                      principle_ids=list(job.target_principles))
        plan = to_plan(completion.parsed, names)
        if job.scenario.goal:
            plan = plan.model_copy(update={"goal": job.scenario.goal})
        if targets:
            vmsgs = self.violation_messages(job, plan, targets, max_turns)
            vparams = self.params.with_seed(derive_seed(job.seed, job.id, "plan", "violation"))
            vcompletion = await call_agent(self.backend, "planner", vmsgs, vparams, ViolationPlanOutput,
                                           span_name="plan", principle_ids=list(job.target_principles))
            violation: Any = vcompletion.parsed
            plan = plan.model_copy(update={
                "violation_brief": violation.violation_brief,
                "violation_turn": clamp_violation_turn(violation.violation_turn, max_turns, job.briefed_side,
                                                       briefed=True)})
        return plan, completion


def _setting(job: DialogueJob) -> dict[str, str]:
    scenario = job.scenario
    return {"setting": SETTINGS[job.mode], "topic": scenario.topic,
            "subtopic_line": f"Subtopic: {scenario.subtopic}" if scenario.subtopic else "",
            "persona_a": describe_persona(job, "A"), "persona_b": describe_persona(job, "B")}
