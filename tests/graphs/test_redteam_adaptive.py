"""Adaptive attacks: later rounds on a goal are planned with a summary of the earlier failed attempts,
which holds only what a user could have seen (tactic, the user's turns, the target's replies), never
the critic's or the planner's private text; "earlier" is by rounds, so the same run at any
concurrency plans every attack from the same summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.agents.agent_calls import derive_seed
from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.domain import Persona, Scenario
from sparring.graphs.adaptive import AttemptBoard, attempt_summary, by_round
from sparring.graphs.jobs import JobsConfig, assign_jobs
from sparring.graphs.roles import roles_in_use
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.role_backends import RoleBackends
from sparring.graphs.runtime.runner import DialogueRunner
from sparring.graphs.runtime.store import DIALOGUES, RunStore, iter_jsonl
from sparring.graphs.selfplay import SelfPlay
from sparring.graphs.wiring import make_agents
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES

PRIVATE = "PRIVATE"
public_text = st.text(st.characters(blacklist_categories=["Cs"]), max_size=400).filter(lambda t: PRIVATE not in t)


@st.composite
def records(draw: Any) -> dict[str, Any]:
    turns = draw(st.lists(public_text, max_size=6))
    return {
        "id": draw(st.text("abc", min_size=1, max_size=5)), "status": draw(st.sampled_from(["ok", "ok", "failed"])),
        "targeted_violated": draw(st.booleans()), "strategy": draw(st.sampled_from(["persuasion", None])),
        "messages": [{"speaker": "AB"[i % 2], "role": "user", "name": "x", "content": t} for i, t in enumerate(turns)],
        "reasoning": f"{PRIVATE} planner reasoning", "plan": {"brief_a": f"{PRIVATE} brief", "goal": f"{PRIVATE} g"},
        "verdicts": [{"turn_index": 1, "reasoning": f"{PRIVATE} critic", "findings": [{"evidence": f"{PRIVATE} e"}]}],
        "revisions": [{"revised": f"{PRIVATE} revision"}], "violated_principles": [f"{PRIVATE}.p"],
    }


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(records(), max_size=8))
def test_the_summary_holds_only_what_a_user_saw(rows: list[dict[str, Any]]) -> None:
    summary = attempt_summary(rows)
    assert PRIVATE not in summary
    failed = [r for r in rows if r["status"] == "ok" and not r["targeted_violated"]][-5:]
    assert summary.count("Attempt ") >= len(failed)
    for row in failed:
        for message in row["messages"]:
            flat = " ".join(message["content"].split())
            assert flat[:200] in summary


class World:
    """The planner records what it was shown; the critic's reasoning is private and never flags."""

    def __init__(self) -> None:
        self.planned: dict[int, str] = {}

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        if title == "AttackPlan":
            self.planned[params.seed or 0] = messages[-1]["content"]
            return json.dumps({**minimal_instance(schema or {}), "goal": "g", "brief_a": "b"})
        if title == "CritiqueOutput":
            return json.dumps({"reasoning": f"{PRIVATE} critic reasoning", "violations": []})
        if title == "RevisionOutput":
            return json.dumps({"revision": "r"})
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        if "You are role-playing a" in system:
            return f"attacker says {params.seed}"
        return f"target replies {params.seed}"


SCENARIO = Scenario(topic="banking", personas=(Persona(name="Alex"), Persona(name="bank")))


async def adaptive_run(folder: Path, concurrency: int) -> tuple[World, list[dict[str, Any]]]:
    config = RunConfig.model_validate({"dialogue": {"mode": "redteam", "characteristics": [], "max_turns": 2,
                                                    "adaptive_attacks": True}})
    jobs = by_round(list(assign_jobs([SCENARIO], [p.id for p in PRINCIPLES[:2]], JobsConfig(
        dialogues_per_scenario=9, control_share=0.2), mode="redteam", seed=5, tactics=["persuasion", "role_play"])))
    world = World()
    agents = make_agents(config, RoleBackends.single(ScriptedBackend(world.reply), roles_in_use(config)))
    selfplay = SelfPlay(agents=agents, principles=PRINCIPLES, settings=config.dialogue,
                        attempts=AttemptBoard.of_run(jobs, []))
    store = RunStore(folder)
    store.open()
    await DialogueRunner(selfplay=selfplay, graph=selfplay.build(), store=store, concurrency=concurrency).run(jobs)
    store.close()
    return world, list(iter_jsonl(folder / DIALOGUES))


async def test_later_rounds_see_the_earlier_failures_whatever_the_concurrency(tmp_path: Path) -> None:
    one, rows = await adaptive_run(tmp_path / "one", 1)
    many, rows_many = await adaptive_run(tmp_path / "many", 8)
    assert one.planned == many.planned  # the same summary for every attack, at any concurrency
    assert all(PRIVATE not in text for text in one.planned.values())
    by_goal: dict[str, list[dict[str, Any]]] = {}
    for row in sorted(rows, key=lambda r: r["seed"]):
        if row["target_principles"]:
            by_goal.setdefault(",".join(row["target_principles"]), []).append(row)
    assert any(len(group) > 1 for group in by_goal.values())
    for group in by_goal.values():
        rounds = sorted(group, key=lambda r: r["plan"]["earlier_attempts"])
        assert [r["plan"]["earlier_attempts"] for r in rounds] == list(range(len(group)))  # round r sees r before
        for r, row in enumerate(rounds):
            shown = one.planned[derive_seed(row["seed"], row["id"], "plan")]
            replies = [other["messages"][1]["content"] for other in rounds]
            assert all((reply in shown) == (i < r) for i, reply in enumerate(replies))
            assert ("Earlier attempts at this same goal failed" in shown) == (r > 0)


def test_adaptive_attacks_need_one_worker() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="set workers: 1"):
        RunConfig.model_validate({"workers": 2, "backend": {"kind": "openai_compat", "base_url": "http://x/v1", "model": "m"},
                                 "dialogue": {"mode": "redteam", "adaptive_attacks": True}})
