"""The self-play graph's critique steps and its branch (``dialogue.branch_turns``), as methods
SelfPlay inherits: kept apart so that selfplay.py stays the graph's outline.

With branching on, the conversation goes on from every verified revision, in two ways:

- **Before the planted turn** (a briefed dialogue whose judged side was told to break a
  principle in one turn), each turn of the judged side is critiqued as it is spoken; a
  flagged one is revised and verified at once, and when its revision is verified the
  conversation goes on from the revision (``answered``): both sides' later turns, the planted
  one among them, are written seeing it. An incidental flag before the planted turn then
  costs the targeted pair nothing, and no call is added (the same turns are critiqued,
  revised and verified once each; only their order changes).
- **From the first flagged turn on** (at or after the planted turn, or in any dialogue
  without one), once the trunk is critiqued, revised and verified and that turn has a
  verified revision, the dialogue continues from it for up to ``branch_turns`` more turns
  (both sides speaking, each seeing the revised conversation, the briefed side with no
  violation instruction), then the judged side's new turns are critiqued, revised and
  verified like the trunk's.

Pairs and the SFT row then come from conversations that are consistent from their first
turn to their last (graphs/assemble.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from sparring.agents.agent_calls import DeploymentRule, PrincipleLike
from sparring.agents.domain import DialogueJob, PlanOutput, Side, TurnVerdict
from sparring.agents.persona import planted_index
from sparring.errors import BackendError, ReplayExhausted, ReplayMismatch

from .assemble import fixes, is_preference
from .records import Revision

if TYPE_CHECKING:
    from .dialogue_config import DialogueConfig
    from .selfplay import DialogueState, SelfPlayAgents


def spoken_line(messages: Sequence[dict[str, Any]], revisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as the speakers saw it: each turn as spoken, or its revision where the conversation went
    on from the revision (``answered``)."""
    answered = {r["turn_index"]: r["revised"] for r in revisions if r.get("answered")}
    return [{**m, "content": answered[i]} if i in answered else m for i, m in enumerate(messages)]


def branch_start(state: Mapping[str, Any]) -> dict[str, Any] | None:
    """The branch's first state: the conversation before its first flagged turn that nobody answered the
    revision of, then that turn's verified revision; None when that turn has no verified revision (nothing
    consistent to go on from)."""
    revisions = state.get("revisions", [])
    answered = {r["turn_index"] for r in revisions if r.get("answered")}
    flagged = [v["turn_index"] for v in state.get("verdicts", []) if v["violated"] and v["turn_index"] not in answered]
    if not flagged:
        return None
    first = min(flagged)
    if any(v.get("error") and v["turn_index"] < first for v in state.get("verdicts", [])):
        return None  # an unjudged turn before it: no row of the branch could show its start
    rev = next((r for r in revisions if r["turn_index"] == first), None)
    if rev is None or not fixes(Revision.model_validate(rev)):
        return None
    messages = spoken_line(state["messages"], revisions)
    return {"from_turn": first, "messages": [*messages[:first], {**messages[first], "content": rev["revised"]}],
            "verdicts": [], "revisions": [], "done": False}


def deployment_prompt(job: DialogueJob) -> str | None:
    """The system prompt the judged side is deployed with, which its revisions must follow: a redteam
    target's; None otherwise."""
    return job.target_system_prompt if job.mode == "redteam" and job.judged_side == "B" else None


def step_failure(step: str, exc: BaseException) -> str | None:
    """The line recorded against a turn when its critic, reviser or verifier call failed for good (after
    retries and re-asks), or None when ``exc`` must stop the dialogue instead: only the conversation's own
    turns fail a dialogue, and a replay that strays from its recording is never papered over."""
    if not isinstance(exc, BackendError) or isinstance(exc, ReplayExhausted | ReplayMismatch):
        return None
    return f"{step}: {type(exc).__name__}: {exc}"


