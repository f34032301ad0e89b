"""Graph logic of one dialogue, on a scripted model (no engine): stop rules, the agents'
separate views, critique of every judged turn, pairs and verification."""

from __future__ import annotations

import pytest

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, Persona, Scenario
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.graphs.assemble import build_dialogue_record, dropped_pairs, extract_preference_pairs
from sparring.graphs.records import DialogueUsage
from sparring.graphs.selfplay import DialogueConfig, SelfPlay, SelfPlayAgents
from tests.graphs.scripted_world import PRINCIPLES, World


def make_job(targets: tuple[str, ...] = ("privacy.no-doxxing",), mode: str = "assistant") -> DialogueJob:
    scenario = Scenario(topic="neighbours", personas=(Persona(name="Dana", description="a curious tenant"),
                                                      Persona(name="Lee", description="a building manager")))
    return DialogueJob(id=DialogueJob.make_id(scenario.id, targets, mode, 1, 0), scenario=scenario, mode=mode,
                       target_principles=targets, seed=1)


def make_selfplay(world: World, **settings) -> SelfPlay:
    backend = world.backend()
    p = SamplingParams()
    agents = SelfPlayAgents(planner=PlannerAgent(backend, p), persona=PersonaAgent(backend, p),
                            critic=CriticAgent(backend, p), reviser=ReviserAgent(backend, p),
                            verifier=CriticAgent(backend, p, name="verifier"))
    return SelfPlay(agents=agents, principles=PRINCIPLES, settings=DialogueConfig(**settings))


async def run(world: World, job: DialogueJob, **settings):
    sp = make_selfplay(world, **settings)
    graph = sp.build()
    state = await graph.ainvoke({"job": job.model_dump(mode="json")}, {"recursion_limit": sp.recursion_limit()})
    record = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0)
    return state, record


async def test_turn_cap_ends_dialogue_and_sides_alternate():
    state, record = await run(World(), make_job(), max_turns=6)
    assert record.turns == 6
    assert record.stop_reason == "max_turns"
    assert [m.speaker for m in record.messages] == ["A", "B"] * 3
    assert [m.role for m in record.messages] == ["user", "assistant"] * 3


async def test_done_signal_ends_dialogue_after_min_turns():
    _, record = await run(World(done_at=2), make_job(), max_turns=10, min_turns=2)
    assert record.stop_reason == "done_signal"
    assert record.turns == 3
    assert "<done>" not in record.messages[2].content


async def test_done_signal_before_min_turns_is_honoured():
    """No turn follows a farewell: an end before ``min_turns`` ends the dialogue (the speakers were told the
    minimum; tests/graphs/test_whole_turns.py has the rest)."""
    _, record = await run(World(done_at=0), make_job(), max_turns=4, min_turns=3)
    assert record.stop_reason == "done_signal"
    assert record.turns == 1


async def test_each_side_sees_only_its_own_brief_and_its_own_view():
    world = World()
    await run(world, make_job(), max_turns=4)
    assert all("SECRET-A" in s and "SECRET-B" not in s for s in world.seen_systems["A"])
    # The judged assistant is told its public role only (and the violation in its planted turn): no brief.
    assert all("SECRET-B" not in s and "SECRET-A" not in s for s in world.seen_systems["B"])
    # B's second turn: A's turns are 'user', B's own first turn is 'assistant'.
    convo_b = world.seen_convos["B"][1]
    assert [m["role"] for m in convo_b] == ["user", "assistant", "user"]
    assert convo_b[1]["content"] == "turn #1 by B"
    # A opens with a cue, then sees its own turns as 'assistant'.
    convo_a = world.seen_convos["A"][1]
    assert [m["role"] for m in convo_a] == ["user", "assistant", "user"]
    # Only the briefed side (B) is told to break the principle.
    assert ["flawed" in s for s in world.seen_systems["B"]] == [True, False]
    assert not any("flawed" in s for s in world.seen_systems["A"])


async def test_no_violation_means_no_pair():
    state, record = await run(World(), make_job(), max_turns=4)
    assert not record.is_violation
    assert record.revisions == []
    assert extract_preference_pairs(record, make_job()) == []
    # Every turn of the judged side (B) got a verdict.
    assert [v.turn_index for v in record.verdicts] == [1, 3]


async def test_several_violating_turns_make_several_pairs():
    world = World(violating_turns={1: ["privacy.no-doxxing"], 3: ["honesty.no-fabrication", "made.up-id"]})
    job = make_job()
    _, record = await run(world, job, max_turns=4)
    assert record.is_violation and record.targeted_violated
    assert record.violated_principles == ["honesty.no-fabrication", "privacy.no-doxxing"]
    pairs = extract_preference_pairs(record, job)
    # Turn 3's prompt would hold turn 1's revision, which A never answered: no pair (without a branch).
    assert [p.turn_index for p in pairs] == [1]
    assert dropped_pairs(record, keep_unverified=False) == {"revised_prompt": 1}
    first = pairs[0]
    assert first.rejected == [{"role": "assistant", "content": "turn #1 by B"}]
    assert first.chosen == [{"role": "assistant", "content": "REVISED turn #1 by B"}]
    assert first.prompt[0]["role"] == "system" and "SECRET" not in first.prompt[0]["content"]
    assert [m["role"] for m in first.prompt[1:]] == ["user"]
    assert all(p.verified for p in pairs)


async def test_revision_failing_verification_is_kept_unverified_or_dropped():
    world = World(violating_turns={1: ["privacy.no-doxxing"]}, revision_still_violates=True)
    job = make_job()
    _, record = await run(world, job, max_turns=2)
    assert record.revisions[0].verified is False
    assert record.revisions[0].remaining == ["privacy.no-doxxing"]
    kept = extract_preference_pairs(record, job, keep_unverified=True)
    assert len(kept) == 1 and kept[0].verified is False
    assert extract_preference_pairs(record, job, keep_unverified=False) == []



async def test_unchanged_revision_is_unverified_and_no_pair():
    world = World(violating_turns={1: ["privacy.no-doxxing"]}, revision_prefix="")
    job = make_job()
    _, record = await run(world, job, max_turns=2)
    assert record.revisions[0].revised == record.revisions[0].original
    assert record.revisions[0].verified is False
    assert extract_preference_pairs(record, job, keep_unverified=True) == []


async def test_stop_on_violation_stops_after_the_briefed_turn():
    world = World(violating_turns={3: ["privacy.no-doxxing"]})
    _, record = await run(world, make_job(), max_turns=10, stop_on_violation=True)
    assert record.stop_reason == "violation"
    assert record.turns == 4
    # The inline verdicts are reused, not judged twice.
    assert [v.turn_index for v in record.verdicts] == [1, 3]


@pytest.mark.parametrize("mode", ["assistant", "peers"])
async def test_control_dialogue_without_targets_still_judged(mode):
    world = World(violating_turns={1: ["honesty.no-fabrication"]})
    job = make_job(targets=(), mode=mode)
    _, record = await run(world, job, max_turns=2)
    assert record.is_violation and not record.targeted_violated
    assert not any("flawed" in s for s in world.seen_systems["B"])
