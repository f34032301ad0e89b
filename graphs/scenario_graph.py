"""The scenario graph: DiaSynth expansion of topics into Scenario records.

::

    START --Send per topic--> generate_subtopics --> join_subtopics
          --Send per subtopic--> generate_personas --> build_scenarios --> END

Fan-out uses LangGraph ``Send``, so every topic's subtopics, then every
subtopic's personas, are generated concurrently (the backend bounds requests
in flight). ``join_subtopics`` is the barrier between the two fan-outs: it
runs once, after every topic is done. ``build_scenarios`` pairs each
subtopic's personas (all C(p, 2) pairs, or a seeded sample under
``max_scenarios``) in topic, subtopic, pair order, whatever order the calls
finished in.
"""

from __future__ import annotations

import operator
import random
from dataclasses import dataclass
from itertools import combinations
from typing import Annotated, Any

from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from typing_extensions import TypedDict

from sparring.agents.backends import ChatBackend
from sparring.agents.domain import Persona, Scenario, derive_seed
from sparring.diasynth_agents.counts import Counts, expected_counts, pairs_per_subtopic
from sparring.diasynth_agents.dedup import Embedder
from sparring.diasynth_agents.diasynth_config import DiaSynthConfig
from sparring.diasynth_agents.expansion_report import ExpansionReport, ListReport
from sparring.diasynth_agents.personas import generate_personas
from sparring.diasynth_agents.subtopics import generate_subtopics
from sparring.graphs.run_config import StageSampling
from sparring.traces import spans


@dataclass(frozen=True)
class SubtopicList:
    """The subtopics kept for one topic."""

    topic_index: int
    topic: str
    subtopics: tuple[str, ...]
    report: ListReport


@dataclass(frozen=True)
class PersonaList:
    """The personas kept for one subtopic."""

    topic_index: int
    subtopic_index: int
    topic: str
    subtopic: str
    personas: tuple[Persona, ...]
    report: ListReport


class TopicTask(TypedDict):
    topic_index: int
    topic: str


class SubtopicTask(TypedDict):
    topic_index: int
    subtopic_index: int
    topic: str
    subtopic: str


class ExpansionState(TypedDict, total=False):
    topics: list[str]
    subtopic_lists: Annotated[list[SubtopicList], operator.add]
    """One per topic, appended by the parallel generate_subtopics tasks."""
    persona_lists: Annotated[list[PersonaList], operator.add]
    """One per subtopic, appended by the parallel generate_personas tasks."""
    scenarios: list[Scenario]
    report: ExpansionReport


def pair_scenarios(persona_lists: list[PersonaList]) -> list[Scenario]:
    """Every unordered persona pair of every subtopic, in topic, subtopic, persona order."""
    out = []
    for pl in sorted(persona_lists, key=lambda p: (p.topic_index, p.subtopic_index)):
        for a, b in combinations(pl.personas, 2):
            out.append(Scenario(topic=pl.topic, subtopic=pl.subtopic, personas=(a, b), source="diasynth"))
    return out


def sample_scenarios(scenarios: list[Scenario], limit: int | None, seed: int) -> list[Scenario]:
    """At most ``limit`` scenarios, a sample that depends only on the seed, kept in their original order."""
    if limit is None or len(scenarios) <= limit:
        return scenarios
    picked = random.Random(derive_seed(seed, "diasynth.max_scenarios")).sample(range(len(scenarios)), limit)
    return [scenarios[i] for i in sorted(picked)]


def build_report(config: DiaSynthConfig, subtopic_lists: list[SubtopicList], persona_lists: list[PersonaList],
                 scenarios: int) -> ExpansionReport:
    """Actual counts, and for each short list how many pairs it cost."""
    per_subtopic = pairs_per_subtopic(config.personas_per_subtopic)
    lists: list[ListReport] = []
    personas_by_topic: dict[int, list[PersonaList]] = {}
    for pl in sorted(persona_lists, key=lambda p: (p.topic_index, p.subtopic_index)):
        personas_by_topic.setdefault(pl.topic_index, []).append(pl)
    for sl in sorted(subtopic_lists, key=lambda s: s.topic_index):
        lists.append(sl.report.model_copy(update={"missing_pairs": sl.report.shortfall * per_subtopic}))
        for pl in personas_by_topic.get(sl.topic_index, []):
            lost = per_subtopic - pairs_per_subtopic(len(pl.personas))
            lists.append(pl.report.model_copy(update={"missing_pairs": lost}))
    pairs = sum(pairs_per_subtopic(len(pl.personas)) for pl in persona_lists)
    actual = Counts(topics=len(config.topics), subtopics=sum(len(s.subtopics) for s in subtopic_lists),
                    personas=sum(len(p.personas) for p in persona_lists), pairs=pairs, scenarios=scenarios,
                    dialogues=scenarios)
    return ExpansionReport(expected=expected_counts(config), actual=actual, threshold=config.dedup_threshold,
                           lists=lists, sampled=scenarios < pairs)


