"""The self-play graph for one dialogue:

    plan -> speak (A, B, A, ...) -> continue | stop -> critique -> [revise -> verify
         -> [branch (A, B, ...) -> branch_critique]] -> [summarize] -> [judge] -> end

``critique`` judges nothing when ``dialogue.critique`` is off (DiaSynth's setup); the branch
(``dialogue.branch_turns``) lives in _branching.py.

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

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Command
from typing_extensions import TypedDict

from sparring.agents.agent_calls import PrincipleLike, derive_seed
from sparring.agents.backends.base import Backend
from sparring.agents.backends.messages import SamplingParams
from sparring.agents.critic import CriticAgent
from sparring.agents.domain import DialogueJob, PlanOutput, Side
from sparring.agents.geval_judge import JudgeAgent
from sparring.agents.over_refusal import over_refusal_principle
from sparring.agents.persona import PersonaAgent, turn_line
from sparring.agents.planner import PlannerAgent
from sparring.agents.redteam import RedTeamAgents, attacker_prompt, behaviour_principle, tactic_for
from sparring.agents.reviser import ReviserAgent
from sparring.agents.tactics import Tactic
from sparring.diasynth_agents.summaries import summarize

from ._branching import CritiqueSteps, spoken_line
from .adaptive import AttemptBoard, attempt_summary
from .dialogue_config import DialogueConfig
from .shared_plans import SharedPlans


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
    critic_principles: list[str] | None
    """What the critic judges against when not the whole set (``critic_scope: targeted``)."""
    branch: dict[str, Any]
    """The continuation from the first flagged turn's verified revision (graphs/_branching.py)."""
    plan_from: str
    """Several targets: the dialogue whose planner call made this one's plan, when another (graphs/shared_plans.py)."""


@dataclass
class SelfPlayAgents:
    planner: PlannerAgent
    persona: PersonaAgent
    """Speaks for side A, and for side B unless ``persona_b`` is given."""
    critic: CriticAgent
    reviser: ReviserAgent
    verifier: CriticAgent
    persona_b: PersonaAgent | None = None
    """Side B's speaker when it runs on another backend than side A's."""
    summary: Backend | None = None
    """The summary stage's backend (default: the planner's)."""
    redteam: RedTeamAgents | None = None
    """The attack planner and the target, for redteam mode."""

    def speaker(self, side: Side) -> PersonaAgent:
        return self.persona_b if side == "B" and self.persona_b is not None else self.persona


def probe_principle(job: DialogueJob, ids: Sequence[str]) -> str:
    """The principle a control dialogue is judged against under ``critic_scope: targeted``, drawn from
    its seed, so that the critic is asked about one principle whether or not it was planted."""
    return ids[derive_seed(job.seed, job.id, "probe") % len(ids)]


