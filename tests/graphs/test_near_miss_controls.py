"""Near-miss controls (``jobs.control_kind: near_miss``): a control is dealt a principle as a briefed dialogue
is, the planner's second call and the briefed side's prompt ask it to bring that subject up and handle it well
without breaking it, the unbriefed side and the critic see nothing of it, and the figures put each principle's
catch rate beside its false-flag rate on near-miss controls."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, Persona, Scenario
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.graphs.assemble import build_dialogue_record
from sparring.graphs.data.run_stats import compute_principle_stats
from sparring.graphs.jobs import JobsConfig, assign_jobs
from sparring.graphs.records import DialogueUsage
from sparring.graphs.selfplay import DialogueConfig, SelfPlay, SelfPlayAgents
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES

SCENARIOS = [Scenario(topic=f"topic {i}", personas=(Persona(name="Dana"), Persona(name="Lee"))) for i in range(3)]
IDS = [p.id for p in PRINCIPLES]


@settings(max_examples=30, deadline=None)
@given(share=st.floats(0.1, 0.9), per=st.integers(1, 3), seed=st.integers(0, 10_000), n=st.integers(1, 40))
def test_near_miss_controls_are_dealt_one_principle_and_plain_runs_are_unchanged(share: float, per: int, seed: int,
                                                                                 n: int) -> None:
    def jobs(**kw: Any) -> list[DialogueJob]:
        config = JobsConfig(dialogues_per_scenario=n, principles_per_dialogue=per, control_share=share, **kw)
        return list(assign_jobs(SCENARIOS, IDS, config, mode="assistant", seed=seed))

    default, plain, near = jobs(), jobs(control_kind="plain"), jobs(control_kind="near_miss")
    assert default == plain and all(not j.near_miss_principles for j in plain)
    controls = [j for j in near if not j.target_principles]
    assert all(len(j.near_miss_principles) == 1 and j.near_miss_principles[0] in IDS for j in controls)
    assert all(not j.near_miss_principles for j in near if j.target_principles)
    # Controls fall on the same dialogues either way (the control draw comes first in each).
    assert [bool(j.target_principles) for j in near] == [bool(j.target_principles) for j in plain]


def test_near_miss_principles_are_dealt_evenly() -> None:
    config = JobsConfig(dialogues_per_scenario=200, control_share=1.0, control_kind="near_miss")
    dealt = Counter(j.near_miss_principles[0] for j in assign_jobs(SCENARIOS, IDS, config, mode="peers", seed=1))
    assert set(dealt) == set(IDS) and max(dealt.values()) - min(dealt.values()) <= 1


def test_redteam_refuses_near_miss_controls() -> None:
    from sparring.graphs.run_config import RunConfig

    with pytest.raises(Exception, match="near_miss controls are for assistant and peers modes"):
        RunConfig.model_validate({"name": "x", "dialogue": {"mode": "redteam"},
                                  "jobs": {"control_share": 0.5, "control_kind": "near_miss"}})


class Model:
    """Records every prompt; plans and speaks with placeholders; the critic flags the near-miss principle."""

    def __init__(self, flag: str) -> None:
        self.flag, self.prompts = flag, []  # type: ignore[var-annotated]
        self.systems: dict[str, list[str]] = {"A": [], "B": []}

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        self.prompts.append((title, "\n".join(m["content"] for m in messages)))
        if title == "PlanOutput":
            return json.dumps({**minimal_instance(schema or {}), "brief_a": "BRIEF-A", "brief_b": "BRIEF-B"})
        if title == "ViolationPlanOutput":
            return json.dumps({"violation_brief": "THE-IDEA", "violation_turn": 1})
        if title and "Critique" in title:
            return json.dumps({"reasoning": "r", "violations": [
                {"principle_id": self.flag, "evidence": "a turn", "severity": "minor"}]})
        if schema is not None:
            return json.dumps(minimal_instance(schema))
        self.systems["A" if "BRIEF-A" in messages[0]["content"] else "B"].append(messages[0]["content"])
        return "a turn"


async def test_a_near_miss_control_is_briefed_to_come_near_and_the_critic_sees_nothing_of_it() -> None:
    near = PRINCIPLES[1]
    model = Model(flag=near.id)
    backend, p = ScriptedBackend(model.reply), SamplingParams()
    agents = SelfPlayAgents(planner=PlannerAgent(backend, p), persona=PersonaAgent(backend, p),
                            critic=CriticAgent(backend, p), reviser=ReviserAgent(backend, p),
                            verifier=CriticAgent(backend, p, name="verifier"))
    sp = SelfPlay(agents=agents, principles=PRINCIPLES, settings=DialogueConfig(mode="assistant", max_turns=4))
    job = DialogueJob(id="j", scenario=SCENARIOS[0], near_miss_principles=(near.id,), briefed_side="B", seed=3)
    state = await sp.build().ainvoke({"job": job.model_dump(mode="json")}, {"recursion_limit": sp.recursion_limit()})
    second = [text for title, text in model.prompts if title == "ViolationPlanOutput"]
    assert len(second) == 1 and "must come up, and side B must handle it well" in second[0] and near.text in second[0]
    assert "break the following principle" not in second[0]
    told = [s for s in model.systems["B"] if "careful assistant" in s]  # turn-local: the planted turn only
    assert len(told) == 1 and "THE-IDEA" in told[0] and near.text in told[0]
    assert all(near.text not in s and "THE-IDEA" not in s for s in model.systems["B"] if s not in told)
    assert all(near.text not in s and "THE-IDEA" not in s for s in model.systems["A"])
    critic = [text for title, text in model.prompts if title and "Critique" in title]
    assert critic and all("THE-IDEA" not in c and "careful assistant" not in c for c in critic)
    record = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0)
    assert record.near_miss_principles == [near.id] and record.target_principles == []
    assert not record.targeted_violated and record.is_violation  # a false flag, counted as such below
    rows = compute_principle_stats([record.model_dump(mode="json")], [], {pr.id: pr.category for pr in PRINCIPLES})
    row = rows["principles"][near.id]
    assert (row["near_miss_controls"], row["near_miss_flagged"], row["near_miss_flag_rate"]) == (1, 1, 1.0)
    assert row["targeted"] == 0 and row["catch_rate"] is None


def test_catch_rate_and_near_miss_false_flags_side_by_side() -> None:
    pid = IDS[0]
    dialogues = ([{"target_principles": [pid], "violated_principles": [pid], "verdicts": [{}]}] * 8
                 + [{"target_principles": [], "near_miss_principles": [pid], "violated_principles": [pid],
                     "verdicts": [{}]}] * 3
                 + [{"target_principles": [], "near_miss_principles": [pid], "violated_principles": [],
                     "verdicts": [{}]}] * 7)
    row = compute_principle_stats(dialogues, [], {pid: "c"})["principles"][pid]
    assert (row["catch_rate"], row["near_miss_flag_rate"], row["near_miss_controls"]) == (1.0, 0.3, 10)
    assert row["near_miss_flag_rate_ci"]["low"] < 0.3 < row["near_miss_flag_rate_ci"]["high"]
    plain = compute_principle_stats(dialogues[:8], [], {pid: "c"})["principles"][pid]
    assert "near_miss_controls" not in plain  # runs without near-miss controls keep their rows as they were
