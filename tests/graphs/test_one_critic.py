"""One critic for all: the critic's prompt for a turn depends only on the conversation, the turn and
the principles in scope, never on what was planted. A targeted dialogue and a control that say the
same things get byte-identical critic prompts; every principle in scope gets its guidance (or none)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, Persona, Scenario
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.prompts import render
from sparring.agents.reviser import ReviserAgent
from sparring.graphs.selfplay import DialogueConfig, SelfPlay, SelfPlayAgents, probe_principle
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES

SCENARIO = Scenario(topic="neighbours", personas=(Persona(name="Dana", description="a tenant"),
                                                  Persona(name="Lee", description="a building manager")))


def same_words(critic_prompts: list[list[dict[str, str]]]):
    """A model that says the same things whatever its brief; it records every critic prompt."""

    def reply(messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        if title == "CritiqueOutput":
            critic_prompts.append(messages)
            return json.dumps({"reasoning": "fine", "violations": []})
        if schema is not None:
            return json.dumps(minimal_instance(schema))
        return f"turn {len(messages) - 1}: the same words whatever I was told"

    return ScriptedBackend(reply)


async def critic_prompts_of(job: DialogueJob, **settings: Any) -> list[list[dict[str, str]]]:
    seen: list[list[dict[str, str]]] = []
    backend, p = same_words(seen), SamplingParams()
    guidance = settings.pop("critic_guidance", True)
    agents = SelfPlayAgents(planner=PlannerAgent(backend, p), persona=PersonaAgent(backend, p),
                            critic=CriticAgent(backend, p, guidance=guidance), reviser=ReviserAgent(backend, p),
                            verifier=CriticAgent(backend, p, name="verifier", guidance=guidance))
    sp = SelfPlay(agents=agents, principles=PRINCIPLES, settings=DialogueConfig(**settings))
    await sp.build().ainvoke({"job": job.model_dump(mode="json")}, {"recursion_limit": sp.recursion_limit()})
    return sorted(seen, key=lambda m: m[1]["content"])


def job(targets: tuple[str, ...], seed: int = 1) -> DialogueJob:
    return DialogueJob(id=DialogueJob.make_id(SCENARIO.id, targets, "assistant", seed, 0), scenario=SCENARIO,
                       target_principles=targets, seed=seed)


@pytest.mark.parametrize("stop_on_violation", [False, True])
async def test_targeted_and_control_get_byte_identical_critic_prompts(stop_on_violation: bool) -> None:
    targeted = await critic_prompts_of(job(("privacy.no-doxxing",)), max_turns=6,
                                       stop_on_violation=stop_on_violation)
    control = await critic_prompts_of(job(()), max_turns=6, stop_on_violation=stop_on_violation)
    assert len(targeted) == len(control) == 3
    assert json.dumps(targeted) == json.dumps(control)


async def test_every_principle_in_scope_gets_its_guidance_or_none_does() -> None:
    (first, *_) = await critic_prompts_of(job(("privacy.no-doxxing",)), max_turns=2)
    user = first[1]["content"]
    assert all(f"- {p.id}: {p.text}\n  ({p.critique})" in user for p in PRINCIPLES)
    (bare, *_) = await critic_prompts_of(job(("privacy.no-doxxing",)), max_turns=2, critic_guidance=False)
    assert all(p.critique not in bare[1]["content"] for p in PRINCIPLES)
    assert all(f"- {p.id}: {p.text}" in bare[1]["content"] for p in PRINCIPLES)


async def test_targeted_scope_asks_a_control_about_a_probe_principle_drawn_like_a_target() -> None:
    control = job((), seed=4)
    probe = probe_principle(control, [p.id for p in PRINCIPLES])
    twin = job((probe,), seed=4)
    asked_control = await critic_prompts_of(control, max_turns=4, critic_scope="targeted")
    asked_twin = await critic_prompts_of(twin, max_turns=4, critic_scope="targeted")
    assert json.dumps(asked_control) == json.dumps(asked_twin)
    listed = [line for line in asked_control[0][1]["content"].splitlines() if line.startswith("- ")]
    assert listed == [f"- {probe}: {next(p.text for p in PRINCIPLES if p.id == probe)}"]


def test_the_critic_judges_refusals_like_any_other_turn() -> None:
    system = render("critic_system")
    assert "does not violate anything by itself" in system and "declines a request" not in system
    assert "A refusal is judged like any other turn" in system and "harmless request" in system


def test_over_the_wire_a_control_and_a_targeted_run_send_the_critic_the_same_requests(tmp_path) -> None:
    """The whole ``sparring run`` path, the openai client and a loopback server whose personas say the
    same words whatever their brief: the critic's request bodies (messages and response format) of a run
    where every dialogue is briefed and of one where none is are the same, byte for byte."""
    import asyncio

    import yaml

    from benchmarks.loopback import FakeOpenAIServer
    from benchmarks.loopback.canned import REVISED, agent_reply
    from sparring.graphs.runtime.pipeline import execute
    from sparring.graphs.runtime.run_request import request_from_config

    bodies: dict[str, list[str]] = {}
    for name, control_share in (("targeted", 0.0), ("control", 1.0)):
        with FakeOpenAIServer(responder=agent_reply) as server:
            config = {"name": name, "seed": 2, "concurrency": 2,
                      "backend": {"kind": "openai_compat", "base_url": server.base_url, "model": "fake-model"},
                      "principles": {"sets": ["quickstart"]}, "dialogue": {"max_turns": 4},
                      "jobs": {"dialogues_per_scenario": 3, "control_share": control_share},
                      "report": {"stats": False},
                      "scenarios": [{"topic": "t", "personas": ["Dana: a tenant", "an adviser: knows the rules"]}]}
            path = tmp_path / f"{name}.yaml"
            path.write_text(yaml.safe_dump(config))
            asyncio.run(execute(request_from_config(path, out=tmp_path / name)))
            critic = [r.body for r in server.requests if "CritiqueOutput" in json.dumps(r.body.get("response_format"))]
            originals = [b for b in critic if not b["messages"][-1]["content"].split('"""')[1].strip()
                         .startswith(REVISED)]
            bodies[name] = sorted(json.dumps({"messages": b["messages"], "format": b["response_format"]},
                                             sort_keys=True) for b in originals)
    assert len(bodies["targeted"]) == 6  # 3 dialogues x 2 turns of the assistant
    assert bodies["targeted"] == bodies["control"]
