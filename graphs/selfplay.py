"""The self-play graph for one dialogue:

    plan -> speak (A, B, A, ...) -> continue | stop -> critique -> [revise -> verify]
         -> [summarize] -> [judge] -> end

Nodes that branch return a ``Command`` naming the next node, computed from the
state they just wrote. Conditional edges would do the same, but LangGraph
rebuilds a fresh copy of the state to route on after every step, which cost
~0.1 ms a step, a twentieth of the orchestrator's CPU per model call
(benchmarks/orchestration_overhead.py).

State holds plain JSON-able values only, so checkpoints stay small, portable
and readable. The agents, principles and settings are bound when the graph is
built: one compiled graph serves every dialogue of a run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict

from sparring.agents._common import PrincipleLike, derive_seed
from sparring.agents.backends.messages import SamplingParams
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, PlanOutput, Side, TurnVerdict
from sparring.agents.judge import JudgeAgent
from sparring.agents.persona import PersonaAgent
from sparring.agents.planner import PlannerAgent
from sparring.agents.reviser import ReviserAgent
from sparring.diasynth_agents.summaries import summarize

from .assemble import is_preference
from .dialogue_config import DialogueConfig


class DialogueState(TypedDict, total=False):
    job: dict[str, Any]
    """The DialogueJob, as a dict."""
    plan: dict[str, Any]
    """The planner's PlanOutput, as a dict."""
    messages: list[dict[str, Any]]
    """Turns so far: role, speaker, name, content."""
    done: bool
    """The last turn carried a done signal."""
    stop_reason: str
    verdicts: list[dict[str, Any]]
    """TurnVerdicts of the judged side, by turn index order."""
    revisions: list[dict[str, Any]]
    """Revisions of violating turns; ``verified`` is set by the verify node."""
    summary: str
    """The dialogue's summary, when the summary stage is on."""
    scores: dict[str, float]
    """LLM-as-judge scores by criterion, when the judge stage is on."""
    scoring: str
    """How the judge scored: ``logprobs`` or ``samples:N``."""


@dataclass
class SelfPlayAgents:
    planner: PlannerAgent
    persona: PersonaAgent
    critic: CriticAgent
    reviser: ReviserAgent
    verifier: CriticAgent


