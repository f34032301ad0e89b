"""Black-box by default: over generated redteam configs, no request of the attack planner or of the
attacker holds the target's system prompt unless ``dialogue.attacker_sees_system_prompt`` is set; the
record and the attack figures say which access the attack had."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.graphs.assemble import build_dialogue_record
from sparring.graphs.data.attack import compute_attack_stats
from sparring.graphs.records import DialogueUsage
from sparring.graphs.roles import roles_in_use
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.role_backends import RoleBackends
from sparring.graphs.selfplay import SelfPlay
from sparring.graphs.wiring import make_agents
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES
from tests.graphs.test_redteam import make_job


class World:
    """Every request by role; the planner copies everything it was shown into the attacker's brief, so
    whatever the planner saw reaches the attacker too."""

    def __init__(self) -> None:
        self.planner: list[str] = []
        self.attacker: list[str] = []
        self.target: list[str] = []

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        seen = json.dumps(messages)
        if title == "AttackPlan":
            self.planner.append(seen)
            plan = {**minimal_instance(schema or {}), "goal": "g", "brief_a": " ".join(m["content"] for m in messages)}
            return json.dumps(plan)
        if title == "CritiqueOutput":
            return json.dumps({"reasoning": "checked", "violations": []})
        if title == "RevisionOutput":
            return json.dumps({"revision": "fixed"})
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        if "You are role-playing a" in system:
            self.attacker.append(seen)
            return "tell me more"
        self.target.append(seen)
        return "I can help with your own account."


@settings(max_examples=60, deadline=None)
@given(white=st.one_of(st.none(), st.booleans()), secret=st.text("abcxyz", min_size=4, max_size=12),
       control=st.booleans(), max_turns=st.integers(2, 6),
       strategies=st.lists(st.sampled_from(["role_play: be a character", "split: in parts", "mine: ask twice"]), min_size=1,
                           max_size=3, unique=True))
def test_no_planner_or_attacker_request_holds_the_system_prompt_unless_white_box(
        white: bool | None, secret: str, control: bool, max_turns: int,
        strategies: list[str]) -> None:
    prompt = f"SYSTEM-PROMPT-{secret}-END"
    dialogue: dict[str, Any] = {"mode": "redteam", "characteristics": [], "max_turns": max_turns,
                                "attack_strategies": strategies}
    if white is not None:
        dialogue["attacker_sees_system_prompt"] = white
    config = RunConfig.model_validate({"dialogue": dialogue})
    world = World()
    agents = make_agents(config, RoleBackends.single(ScriptedBackend(world.reply), roles_in_use(config)))
    selfplay = SelfPlay(agents=agents, principles=PRINCIPLES, settings=config.dialogue)
    job = make_job(() if control else (PRINCIPLES[0].id,), prompt)
    state = asyncio.run(selfplay.build().ainvoke({"job": job.model_dump(mode="json")},
                                                 {"recursion_limit": selfplay.recursion_limit()}))
    record = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0)

    assert world.planner and world.attacker and world.target
    assert all(prompt in seen for seen in world.target)  # the target is always deployed with it
    for seen in [*world.planner, *world.attacker]:
        assert (prompt in seen) == bool(white), seen
    expected = "white-box" if white else "black-box"
    assert record.attack_access == expected
    attack = compute_attack_stats([record.model_dump(mode="json")], lambda pid: "c")
    assert attack is not None and (attack["access"] == expected or control)


def test_old_records_are_white_box_when_the_target_had_a_prompt() -> None:
    rows = [{"mode": "redteam", "status": "ok", "target_principles": ["a.b"], "target_system_prompt": "x"}]
    assert compute_attack_stats(rows, lambda pid: "c")["access"] == "white-box"  # type: ignore[index]
    rows += [{**rows[0], "target_system_prompt": None, "attack_access": "black-box"}]
    assert compute_attack_stats(rows, lambda pid: "c")["access"] == "mixed (1 black-box, 1 white-box)"  # type: ignore[index]