def build_scenario_graph(config: DiaSynthConfig, backend: ChatBackend, sampling: StageSampling | None = None,
                         seed: int = 0, *, embedder: Embedder | None = None,
                         personas_backend: ChatBackend | None = None) -> Any:
    """The compiled graph; invoke it with ``{"topics": config.topics}``. ``backend`` writes the
    subtopics, ``personas_backend`` (default: the same) the personas."""
    persona_writer = personas_backend or backend
    sampling = sampling or StageSampling()
    common: dict[str, Any] = {"threshold": config.dedup_threshold, "max_topups": config.max_topup_attempts,
                              "seed": seed, "embedder": embedder}

    def fan_out_topics(state: ExpansionState) -> list[Send] | str:
        topics = state.get("topics") or []
        if not topics:
            return "build_scenarios"
        return [Send("generate_subtopics", TopicTask(topic_index=i, topic=t)) for i, t in enumerate(topics)]

    async def generate_subtopics_node(task: TopicTask) -> dict[str, Any]:
        kept, report = await generate_subtopics(backend, task["topic"], config.subtopics_per_topic,
                                                sampling.subtopics, **common)
        return {"subtopic_lists": [SubtopicList(task["topic_index"], task["topic"], tuple(kept), report)]}

    def join_subtopics(state: ExpansionState) -> dict[str, Any]:
        return {}

    def fan_out_subtopics(state: ExpansionState) -> list[Send] | str:
        sends = [Send("generate_personas", SubtopicTask(topic_index=sl.topic_index, subtopic_index=j,
                                                        topic=sl.topic, subtopic=sub))
                 for sl in sorted(state.get("subtopic_lists", []), key=lambda s: s.topic_index)
                 for j, sub in enumerate(sl.subtopics)]
        return sends or "build_scenarios"

    async def generate_personas_node(task: SubtopicTask) -> dict[str, Any]:
        kept, report = await generate_personas(persona_writer, task["topic"], task["subtopic"],
                                               config.personas_per_subtopic, sampling.personas, **common)
        return {"persona_lists": [PersonaList(task["topic_index"], task["subtopic_index"], task["topic"],
                                              task["subtopic"], tuple(kept), report)]}

    def build_scenarios(state: ExpansionState) -> dict[str, Any]:
        persona_lists = state.get("persona_lists", [])
        scenarios = sample_scenarios(pair_scenarios(persona_lists), config.max_scenarios, seed)
        report = build_report(config, state.get("subtopic_lists", []), persona_lists, len(scenarios))
        return {"scenarios": scenarios, "report": report}

    builder = StateGraph(ExpansionState)
    builder.add_node("generate_subtopics", generate_subtopics_node)  # type: ignore[arg-type]  # a Send payload
    builder.add_node("join_subtopics", join_subtopics)
    builder.add_node("generate_personas", generate_personas_node)  # type: ignore[arg-type]  # a Send payload
    builder.add_node("build_scenarios", build_scenarios)
    builder.add_conditional_edges(START, fan_out_topics, ["generate_subtopics", "build_scenarios"])
    builder.add_edge("generate_subtopics", "join_subtopics")
    builder.add_conditional_edges("join_subtopics", fan_out_subtopics, ["generate_personas", "build_scenarios"])
    builder.add_edge("generate_personas", "build_scenarios")
    builder.add_edge("build_scenarios", END)
    return builder.compile(name="scenario_expansion")


async def expand_scenarios(config: DiaSynthConfig, backend: ChatBackend, sampling: StageSampling | None = None,
                           seed: int = 0, *, embedder: Embedder | None = None,
                           personas_backend: ChatBackend | None = None) -> tuple[list[Scenario], ExpansionReport]:
    """Topics -> subtopics -> personas -> Scenario records, and a report of any shortfall.

    Same config, seed and model replies -> same scenarios in the same order,
    with the same ids. A generation call that fails for good is recorded in
    the report and costs that list its items; it does not abort the expansion.
    """
    graph = build_scenario_graph(config, backend, sampling, seed, embedder=embedder,
                                 personas_backend=personas_backend)
    with spans.span("invoke_workflow", {"gen_ai.operation.name": "invoke_workflow",
                                        "gen_ai.agent.name": "scenario_expansion",
                                        "app.workflow": "scenario_expansion", "app.topics": len(config.topics)}) as s:
        # Three supersteps plus the barrier; the limit only guards against a wiring mistake.
        final = await graph.ainvoke({"topics": list(config.topics)}, {"recursion_limit": 25})
        report: ExpansionReport = final["report"]
        s.update({"app.scenarios": report.actual.scenarios, "app.dropped": report.dropped_count})
    return final["scenarios"], report