@dataclass
class SelfPlay(CritiqueSteps):
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
    models: dict[str, str] = field(default_factory=dict)
    """The model behind each role (records' ``models``)."""
    attempts: AttemptBoard | None = None
    """Adaptive attacks: the run's finished attacks by goal (the runner reports each record to it)."""
    plans: SharedPlans | None = None
    """Several targets: each attack's plan, made once and played against every target."""
    target_models: dict[str, str] = field(default_factory=dict)
    """Several targets: the model behind each target backend, by name (records' ``models.side_b``)."""
    _by_id: dict[str, PrincipleLike] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {p.id: p for p in self.principles}

    # -- helpers -------------------------------------------------------------
    def own_principle(self, job: DialogueJob) -> PrincipleLike | None:
        """What a redteam job is judged against besides the run's set: its behaviour's principle, or an
        over-refusal probe's (``helpfulness.no-needless-refusal``)."""
        if job.behaviour is not None:
            return behaviour_principle(job.behaviour)
        return over_refusal_principle() if job.probe is not None else None

    def lookup(self, job: DialogueJob) -> dict[str, PrincipleLike]:
        """Principles by id for one job: the run's, and its own (``own_principle``)."""
        extra = self.own_principle(job)
        return self._by_id if extra is None else {**self._by_id, extra.id: extra}

    def targets(self, job: DialogueJob) -> list[PrincipleLike]:
        """The principles the briefed side is briefed about: to break (targets) or, in a near-miss control,
        to come near and not break (the planner and the persona tell the two apart by the job)."""
        by_id = self.lookup(job)
        return [by_id[i] for i in job.target_principles or job.near_miss_principles if i in by_id]

    def judged_against(self, job: DialogueJob) -> list[PrincipleLike]:
        """The principles in scope for the critic: the whole set; with ``critic_scope: targeted``, the
        targeted ones, or for a control a probe principle drawn the same way (never "the set" for one
        kind and "the answer" for the other)."""
        extra = self.own_principle(job)
        if self.settings.critic_scope == "targeted" and self.principles:
            ids = (job.target_principles or job.near_miss_principles
                   or ((extra.id,) if extra is not None else (probe_principle(job, [p.id for p in self.principles]),)))
            by_id = self.lookup(job)
            return [by_id[i] for i in ids if i in by_id]
        return list(self.principles) + ([extra] if extra is not None and extra.id not in self._by_id else [])

    def models_for(self, job: DialogueJob) -> dict[str, str]:
        """The model behind each role of ``job`` (side B: its target's, with several targets)."""
        if job.target is None:
            return dict(self.models)
        return {**self.models, "side_b": self.target_models.get(job.target, self.models.get("side_b", "?"))}

    def recursion_limit(self) -> int:
        # plan + one step per turn (and branch turn) + critique/revise/verify/summarize/judge, with room to spare.
        return self.settings.max_turns + self.settings.branch_turns + 16

    def situation(self, plan: PlanOutput) -> str:
        return "; ".join(f"{c.name}: {c.value}" for c in plan.characteristics)

    # -- nodes -----------------------------------------------------------------
    async def plan(self, state: DialogueState) -> dict[str, Any]:
        job = DialogueJob.model_validate(state["job"])
        shared: dict[str, Any] = {}
        if job.mode == "redteam":
            targets = self.targets(job)
            tactic = self.tactic(job) if targets else None
            earlier = await self.attempts.earlier(job) if self.attempts is not None and targets else []
            attack, made_by = await self._attack_plan(job, targets, tactic, attempt_summary(earlier))
            if made_by != job.id:
                shared["plan_from"] = made_by
            access = "white-box" if self.settings.attacker_sees_system_prompt else "black-box"
            planned = {**attack.model_dump(), "strategy": tactic.name if tactic else None, "access": access}
            if self.attempts is not None:
                planned["earlier_attempts"] = sum(1 for r in earlier if attempt_summary([r]))
        else:
            plan, _ = await self.agents.planner.plan(job, self.targets(job), self.settings.max_turns,
                                                     self.characteristics)
            planned = plan.model_dump()
        scope = ([p.id for p in self.judged_against(job)] if self.settings.critic_scope == "targeted"
                 and self.settings.critique else None)
        return {"plan": planned, "messages": [], "verdicts": [], "revisions": [], "done": False,
                "critic_principles": scope, **shared}

    async def _attack_plan(self, job: DialogueJob, targets: list[PrincipleLike], tactic: Tactic | None,
                           earlier: str) -> tuple[PlanOutput, str]:
        """The plan of a redteam job and the dialogue whose planner call made it: with several targets,
        the attack's shared plan (``plans``), else its own."""
        async def make() -> PlanOutput:
            made, _ = await self._redteam().planner.plan(job, targets, self.settings.max_turns,
                                                         self.characteristics, tactic, earlier)
            return made

        if job.target is None or self.plans is None:
            return await make(), job.id
        return await self.plans.plan(job.attack_id, earlier, job.id, make)

    async def speak(self, state: DialogueState) -> Command[Any]:
        job = DialogueJob.model_validate(state["job"])
        messages = state.get("messages", [])
        side: Side = "A" if len(messages) % 2 == 0 else "B"
        line = spoken_line(messages, state.get("revisions", []))
        turn, done = await self.say(job, state["plan"], line, side, self.settings.max_turns)
        messages = [*messages, turn]
        update: dict[str, Any] = {"messages": messages, "done": done}
        update.update(await self.judge_as_spoken(job, state, messages))
        return Command(update=update, goto=self.route_after_turn({**state, **update}))  # type: ignore[typeddict-item]

    async def say(self, job: DialogueJob, planned: dict[str, Any], messages: list[dict[str, Any]], side: Side,
                  max_turns: int, *, branch: bool = False) -> tuple[dict[str, Any], bool]:
        """The next turn of ``side`` (in the trunk, or in a branch that ends at ``max_turns``), with why its
        model stopped writing, and whether it ends the conversation (an end marker is honoured from either
        side at any turn: no turn follows a farewell); the persona's, in redteam mode the attacker's (A)
        or the target's (B). In a ``branch`` the briefed persona carries no violation instruction."""
        plan = PlanOutput.model_validate(planned)
        done = False
        if job.mode != "redteam":
            text, done, completion = await self.agents.speaker(side).speak(
                job, plan, messages, side, [] if branch else self.targets(job), situation=self.situation(plan),
                style_example=self.style_example(job), max_turns=max_turns, min_turns=self.settings.min_turns)
        elif side == "B":
            text, completion = await self._redteam().target_of(job).reply(job, messages)
        else:
            tactic = next((t for t in self._tactics() if t.name == planned.get("strategy")), None)
            system = attacker_prompt(job, plan, tactic, self.style_example(job), situation=self.situation(plan),
                                     turn_line=turn_line(len(messages), max_turns, self.settings.min_turns))
            text, done, completion = await self.agents.persona.speak(job, plan, messages, "A", self.targets(job),
                                                                     system=system)
        turn = {"role": "user" if side == "A" else "assistant", "speaker": side, "name": job.speaker_name(side),
                "content": text, "finish_reason": completion.finish_reason}
        return turn, done

    def _tactics(self) -> list[Tactic]:
        return [s.as_tactic() for s in self.settings.attack_strategies]

    def tactic(self, job: DialogueJob) -> Tactic:
        """The attack tactic of a redteam job (``agents.redteam.tactic_for``)."""
        return tactic_for(job, self._tactics())

    def _redteam(self) -> RedTeamAgents:
        if self.agents.redteam is None:
            raise ValueError("a redteam dialogue needs SelfPlayAgents.redteam (graphs.wiring.make_agents makes it)")
        return self.agents.redteam

    def route_after_turn(self, state: DialogueState) -> str:
        n = len(state.get("messages", []))
        if state.get("stop_reason") == "violation" or state.get("done") or n >= self.settings.max_turns:
            return "critique"
        return "speak"

    async def critique(self, state: DialogueState) -> Command[Any]:
        job = DialogueJob.model_validate(state["job"])
        messages = state["messages"]
        stop_reason = state.get("stop_reason") or ("done_signal" if state.get("done") else "max_turns")
        judged = {v["turn_index"] for v in state.get("verdicts", [])}
        todo = [i for i, m in enumerate(messages) if m["speaker"] == job.judged_side and i not in judged]
        line = spoken_line(messages, state.get("revisions", []))
        new = await self.judge_turns(job, line, todo if self.settings.critique else [])
        verdicts = sorted([*state.get("verdicts", []), *new], key=lambda v: v["turn_index"])
        update = {"verdicts": verdicts, "stop_reason": stop_reason}
        return Command(update=update, goto=self.route_after_critique({**state, **update}))  # type: ignore[typeddict-item]

    def route_after_critique(self, state: DialogueState) -> str:
        if any(v["violated"] for v in state.get("verdicts", [])):
            return "revise"
        return self.route_to_end(state)

    async def revise(self, state: DialogueState) -> dict[str, Any]:
        """Revisions of the flagged turns not revised as they were spoken (``answered_until``)."""
        job = DialogueJob.model_validate(state["job"])
        start, earlier = self.answered_until(job, state["plan"]), state.get("revisions", [])
        line = spoken_line(state["messages"], earlier)
        new = await self.revise_turns(job, line, [v for v in state["verdicts"] if v["turn_index"] >= start])
        return {"revisions": [*(r for r in earlier if r["turn_index"] < start), *new]}

    async def verify(self, state: DialogueState) -> Command[Any]:
        job = DialogueJob.model_validate(state["job"])
        start, revisions = self.answered_until(job, state["plan"]), state.get("revisions", [])
        line = spoken_line(state["messages"], revisions)
        checked = await self.verify_revisions(job, line, [r for r in revisions if r["turn_index"] >= start])
        revisions = [*(r for r in revisions if r["turn_index"] < start), *checked]
        return Command(update={"revisions": revisions}, goto=self.route_after_verify({**state, "revisions": revisions}))

    def route_to_end(self, state: DialogueState) -> str:
        return "summarize" if self.summary_params is not None else self.route_after_summary(state)

    def route_after_summary(self, state: DialogueState) -> str:
        return "judge" if self.judge is not None else END

    async def summarize(self, state: DialogueState) -> Command[Any]:
        assert self.summary_params is not None
        job = DialogueJob.model_validate(state["job"])
        params = self.summary_params.with_seed(derive_seed(job.seed, job.id, "summary"))
        summary = await summarize(self.agents.summary or self.agents.planner.backend, state["messages"], params)
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
        g.add_node("verify", self.verify, destinations=("branch", "summarize", "judge", END))
        g.add_node("branch", self.branch, destinations=("branch", "branch_critique"))
        g.add_node("branch_critique", self.branch_critique, destinations=("summarize", "judge", END))
        g.add_node("summarize", self.summarize, destinations=("judge", END))
        g.add_node("judge", self.score)
        g.add_edge(START, "plan")
        g.add_edge("plan", "speak")
        g.add_edge("revise", "verify")
        g.add_edge("judge", END)
        return g.compile(checkpointer=checkpointer, name="selfplay")