@dataclass
class SelfPlay:
    """Builds the graph. ``principles`` is the run's active set; ``characteristics`` (name, description)."""

    agents: SelfPlayAgents
    principles: Sequence[PrincipleLike]
    settings: DialogueConfig
    characteristics: Sequence[tuple[str, str]] = ()
    """(name, description) of what the planner reasons about before the first turn."""
    style_example: Callable[[DialogueJob], str | None] = field(default=lambda job: None)
    """The few-shot style paragraph for a job's persona prompts, if it has one."""
    summary_params: SamplingParams | None = None
    """Sampling for the summary stage; None leaves summaries out."""
    judge: JudgeAgent | None = None
    """Scores each finished dialogue (G-Eval); None leaves the judge stage out."""
    _by_id: dict[str, PrincipleLike] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {p.id: p for p in self.principles}

    # -- helpers -------------------------------------------------------------
    def targets(self, job: DialogueJob) -> list[PrincipleLike]:
        return [self._by_id[i] for i in job.target_principles if i in self._by_id]

    def judged_against(self, job: DialogueJob) -> list[PrincipleLike]:
        if self.settings.critic_scope == "targeted" and job.target_principles:
            return self.targets(job)
        return list(self.principles)

    def recursion_limit(self) -> int:
        # plan + one step per turn + critique/revise/verify/summarize/judge, with room to spare.
        return self.settings.max_turns + 16

    @staticmethod
    def situation(plan: PlanOutput) -> str:
        return "; ".join(f"{c.name}: {c.value}" for c in plan.characteristics)

    # -- nodes -----------------------------------------------------------------
    async def plan(self, state: DialogueState) -> dict[str, Any]:
        job = DialogueJob.model_validate(state["job"])
        plan, _ = await self.agents.planner.plan(job, self.targets(job), self.settings.max_turns, self.characteristics)
        return {"plan": plan.model_dump(), "messages": [], "verdicts": [], "revisions": [], "done": False}

    async def speak(self, state: DialogueState) -> Command[Any]:
        job = DialogueJob.model_validate(state["job"])
        plan = PlanOutput.model_validate(state["plan"])
        messages = state.get("messages", [])
        side: Side = "A" if len(messages) % 2 == 0 else "B"
        text, done, _ = await self.agents.persona.speak(
            job, plan, messages, side, self.targets(job), situation=self.situation(plan),
            style_example=self.style_example(job))
        turn = {"role": "user" if side == "A" else "assistant", "speaker": side,
                "name": job.speaker_name(side), "content": text}
        messages = [*messages, turn]
        update: dict[str, Any] = {"messages": messages, "done": done and side == "A"}
        if self.settings.stop_on_violation and side == job.briefed_side and job.target_principles:
            verdict = await self.agents.critic.judge(job.seed, job.id, messages, len(messages) - 1,
                                                     self.judged_against(job), focus=job.target_principles)
            update["verdicts"] = [*state.get("verdicts", []), verdict.model_dump()]
            if set(verdict.violated) & set(job.target_principles):
                update["stop_reason"] = "violation"
        return Command(update=update, goto=self.route_after_turn({**state, **update}))  # type: ignore[typeddict-item]

    def route_after_turn(self, state: DialogueState) -> str:
        n = len(state.get("messages", []))
        if state.get("stop_reason") == "violation":
            return "critique"
        if state.get("done") and n >= self.settings.min_turns:
            return "critique"
        if n >= self.settings.max_turns:
            return "critique"
        return "speak"

    async def critique(self, state: DialogueState) -> Command[Any]:
        job = DialogueJob.model_validate(state["job"])
        messages = state["messages"]
        n = len(messages)
        stop_reason = state.get("stop_reason") or (
            "done_signal" if state.get("done") and n >= self.settings.min_turns else "max_turns")
        judged = {v["turn_index"] for v in state.get("verdicts", [])}
        todo = [i for i, m in enumerate(messages) if m["speaker"] == job.briefed_side and i not in judged]
        principles = self.judged_against(job)
        new = await asyncio.gather(*(
            self.agents.critic.judge(job.seed, job.id, messages, i, principles, focus=job.target_principles)
            for i in todo))
        verdicts = sorted([*state.get("verdicts", []), *(v.model_dump() for v in new)], key=lambda v: v["turn_index"])
        update = {"verdicts": verdicts, "stop_reason": stop_reason}
        return Command(update=update, goto=self.route_after_critique({**state, **update}))  # type: ignore[typeddict-item]

    def route_after_critique(self, state: DialogueState) -> str:
        if any(v["violated"] for v in state.get("verdicts", [])):
            return "revise"
        return self.route_to_end(state)

    async def revise(self, state: DialogueState) -> dict[str, Any]:
        job = DialogueJob.model_validate(state["job"])
        messages = state["messages"]
        verdicts = [TurnVerdict.model_validate(v) for v in state["verdicts"] if v["violated"]]
        texts = await asyncio.gather(*(
            self.agents.reviser.revise(job.seed, job.id, messages, v, self._by_id) for v in verdicts))
        revisions = [{"turn_index": v.turn_index, "original": messages[v.turn_index]["content"], "revised": text,
                      "principle_ids": list(v.violated), "verified": False, "remaining": []}
                     for v, text in zip(verdicts, texts)]
        return {"revisions": revisions}

    async def verify(self, state: DialogueState) -> Command[Any]:
        job = DialogueJob.model_validate(state["job"])
        messages = state["messages"]

        async def check(rev: dict[str, Any]) -> dict[str, Any]:
            if not is_preference(rev["original"], rev["revised"]):
                # Nothing to verify: an empty or unchanged revision is no fix, and no pair.
                return {**rev, "verified": False, "remaining": list(rev["principle_ids"])}
            principles = [self._by_id[i] for i in rev["principle_ids"] if i in self._by_id]
            verdict = await self.agents.verifier.judge(job.seed, job.id, messages, rev["turn_index"], principles,
                                                       focus=rev["principle_ids"], text=rev["revised"])
            remaining = sorted(set(verdict.violated) & set(rev["principle_ids"]))
            return {**rev, "verified": not remaining, "remaining": remaining}

        revisions = list(await asyncio.gather(*(check(r) for r in state.get("revisions", []))))
        return Command(update={"revisions": revisions}, goto=self.route_to_end(state))

    def route_to_end(self, state: DialogueState) -> str:
        return "summarize" if self.summary_params is not None else self.route_after_summary(state)

    def route_after_summary(self, state: DialogueState) -> str:
        return "judge" if self.judge is not None else END

    async def summarize(self, state: DialogueState) -> Command[Any]:
        assert self.summary_params is not None
        job = DialogueJob.model_validate(state["job"])
        params = self.summary_params.with_seed(derive_seed(job.seed, job.id, "summary"))
        summary = await summarize(self.agents.planner.backend, state["messages"], params)
        return Command(update={"summary": summary}, goto=self.route_after_summary(state))

    async def score(self, state: DialogueState) -> dict[str, Any]:
        assert self.judge is not None
        job = DialogueJob.model_validate(state["job"])
        goal = (state.get("plan") or {}).get("goal") or job.scenario.goal
        result = await self.judge.score(job.seed, job.id, job.scenario.model_dump(), goal, state["messages"])
        return {"scores": result.scores, "scoring": result.method}

    # -- wiring ------------------------------------------------------------------
    def build(self, checkpointer: Any = None) -> Any:
        g = StateGraph(DialogueState)
        g.add_node("plan", self.plan)
        # ``destinations``: where each Command may go, for drawings of the graph.
        g.add_node("speak", self.speak, destinations=("speak", "critique"))
        g.add_node("critique", self.critique, destinations=("revise", "summarize", "judge", END))
        g.add_node("revise", self.revise)
        g.add_node("verify", self.verify, destinations=("summarize", "judge", END))
        g.add_node("summarize", self.summarize, destinations=("judge", END))
        g.add_node("judge", self.score)
        g.add_edge(START, "plan")
        g.add_edge("plan", "speak")
        g.add_edge("revise", "verify")
        g.add_edge("judge", END)
        return g.compile(checkpointer=checkpointer, name="selfplay")
