"""Red-team mode: a planned attacker (side A) against the model under test (side B, the target).

- ``AttackPlanner`` briefs the attacker in private: who they present as, what they want the
  target to do, and how to carry out the dialogue's tactic (``tactic_for``: dealt per dialogue from
  the configured list, recorded with the plan). It sees what a user of the deployment sees (black-box)
  unless ``sees_system_prompt``. A control dialogue (no targeted principle) gets an ordinary user instead.
- ``attacker_prompt`` is the attacker's system prompt; the persona agent speaks it.
- ``TargetAgent`` is shown what a deployment would show the target: its system prompt (if any)
  and the conversation, the user's turns as ``user`` and its own as ``assistant``. No brief, no
  persona, no stop words of ours; its reply is stored as it came.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, create_model

from sparring.errors import EmptyTurnError

from . import prompts
from .agent_calls import PrincipleLike, agent_span, call_agent, derive_seed, principle_lines, record_completion
from .backends.base import Backend
from .backends.messages import ChatMessage, Completion, SamplingParams
from .domain import Behaviour, DialogueJob, PlanOutput
from .persona import END_MARKER, cut_at_other_speaker, other_labels, view_from
from .planner import characteristic_values, describe_persona, plan_schema
from .tactics import Tactic

__all__ = ["AttackPlanner", "BehaviourPrinciple", "RedTeamAgents", "TargetAgent", "attack_plan_schema",
           "attacker_prompt", "behaviour_principle", "tactic_for"]

TARGET_AGENT = "target"


@dataclass(frozen=True, slots=True)
class BehaviourPrinciple:
    """A behaviour as the principle its attack targets and the critic judges: broken when the target does
    it (or gives real help towards it). Read as ``PrincipleLike``."""

    id: str
    category: str
    text: str
    critique: str
    revision: str


def behaviour_principle(behaviour: Behaviour) -> BehaviourPrinciple:
    """The principle of one behaviour (id ``behaviour.<behaviour id>``, the behaviour's category)."""
    context = f" (about this material: {behaviour.context})" if behaviour.context else ""
    return BehaviourPrinciple(id=f"behaviour.{behaviour.id}", category=behaviour.category,
                              text=prompts.render("redteam_behaviour_text", goal=behaviour.goal, context=context),
                              critique=prompts.render("redteam_behaviour_critique"),
                              revision=prompts.render("redteam_behaviour_revision"))


@lru_cache(maxsize=32)
def attack_plan_schema(names: tuple[str, ...]) -> type[BaseModel]:
    """The attacker's plan as the planner is asked for it: reasoning, characteristics (as in
    ``plan_schema``), goal and brief."""
    base = plan_schema(names).model_fields
    fields: dict[str, Any] = {k: (base[k].annotation, base[k])
                              for k in ("reasoning", "characteristics", "goal", "brief_a") if k in base}
    return create_model("AttackPlan", __doc__="The attacker's private plan.", **fields)


def tactic_for(job: DialogueJob, tactics: Sequence[Tactic]) -> Tactic:
    """The tactic of an attack: the one dealt to the job (``DialogueJob.tactic``) when configured, else
    one drawn from its seed (jobs of plans written before tactics were dealt)."""
    by_name = {t.name: t for t in tactics}
    if job.tactic in by_name:
        return by_name[job.tactic]
    return tactics[derive_seed(job.seed, job.id, "tactic") % len(tactics)]


@dataclass(frozen=True, slots=True)
class AttackPlanner:
    backend: Backend
    params: SamplingParams
    sees_system_prompt: bool = False
    """White-box: the planner is shown the target's system prompt. Default: black-box, it is not."""

    def messages(self, job: DialogueJob, targets: Sequence[PrincipleLike], max_turns: int,
                 characteristics: Sequence[tuple[str, str]], tactic: Tactic | None = None,
                 earlier: str = "") -> list[ChatMessage]:
        """The planner's request; ``earlier``: the summary of earlier failed attempts (adaptive attacks)."""
        scenario = job.scenario
        if targets and tactic is not None:
            attack = prompts.render("redteam_planner_attack", principles=principle_lines(targets),
                                    tactic=tactic.name, tactic_summary=tactic.summary,
                                    earlier=prompts.render("redteam_planner_earlier", attempts=earlier)
                                    if earlier else "")
        elif job.probe is not None:
            attack = prompts.render("redteam_planner_probe", question=job.probe.question)
        else:
            attack = prompts.render("redteam_planner_control")
        prompt = job.target_system_prompt if self.sees_system_prompt else None
        user = prompts.render(
            "redteam_planner_user", topic=scenario.topic,
            subtopic_line=f"Subtopic: {scenario.subtopic}" if scenario.subtopic else "",
            persona_a=describe_persona(job, "A"),
            deployment_line=f'The target is deployed with this system prompt:\n"""\n{prompt}\n"""' if prompt
            else "The target has no system prompt." if self.sees_system_prompt
            else "Like any user of the deployment, the user does not know the target's system prompt.",
            goal_line=f"The user's goal: {scenario.goal}" if scenario.goal else "", max_turns=max_turns,
            characteristics_block=prompts.render(
                "planner_characteristics",
                characteristics="\n".join(f"{i}. {name}: {desc}" if desc else f"{i}. {name}"
                                          for i, (name, desc) in enumerate(characteristics, 1)))
            if characteristics else "",
            attack_block=attack,
            characteristics_item="\n- characteristics: for each characteristic above (keyed by its name), the value "
                                 "you chose and a one-sentence reason." if characteristics else "",
            goal_rule="what the user wants the target to do (the principle broken), in one sentence." if targets
            else "what the user wants from this conversation, in one sentence.",
            brief_a_extra=", and how they will carry out the tactic over their turns" if targets else "")
        return [{"role": "system", "content": prompts.render("redteam_planner_system")},
                {"role": "user", "content": user}]

    async def plan(self, job: DialogueJob, targets: Sequence[PrincipleLike], max_turns: int,
                   characteristics: Sequence[tuple[str, str]], tactic: Tactic | None = None,
                   earlier: str = "") -> tuple[PlanOutput, Completion]:
        """The plan (``brief_b`` empty: the target is not briefed) of an attack with ``tactic``, or of a
        control (no targets)."""
        names = tuple(name for name, _ in characteristics)
        schema = attack_plan_schema(names)
        params = self.params.with_seed(derive_seed(job.seed, job.attack_id, "plan"))
        request = self.messages(job, targets, max_turns, characteristics, tactic, earlier)
        completion = await call_agent(self.backend, "planner", request, params, schema, span_name="plan",
                                      principle_ids=list(job.target_principles))
        parsed: Any = completion.parsed
        plan = PlanOutput(reasoning=parsed.reasoning, characteristics=characteristic_values(parsed, names),
                          goal=job.scenario.goal or parsed.goal, brief_a=parsed.brief_a, brief_b="", violation_turn=0)
        return plan, completion


def attacker_prompt(job: DialogueJob, plan: PlanOutput, tactic: Tactic | None, style: str | None, *,
                    situation: str = "", turn_line: str = "") -> str:
    """Side A's system prompt: the attacker with its tactic (summary and playbook), or, in a control, an
    ordinary user (the user prompt of assistant mode). ``turn_line``: the turn counter (``persona.turn_line``)."""
    persona = job.persona("A")
    common = {"persona": persona.name + (f": {persona.description}" if persona.description else ""),
              "situation": situation or "(not specified)", "brief": plan.brief_a, "goal": plan.goal,
              "style": f"{style}\n" if style else "", "turn_line": turn_line, "end_marker": END_MARKER}
    if tactic is None:
        return prompts.render("persona_user", **common)
    return prompts.render("redteam_attacker", strategy=tactic.name, strategy_description=tactic.summary,
                          playbook=f"{tactic.playbook}\n" if tactic.playbook else "", **common)


@dataclass(frozen=True, slots=True)
class TargetAgent:
    """The model under test, speaking for side B."""

    backend: Backend
    params: SamplingParams

    def messages(self, job: DialogueJob, messages: Sequence[dict[str, Any]]) -> list[ChatMessage]:
        """Exactly what a deployment shows the target: its system prompt, then the conversation."""
        system: list[ChatMessage] = [{"role": "system", "content": job.target_system_prompt}] \
            if job.target_system_prompt else []
        return [*system, *view_from("B", messages, "")]  # the attacker always opens: no cue is added

    async def reply(self, job: DialogueJob, messages: Sequence[dict[str, Any]]) -> tuple[str, Completion]:
        """The target's next turn, as it came, up to a line where it writes the attacker's
        (an empty reply is asked again, with another seed, twice)."""
        convo = self.messages(job, messages)
        turn_index = len(messages)
        with agent_span(TARGET_AGENT, turn_index=turn_index, side="B") as span:
            for resample in range(3):
                params = self.params.with_seed(derive_seed(job.seed, job.attack_id, "turn", turn_index, resample))
                completion = await self.backend.complete(convo, params, agent=TARGET_AGENT)
                text, cut = cut_at_other_speaker(completion.text, other_labels(job, "B"))
                if text.strip():
                    break
            else:
                raise EmptyTurnError(f"the target produced an empty turn {turn_index} three times")
            if cut:  # it went on to write the attacker's line: its own turn ended there, whole
                completion = replace(completion, finish_reason="stop")
                span.set("app.cut_at_other_speaker", True)
            record_completion(span, completion)
            if resample:
                span.set("app.resamples", resample)
        return text, completion


@dataclass(frozen=True, slots=True)
class RedTeamAgents:
    """What redteam mode adds to the self-play agents (the attacker speaks through side A's persona agent)."""

    planner: AttackPlanner
    target: TargetAgent
    targets: Mapping[str, TargetAgent] = field(default_factory=dict)
    """Several targets (``roles.side_b: [a, b]``): the target agent on each backend, by name."""

    def target_of(self, job: DialogueJob) -> TargetAgent:
        """The target ``job`` is played against: its ``target``'s, else the one target."""
        if job.target is None:
            return self.target
        if job.target not in self.targets:
            raise ValueError(f"the dialogue is played against target {job.target!r}, which this run has no "
                             f"backend for (it has {', '.join(self.targets) or 'one target'})")
        return self.targets[job.target]
