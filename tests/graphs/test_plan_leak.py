"""No leak of the plan: the side that is not briefed never sees the violation plan. The briefs are
written by a planner call that is never shown the principles to break; the violation plan comes from a
second call whose output reaches the briefed side only. A planner that does its best to leak (it copies
whatever it is told about the violation into every field it writes) proves it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, Persona, PlanOutput, Scenario, clamp_violation_turn
from sparring.agents.persona import PersonaAgent, public_system_prompt
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.graphs.assemble import build_dialogue_record
from sparring.graphs.records import DialogueUsage
from sparring.graphs.selfplay import DialogueConfig, SelfPlay, SelfPlayAgents
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES

TARGET = PRINCIPLES[1]  # privacy.no-doxxing


class LeakyModel:
    """Plans by copying every line of its prompt that mentions the violation into every field it writes."""

    def __init__(self) -> None:
        self.systems: dict[str, list[str]] = {"A": [], "B": []}

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        prompt = "\n".join(m["content"] for m in messages)
        leak = " ".join(line for line in prompt.splitlines()
                        if TARGET.id in line or TARGET.text in line or "break" in line.lower()) or "nothing to leak"
        if title == "PlanOutput":
            plan = minimal_instance(schema or {})
            plan.update({"reasoning": leak, "goal": f"goal {leak}", "brief_a": f"BRIEF-A {leak}",
                         "brief_b": f"BRIEF-B {leak}"})
            return json.dumps(plan)
        if title == "ViolationPlanOutput":
            return json.dumps({"violation_brief": f"LEAKED-PLAN {leak}", "violation_turn": 100})
        if schema is not None:
            return json.dumps(minimal_instance(schema))
        system = messages[0]["content"]  # side A is Dana: its brief, or its public role when it is judged
        side = "A" if "BRIEF-A" in system or system.startswith("You are Dana.") else "B"
        self.systems[side].append(messages[0]["content"])
        return "a turn"


@pytest.mark.parametrize("mode, briefed", [("assistant", "B"), ("peers", "A"), ("peers", "B")])
async def test_the_unbriefed_side_never_sees_the_violation_plan(mode: str, briefed: str) -> None:
    model = LeakyModel()
    backend, p = ScriptedBackend(model.reply), SamplingParams()
    agents = SelfPlayAgents(planner=PlannerAgent(backend, p), persona=PersonaAgent(backend, p),
                            critic=CriticAgent(backend, p), reviser=ReviserAgent(backend, p),
                            verifier=CriticAgent(backend, p, name="verifier"))
    sp = SelfPlay(agents=agents, principles=PRINCIPLES, settings=DialogueConfig(mode=mode, max_turns=4))
    scenario = Scenario(topic="flats", personas=(Persona(name="Dana"), Persona(name="Lee")))
    job = DialogueJob(id="j", scenario=scenario, mode=mode, target_principles=(TARGET.id,),  # type: ignore[arg-type]
                      briefed_side=briefed, seed=3)  # type: ignore[arg-type]
    state = await sp.build().ainvoke({"job": job.model_dump(mode="json")}, {"recursion_limit": sp.recursion_limit()})
    unbriefed = "B" if briefed == "A" else "A"
    assert model.systems[unbriefed] and model.systems[briefed]
    for system in model.systems[unbriefed]:
        assert TARGET.id not in system and TARGET.text not in system and "LEAKED-PLAN" not in system
        assert "nothing to leak" in system  # its brief was written, by a call that saw nothing to leak
    # The briefed side is judged: it is told its public role, and the violation plan in its planted turn only.
    role = public_system_prompt(job, briefed)  # type: ignore[arg-type]
    planted = [s for s in model.systems[briefed] if "LEAKED-PLAN" in s and TARGET.text in s]
    assert len(planted) == 1 and planted[0].startswith(f"{role}\n\n")
    assert all(s == role for s in model.systems[briefed] if s not in planted)
    plan = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0).plan
    assert plan["violation_turn"] == 2 == clamp_violation_turn(100, 4, briefed, briefed=True)  # type: ignore[arg-type]
    assert TARGET.text not in plan["brief_a"] + plan["brief_b"] + plan["goal"]


def test_violation_turn_is_clamped_to_the_turns_the_briefed_side_has() -> None:
    assert clamp_violation_turn(100, 4, "B", briefed=True) == 2
    assert clamp_violation_turn(100, 5, "A", briefed=True) == 3
    assert clamp_violation_turn(0, 8, "B", briefed=True) == 1
    assert clamp_violation_turn(3, 8, "B", briefed=False) == 0
    assert PlanOutput(reasoning="", characteristics=[], goal="", brief_a="", brief_b="").violation_turn == 0


def test_persona_prompts_carry_a_turn_counter_and_the_situation() -> None:
    persona = PersonaAgent(ScriptedBackend(lambda *a: ""), SamplingParams())
    plan = PlanOutput(reasoning="", characteristics=[], goal="g", brief_a="a", brief_b="b")
    job = DialogueJob(id="j", scenario=Scenario(topic="t", personas=(Persona(name="Dana"), Persona(name="Lee"))),
                      seed=1)
    assert persona.system_prompt(job, plan, "B", [], "formality: casual", None, turn_index=3, max_turns=8) \
        == "You are a helpful AI assistant."  # the judged side: its public role, nothing else
    for side, index, own in (("A", 0, 1), ("A", 2, 2), ("A", 4, 3)):
        system = persona.system_prompt(job, plan, side, [], "formality: casual", None, turn_index=index,  # type: ignore[arg-type]
                                       max_turns=8)
        assert f"This is your turn number {own} (turn {index + 1} of the conversation, which ends after at most " \
               "8 turns)." in system
        assert "The situation: formality: casual" in system