class CritiqueSteps:
    """Judging, revising and verifying turns of one line of conversation, and the branch nodes."""

    agents: SelfPlayAgents
    settings: DialogueConfig
    _by_id: dict[str, PrincipleLike]

    # SelfPlay's, used here.
    def lookup(self, job: DialogueJob) -> dict[str, PrincipleLike]:
        raise NotImplementedError

    def judged_against(self, job: DialogueJob) -> list[PrincipleLike]:
        raise NotImplementedError

    def route_to_end(self, state: Any) -> str:
        raise NotImplementedError

    def targets(self, job: DialogueJob) -> list[PrincipleLike]:
        raise NotImplementedError

    async def say(self, job: DialogueJob, planned: dict[str, Any], messages: list[dict[str, Any]], side: Side,
                  max_turns: int, *, branch: bool = False) -> tuple[dict[str, Any], bool]:
        raise NotImplementedError

    async def judge_turn(self, job: DialogueJob, messages: Sequence[dict[str, Any]], index: int) -> TurnVerdict:
        """The critic's verdict on ``messages[index]``; an unjudged verdict (``error`` set) when the critic's
        call failed for good: the dialogue goes on, and no training row shows that turn."""
        try:
            return await self.agents.critic.judge(job.seed, job.id, messages, index, self.judged_against(job),
                                                  order_key=job.critic_order_key)
        except Exception as exc:
            if (error := step_failure("critic", exc)) is None:
                raise
            return TurnVerdict(turn_index=index, side=messages[index]["speaker"], violated=[], findings=[],
                               reasoning="", error=error)

    def answered_until(self, job: DialogueJob, planned: Mapping[str, Any]) -> int:
        """The planted turn's index when the judged side's turns before it are critiqued as they are spoken and
        the conversation goes on from their verified revisions (branching on, a briefed judged side), else 0."""
        if not (self.settings.branch_turns and self.settings.critique) or job.judged_side != job.briefed_side:
            return 0
        index = planted_index(job, PlanOutput.model_validate(planned).violation_turn)
        return index if index is not None and self.targets(job) else 0

    async def judge_as_spoken(self, job: DialogueJob, state: Mapping[str, Any],
                              messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The state update for the turn just spoken, ``messages[-1]``: judged now when the dialogue stops at a
        targeted violation (``stop_on_violation``) or the turn comes before the planted one with branching on
        (``answered_until``); then, if flagged, revised and verified now, and ``answered`` when the revision is
        verified, so the next turns are written seeing it."""
        index = len(messages) - 1
        stop = self.settings.stop_on_violation and bool(job.target_principles)
        now = index < self.answered_until(job, state["plan"])
        if messages[index]["speaker"] != job.judged_side or not (stop or now):
            return {}
        revisions = state.get("revisions", [])
        convo = spoken_line(messages, revisions)
        verdict = await self.judge_turn(job, convo, index)
        update: dict[str, Any] = {"verdicts": [*state.get("verdicts", []), verdict.model_dump()]}
        if stop and set(verdict.violated) & set(job.target_principles):
            update["stop_reason"] = "violation"
        if now and verdict.violated:
            revised = await self.revise_turns(job, convo, update["verdicts"][-1:])
            (rev,) = await self.verify_revisions(job, convo, revised)
            update["revisions"] = [*revisions, {**rev, "answered": fixes(Revision.model_validate(rev))}]
        return update

    async def judge_turns(self, job: DialogueJob, messages: Sequence[dict[str, Any]],
                          indices: Sequence[int]) -> list[dict[str, Any]]:
        """The critic's verdicts on ``messages[i]`` for each ``i``, judged in parallel."""
        new = await asyncio.gather(*(self.judge_turn(job, messages, i) for i in indices))
        return [v.model_dump() for v in new]

    async def revise_turns(self, job: DialogueJob, messages: Sequence[dict[str, Any]],
                           verdicts: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """A revision of every flagged turn (not verified yet); a reviser call that failed for good leaves
        an empty revision with its ``error``."""

        async def revise(v: TurnVerdict) -> dict[str, Any]:
            rev = {"turn_index": v.turn_index, "original": messages[v.turn_index]["content"], "revised": "",
                   "principle_ids": list(v.violated), "verified": False, "remaining": []}
            try:
                rev["revised"], rev["finish_reason"] = await self.agents.reviser.revise(
                    job.seed, job.id, messages, v, self.lookup(job), system_prompt=deployment_prompt(job))
            except Exception as exc:
                if (error := step_failure("reviser", exc)) is None:
                    raise
                rev["error"] = error
            return rev

        flagged = [TurnVerdict.model_validate(v) for v in verdicts if v["violated"]]
        return list(await asyncio.gather(*(revise(v) for v in flagged)))

    async def verify_revisions(self, job: DialogueJob, messages: Sequence[dict[str, Any]],
                               revisions: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Each revision judged as thoroughly as the turn it replaces, and more: against every principle in the
        critic's scope (and a redteam target's system prompt, ``DeploymentRule``). Verified when it breaks
        none; ``remaining`` lists what it still breaks, a principle the original broke or a new one (a needless
        refusal, a breach of the deployment's rule); not verified, with its ``error``, when the verifier's call
        failed for good."""

        async def check(rev: dict[str, Any]) -> dict[str, Any]:
            if rev.get("error") or not is_preference(rev["original"], rev["revised"]):
                # Nothing to verify: no revision, or an empty or unchanged one, is no fix, and no pair.
                return {**rev, "verified": False, "remaining": list(rev["principle_ids"])}
            principles: list[PrincipleLike] = list(self.judged_against(job))
            if (system_prompt := deployment_prompt(job)) is not None:
                principles.append(DeploymentRule(system_prompt))
            try:
                verdict = await self.agents.verifier.judge(job.seed, job.id, messages, rev["turn_index"],
                                                           principles, text=rev["revised"],
                                                           order_key=job.critic_order_key)
            except Exception as exc:
                if (error := step_failure("verifier", exc)) is None:
                    raise
                return {**rev, "verified": False, "remaining": [], "error": error}
            remaining = sorted(verdict.violated)
            return {**rev, "verified": not remaining, "remaining": remaining,
                    "verify_finish_reason": verdict.finish_reason}

        return list(await asyncio.gather(*(check(r) for r in revisions)))

    # -- the branch ----------------------------------------------------------------------
    def route_after_verify(self, state: DialogueState) -> str:
        if self.settings.branch_turns and not state.get("branch") and branch_start(state) is not None:
            return "branch"
        return self.route_to_end(state)

    async def branch(self, state: DialogueState) -> Command[Any]:
        """One more turn of the branch."""
        job = DialogueJob.model_validate(state["job"])
        branch = state.get("branch") or branch_start(state)
        assert branch is not None
        messages = branch["messages"]
        end = branch["from_turn"] + 1 + self.settings.branch_turns
        side: Side = "A" if len(messages) % 2 == 0 else "B"
        turn, done = await self.say(job, state["plan"], messages, side, end, branch=True)
        messages = [*messages, turn]
        branch = {**branch, "messages": messages, "done": done}
        return Command(update={"branch": branch}, goto="branch_critique" if done or len(messages) >= end
                       else "branch")

    async def branch_critique(self, state: DialogueState) -> Command[Any]:
        """The branch's new turns of the judged side: critique, revisions, verification."""
        job = DialogueJob.model_validate(state["job"])
        branch = state["branch"]
        messages = branch["messages"]
        todo = [i for i in range(branch["from_turn"] + 1, len(messages)) if messages[i]["speaker"] == job.judged_side]
        verdicts = await self.judge_turns(job, messages, todo)
        revisions = await self.verify_revisions(job, messages, await self.revise_turns(job, messages, verdicts))
        branch = {**branch, "verdicts": verdicts, "revisions": revisions,
                  "stop_reason": "done_signal" if branch.get("done") else "max_turns"}
        branch.pop("done", None)
        return Command(update={"branch": branch}, goto=self.route_to_end(state))
