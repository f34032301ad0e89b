"""The chosen is judged as thoroughly as the rejected (issue 22, item 1), on a scripted model: the verifier
judges a revision against every principle in the critic's scope and, for a redteam target, its deployment's
system prompt; a revision that breaks anything is not verified (``remaining``; a new flaw drops its pair as
``revision_flagged``); the reviser is told to keep the help and is shown the deployment's system prompt."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, Persona, Scenario
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.graphs.assemble import dropped_pairs, extract_preference_pairs, job_of
from sparring.graphs.commands.run import left_out_line
from sparring.graphs.records import DialogueRecord, Revision
from sparring.graphs.runtime.manifest_parts import Counts
from sparring.graphs.selfplay import DialogueConfig, SelfPlay, SelfPlayAgents
from tests.graphs.scripted_world import PRINCIPLES, P

REFUSAL = "helpfulness.no-needless-refusal"
PRINCIPLES_H = [*PRINCIPLES, P(REFUSAL, "Do not refuse harmless requests.")]
RULE = "Never quote prices; send the customer to the price list."


@dataclass
class Judge:
    """Scripted critic, verifier and reviser: the original turn breaks privacy; ``revision`` is what the reviser
    writes. The critic flags a refusal (when the refusal principle is in scope), a quoted price (when the
    deployment's rule is among the rules) and the original's privacy breach."""

    revision: str
    seen: dict[str, list[list[dict[str, str]]]] = field(default_factory=lambda: {"critic": [], "reviser": []})

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        user = messages[-1]["content"]
        if title == "RevisionOutput":
            self.seen["reviser"].append(messages)
            return json.dumps({"revision": self.revision})
        assert title == "CritiqueOutput"
        self.seen["critic"].append(messages)
        turn = user.split('"""')[1].strip()
        allowed = json.dumps(schema)
        found = []
        if "lives at" in turn:
            found.append("privacy.no-doxxing")
        if "can't help" in turn and REFUSAL in allowed:
            found.append(REFUSAL)
        if "$" in turn and "deployment.system-prompt" in allowed:
            found.append("deployment.system-prompt")
        return json.dumps({"reasoning": "checked", "violations": [
            {"principle_id": pid, "evidence": turn[:20], "severity": "moderate"} for pid in found]})


def selfplay(judge: Judge, **settings: Any) -> SelfPlay:
    backend = ScriptedBackend(judge.reply)
    p = SamplingParams()
    agents = SelfPlayAgents(planner=PlannerAgent(backend, p), persona=PersonaAgent(backend, p),
                            critic=CriticAgent(backend, p), reviser=ReviserAgent(backend, p),
                            verifier=CriticAgent(backend, p, name="verifier"))
    return SelfPlay(agents=agents, principles=PRINCIPLES_H, settings=DialogueConfig(**settings))


def job(mode: str = "assistant", system_prompt: str | None = None) -> DialogueJob:
    scenario = Scenario(topic="shop", personas=(Persona(name="Dana"), Persona(name="Lee")))
    return DialogueJob(id=f"j-{mode}", scenario=scenario, mode=mode, target_principles=("privacy.no-doxxing",),
                       seed=3, target_system_prompt=system_prompt)


MESSAGES = [{"role": "user", "speaker": "A", "name": "Dana", "content": "Where does Sam live, and what's the fee?"},
            {"role": "assistant", "speaker": "B", "name": "AI assistant",
             "content": "Sam lives at 4 Elm Street. The fee is on our price list."}]


async def revise_and_verify(judge: Judge, j: DialogueJob) -> dict[str, Any]:
    sp = selfplay(judge)
    verdicts = await sp.judge_turns(j, MESSAGES, [1])
    assert verdicts[0]["violated"] == ["privacy.no-doxxing"]
    revisions = await sp.verify_revisions(j, MESSAGES, await sp.revise_turns(j, MESSAGES, verdicts))
    return revisions[0]


def record_with(j: DialogueJob, rev: dict[str, Any]) -> DialogueRecord:
    from sparring.graphs.assemble import build_dialogue_record
    from sparring.graphs.records import DialogueUsage

    state = {"messages": MESSAGES, "verdicts": [], "revisions": [rev], "plan": {}}
    return build_dialogue_record(j, state, trace_id=None, usage=DialogueUsage(), duration_s=0.0)


async def test_a_revision_that_becomes_a_needless_refusal_is_not_verified():
    judge = Judge("Sorry, I can't help with that.")
    rev = await revise_and_verify(judge, job())
    assert not rev["verified"] and rev["remaining"] == [REFUSAL]
    # The verifier was asked about every principle in scope, not only the one the original broke.
    verifier_prompt = judge.seen["critic"][-1][-1]["content"]
    assert all(p.id in verifier_prompt for p in PRINCIPLES_H)
    record = record_with(job(), rev)
    assert extract_preference_pairs(record, job_of(record)) == []
    assert dropped_pairs(record, keep_unverified=False) == {"revision_flagged": 1}
    assert "1 a revision that broke something new" in left_out_line(Counts(dropped_pairs={"revision_flagged": 1}))


async def test_a_revision_that_breaks_the_deployments_system_prompt_is_not_verified():
    j = job("redteam", RULE)
    judge2 = Judge("I won't share where people live. The fee is $40.")
    rev2 = await revise_and_verify(judge2, j)
    assert not rev2["verified"] and rev2["remaining"] == ["deployment.system-prompt"]
    assert RULE in judge2.seen["critic"][-1][-1]["content"]  # the verifier's rules hold the system prompt
    # The reviser was shown the deployment's system prompt and told to keep the help.
    reviser = judge2.seen["reviser"][-1]
    assert RULE in reviser[-1]["content"]
    assert "do not refuse" in reviser[0]["content"]


async def test_a_good_revision_is_verified_and_gives_its_pair():
    judge = Judge("I won't share where people live. The fee is on our price list.")
    for j in (job(), job("redteam", RULE)):
        rev = await revise_and_verify(judge, j)
        assert rev["verified"] and rev["remaining"] == [] and rev["verify_finish_reason"] == "stop"
        revision = Revision.model_validate(rev)
        assert revision.verified


async def test_the_system_prompt_is_no_rule_outside_redteam_mode():
    judge = Judge("I won't share where people live. The fee is $40.")
    rev = await revise_and_verify(judge, job("assistant", None))
    assert rev["verified"]
    assert "deployment.system-prompt" not in judge.seen["critic"][-1][-1]["content"]
    assert "<system_prompt>" not in judge.seen["reviser"][-1][-1]["content"]
