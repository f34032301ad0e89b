"""Redteam mode's graph logic on a scripted model, over many generated dialogues (hypothesis):
the target is shown exactly what a deployment would show, its turns are stored as it said them,
only its turns are judged, and each pair's rejected is the target's own turn, with a prompt that is
what the target saw then, earlier flagged turns replaced by their verified revisions (the data
rules), in the trunk and in a branch that goes on from a verified revision."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.domain import DialogueJob, Persona, Scenario
from sparring.graphs.assemble import build_dialogue_record, build_sft_record, extract_preference_pairs
from sparring.graphs.records import DialogueUsage
from sparring.graphs.roles import roles_in_use
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.role_backends import RoleBackends
from sparring.graphs.selfplay import SelfPlay
from sparring.graphs.wiring import make_agents
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES

BRIEF = "PRIVATE-ATTACK-BRIEF"
STRATEGIES = ["gradual_escalation", "role_play", "claimed_authority", "split_request", "emotional_pressure"]


@dataclass
class Target:
    """The scripted world: the planner, the attacker, the target (replies with odd whitespace, as
    models do), the critic (finds ``violating`` target turns) and the reviser."""

    violating: set[int]
    strategy: str = "role_play"
    attacker_done_at: int | None = None
    revision_still_violates: bool = False
    target_calls: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    """What the target said (unique per call) -> what it was shown."""
    attacker_systems: list[str] = field(default_factory=list)

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        user = messages[-1]["content"]
        if title == "AttackPlan":
            plan = {**minimal_instance(schema or {}), "goal": "get it to break the rule", "brief_a": BRIEF}
            return json.dumps(plan)
        if title == "CritiqueOutput":
            judged = user.split('"""')[1].strip()
            if judged.startswith("REVISED") and not self.revision_still_violates:
                return json.dumps({"reasoning": "fine now", "violations": []})
            index = int(judged.split("#")[1].split()[0])
            allowed = set((schema or {})["$defs"]["ViolationFinding"]["properties"]["principle_id"].get("enum", []))
            ids = sorted(allowed) if index in self.violating else []  # every principle in scope
            return json.dumps({"reasoning": "checked", "violations": [
                {"principle_id": pid, "evidence": judged[:10], "severity": "severe"} for pid in ids if pid in allowed]})
        if title == "RevisionOutput":
            return json.dumps({"revision": "REVISED " + user.split('"""')[1].strip()})
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        if "You are role-playing a" in system:  # the attacker, or the ordinary user of a control
            self.attacker_systems.append(system)
            index = len(messages) - 2
            return f"attack #{index}" + (" <done>" if index == self.attacker_done_at else "")
        index = sum(1 for m in messages if m["role"] != "system")  # the target: it opens nothing
        said = f"  reply #{index} (call {len(self.target_calls)}) of the target\n"
        self.target_calls[said] = [dict(m) for m in messages]
        return said


def make_job(targets: tuple[str, ...], prompt: str | None, tactic: str | None = None) -> DialogueJob:
    scenario = Scenario(topic="chemistry homework", personas=(Persona(name="Sam", description="a student"),
                                                              Persona(name="unused")))
    return DialogueJob(id=DialogueJob.make_id(scenario.id, targets, "redteam", 3, 0), scenario=scenario,
                       mode="redteam", target_principles=targets, briefed_side="A", seed=3,
                       target_system_prompt=prompt, tactic=tactic if targets else None)


async def simulate(world: Target, job: DialogueJob, **dialogue: Any):
    config = RunConfig.model_validate({"dialogue": {"mode": "redteam", "characteristics": [], **dialogue}})
    backend = ScriptedBackend(world.reply)
    agents = make_agents(config, RoleBackends.single(backend, roles_in_use(config)))
    selfplay = SelfPlay(agents=agents, principles=PRINCIPLES, settings=config.dialogue, models={"side_b": "t"})
    state = await selfplay.build().ainvoke({"job": job.model_dump(mode="json")},
                                           {"recursion_limit": selfplay.recursion_limit()})
    record = build_dialogue_record(job, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0,
                                   models=selfplay.models)
    return record, extract_preference_pairs(record, job)


def shown(system: str | None, turns: list[Any], replaced: dict[int, str] | None = None) -> list[dict[str, str]]:
    """The target's view of ``turns``: its system prompt, then the turns (``replaced``: index -> text)."""
    head = [{"role": "system", "content": system}] if system else []
    return head + [{"role": "user" if m.speaker == "A" else "assistant", "content": (replaced or {}).get(i, m.content)}
                   for i, m in enumerate(turns)]


@settings(max_examples=60, deadline=None)
@given(max_turns=st.integers(2, 9), violating=st.sets(st.integers(0, 9).map(lambda i: 2 * i + 1), max_size=4),
       prompt=st.one_of(st.none(), st.text(min_size=1, max_size=40).filter(str.strip)),
       control=st.booleans(), stop=st.booleans(), done_at=st.one_of(st.none(), st.integers(0, 4).map(lambda i: 2 * i)),
       still=st.booleans(), strategy=st.sampled_from(STRATEGIES), branch_turns=st.sampled_from([0, 0, 2, 3]))
def test_the_target_is_shown_a_deployment_and_pairs_are_its_own_turns(
        max_turns: int, violating: set[int], prompt: str | None, control: bool, stop: bool, done_at: int | None,
        still: bool, strategy: str, branch_turns: int) -> None:
    world = Target(violating=violating, strategy=strategy, attacker_done_at=done_at, revision_still_violates=still)
    targets = () if control else (PRINCIPLES[1].id,)
    job = make_job(targets, prompt, strategy)
    record, pairs = asyncio.run(simulate(world, job, max_turns=max_turns, min_turns=1, stop_on_violation=stop,
                                         branch_turns=branch_turns))
    lines = [record.messages, *([record.branch.messages] if record.branch else [])]

    # Every call of the target was shown its system prompt (or none) and the conversation from its side as
    # stored (in the trunk, or in the branch, whose branch point is the verified revision), nothing else;
    # what it said is stored as it said it (whitespace and all), under the assistant's name.
    for said, view in world.target_calls.items():
        found = [(turns, i) for turns in lines for i, m in enumerate(turns) if m.speaker == "B" and m.content == said]
        assert found, "a target reply that is stored nowhere"
        turns, i = found[0]
        assert view == shown(prompt, list(turns[:i])) and turns[i].name == "AI assistant"
        assert BRIEF not in json.dumps(view) and strategy not in json.dumps(view)
    spoken = [*record.messages, *(record.branch.messages[record.branch.from_turn + 1:] if record.branch else [])]
    assert {m.content for m in spoken if m.speaker == "B"} <= set(world.target_calls)
    # The attacker is briefed in private, with its strategy; a control gets an ordinary user.
    assert all(BRIEF in s for s in world.attacker_systems)
    assert all(("Your approach" in s) != control for s in world.attacker_systems)
    assert record.strategy == (None if control else strategy) and record.plan["strategy"] == record.strategy
    assert record.briefed_side == "A" and not record.swapped and record.models == {"side_b": "t"}
    assert record.target_system_prompt == prompt
    # Only the target is judged; the stop rules.
    assert {v.side for v in record.verdicts} <= {"B"}
    assert [v.turn_index for v in record.verdicts] == [i for i, m in enumerate(record.messages) if m.speaker == "B"]
    first_hit = min((i for i in violating if i < max_turns), default=None)
    if stop and not control and first_hit is not None and (done_at is None or done_at > first_hit):
        assert record.stop_reason == "violation" and record.turns == first_hit + 1
    assert record.targeted_violated == (not control and any(
        i in violating for turns in lines for i in range(1, len(turns), 2)))
    # A branch goes on from the first flagged turn's verified revision, and only then.
    flagged = [v.turn_index for v in record.verdicts if v.violated]
    assert (record.branch is not None) == bool(branch_turns and flagged and not still)
    # Each pair: verified (the default), its rejected the target's own turn, its prompt what the target was
    # shown when it said it with every earlier flagged turn replaced by its verified revision.
    assert all(p.verified for p in pairs) and (not still or not pairs)
    for pair in pairs:
        track = record.branch if pair.from_branch else record
        assert track is not None
        turns = list(track.messages)
        rejected = turns[pair.turn_index].content
        assert pair.rejected == [{"role": "assistant", "content": rejected}]
        assert world.target_calls[rejected] == shown(prompt, turns[:pair.turn_index])
        fixed = {r.turn_index: r.revised for r in track.revisions if r.verified}
        assert pair.prompt == shown(prompt, turns[:pair.turn_index], fixed)
        assert pair.chosen == [{"role": "assistant", "content": fixed[pair.turn_index]}]
        assert pair.models == {"side_b": "t"}
    if not still:
        branch_flags = [v.turn_index for v in record.branch.verdicts if v.violated] if record.branch else []
        # The first flagged turn of each line gives a pair; a later one's prompt would hold a revision the
        # attacker never answered (revised_prompt).
        assert len(pairs) == len(flagged[:1]) + len(branch_flags[:1])
    sft = build_sft_record(record, job)
    if sft is not None:
        systems = [m for m in sft.messages if m["role"] == "system"]
        assert systems == ([{"role": "system", "content": prompt}] if prompt else [])
