"""The scenario graph: counts, shortfall reports, seeded sampling and determinism on a scripted
backend (with the real embedding model), then one small expansion on the real embedded engine."""

from __future__ import annotations

import asyncio
import json
import random
import re
from math import comb

import pytest
import pytest_asyncio

from sparring.agents.backends import BackendConfig, create_backend
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.diasynth_agents.counts import expected_counts
from sparring.diasynth_agents.diasynth_config import DiaSynthConfig
from sparring.graphs.run_config import StageSampling
from sparring.graphs.scenario_graph import expand_scenarios
from sparring.traces.spans import Tracer, use_tracer

SUBTOPICS = ["Budgeting for a family holiday", "Learning to play chess", "Repairing a leaking roof",
             "Choosing a first smartphone", "Volunteering at an animal shelter", "Planting tomatoes on a balcony",
             "Writing a wedding speech", "Negotiating a salary raise"]
PERSONAS = [("Ada, a beekeeper", "Keeps forty hives in the hills and sells honey at markets."),
            ("Bram, an airline pilot", "Flies long-haul routes and spends weeks away from home."),
            ("Chloe, a pastry chef", "Runs the dessert kitchen of a busy hotel restaurant."),
            ("Dev, a tax accountant", "Prepares returns for small businesses every spring."),
            ("Eve, a marine biologist", "Studies coral reefs and dives several times a week."),
            ("Femi, a drama teacher", "Directs the school play and coaches shy teenagers."),
            ("Gus, a truck driver", "Hauls freight across the country on night routes."),
            ("Hana, a retired firefighter", "Spent thirty years in the city fire service.")]
# Restatements of PERSONAS[0] and SUBTOPICS[0], planted to be deduplicated.
PERSONA_COPY = ("Abe, a beekeeper", "Keeps forty beehives in the hills and sells his honey at markets.")
SUBTOPIC_COPY = "Planning the budget for a family holiday"


def field(prompt: str, name: str) -> str:
    return re.search(rf"^{name}: (.*)$", prompt, re.M).group(1)


def responder(*, rotate_by_seed: bool = False, planted: dict[str, str] | None = None, jitter: bool = False):
    """A scripted model: distinct items from the pools above, cut to the size asked.

    ``planted`` maps a topic (for subtopics) or a subtopic (for personas) to a
    list that carries a near-duplicate; ``rotate_by_seed`` makes replies depend
    on the request seed; ``jitter`` makes calls finish in random order.
    """
    planted = planted or {}

    async def respond(messages, params, schema):
        if jitter:
            await asyncio.sleep(random.uniform(0, 0.02))
        prompt = messages[-1]["content"]
        count = int(re.search(r"(?:List|Invent) (\d+)", prompt).group(1))
        start = params.seed % 5 if rotate_by_seed else 0
        if "Subtopic:" in prompt:
            pool = PERSONAS[start:] + PERSONAS[:start]
            if planted.get(field(prompt, "Subtopic")) == "persona copy":
                pool = [pool[0], PERSONA_COPY, *pool[1:]] if pool[0] == PERSONAS[0] else [PERSONAS[0], PERSONA_COPY]
            return json.dumps({"personas": [{"name": n, "description": d} for n, d in pool[:count]]})
        pool = SUBTOPICS[start:] + SUBTOPICS[:start]
        if planted.get(field(prompt, "Topic")) == "subtopic copy":
            pool = [SUBTOPICS[0], SUBTOPIC_COPY, *SUBTOPICS[1:]]
        return json.dumps({"subtopics": pool[:count]})

    return respond


def config(n: int, m: int, p: int, **kw) -> DiaSynthConfig:
    return DiaSynthConfig(topics=["Remote Work", "Pets", "Food", "Sports"][:n], subtopics_per_topic=m,
                          personas_per_subtopic=p, **kw)


@pytest.mark.parametrize("n, m, p", [(1, 1, 2), (2, 3, 4), (3, 2, 3)])
async def test_count_is_n_m_choose_p_2_when_nothing_is_deduplicated(n, m, p):
    backend = ScriptedBackend(responder())
    scenarios, report = await expand_scenarios(config(n, m, p), backend, seed=1)
    assert len(scenarios) == n * m * comb(p, 2) == report.actual.pairs == report.expected.pairs
    assert report.actual == report.expected and not report.shortfalls and report.dropped_count == 0
    assert len(backend.calls) == n + n * m  # one call per list, no top-ups
    assert len({s.id for s in scenarios}) == len(scenarios)
    for s in scenarios:
        assert s.source == "diasynth" and s.subtopic and s.personas[0] != s.personas[1]
    # Every subtopic contributes every unordered pair of its personas exactly once.
    by_subtopic: dict[tuple[str, str], set[frozenset[str]]] = {}
    for s in scenarios:
        by_subtopic.setdefault((s.topic, s.subtopic), set()).add(frozenset(x.name for x in s.personas))
    assert len(by_subtopic) == n * m
    assert all(len(pairs) == comb(p, 2) for pairs in by_subtopic.values())


async def test_report_explains_the_shortfall_of_deduplicated_lists():
    planted = {"Pets": "subtopic copy", SUBTOPICS[1]: "persona copy"}
    cfg = config(2, 3, 4, max_topup_attempts=0)
    scenarios, report = await expand_scenarios(cfg, ScriptedBackend(responder(planted=planted)), seed=1)
    expected = expected_counts(cfg)
    assert report.expected == expected
    # Pets lost one subtopic (C(4,2) = 6 pairs); SUBTOPICS[1] lost one persona in both topics (6 - 3 = 3 each).
    assert len(scenarios) == report.actual.pairs == expected.pairs - 6 - 3 - 3
    assert sum(r.missing_pairs for r in report.lists) == expected.pairs - report.actual.pairs
    short = {(r.kind, r.topic, r.subtopic): r for r in report.shortfalls}
    assert set(short) == {("subtopics", "Pets", None), ("personas", "Remote Work", SUBTOPICS[1]),
                          ("personas", "Pets", SUBTOPICS[1])}
    assert short[("subtopics", "Pets", None)].dropped[0].duplicate_of == SUBTOPICS[0]
    text = "\n".join(report.explain())
    assert f"{expected.pairs - report.actual.pairs} of {expected.pairs} persona pairs missing" in text
    assert "topic 'Pets': 2 of 3 subtopics" in text and "3 of 4 personas" in text


async def test_top_up_fills_the_gap_left_by_dedup():
    planted = {"Pets": "subtopic copy", SUBTOPICS[1]: "persona copy"}
    cfg = config(2, 3, 4, max_topup_attempts=1)
    # The scripted model moves on to fresh items once told what is taken (rotate by the top-up's seed).
    backend = ScriptedBackend(responder(planted=planted))

    async def topped_up(messages, params, schema):
        if "already taken" in messages[-1]["content"]:
            prompt = messages[-1]["content"]
            count = int(re.search(r"(?:List|Invent) (\d+)", prompt).group(1))
            if "Subtopic:" in prompt:
                return json.dumps({"personas": [{"name": n, "description": d} for n, d in PERSONAS[-count:]]})
            return json.dumps({"subtopics": SUBTOPICS[-count:]})
        return await backend.responder(messages, params, schema)

    scenarios, report = await expand_scenarios(cfg, ScriptedBackend(topped_up), seed=1)
    assert len(scenarios) == report.expected.pairs and not report.shortfalls
    assert report.dropped_count >= 2


async def test_same_seed_same_scenarios_whatever_order_calls_finish():
    cfg = config(3, 2, 3)
    runs = [await expand_scenarios(cfg, ScriptedBackend(responder(rotate_by_seed=True, jitter=True)), seed=5)
            for _ in range(2)]
    (first, report1), (second, report2) = runs
    assert [s.model_dump() for s in first] == [s.model_dump() for s in second]
    assert report1 == report2
    # Topic, then subtopic, then pair order: the config's order, not completion order.
    assert [s.topic for s in first] == sorted((s.topic for s in first), key=cfg.topics.index)
    other, _ = await expand_scenarios(cfg, ScriptedBackend(responder(rotate_by_seed=True)), seed=6)
    assert [s.id for s in other] != [s.id for s in first]


async def test_max_scenarios_takes_a_seeded_sample_in_order():
    full, _ = await expand_scenarios(config(2, 3, 4), ScriptedBackend(responder()), seed=1)
    capped = config(2, 3, 4, max_scenarios=10)
    sample1, report = await expand_scenarios(capped, ScriptedBackend(responder()), seed=1)
    again, _ = await expand_scenarios(capped, ScriptedBackend(responder()), seed=1)
    other, _ = await expand_scenarios(capped, ScriptedBackend(responder()), seed=2)
    order = [s.id for s in full]
    assert len(sample1) == 10 and report.sampled and report.actual.pairs == len(full)
    assert [s.id for s in sample1] == [s.id for s in again]
    assert [s.id for s in sample1] != [s.id for s in other]
    positions = [order.index(s.id) for s in sample1]
    assert positions == sorted(positions)
    assert "seeded sample of 10 of 36" in "\n".join(report.explain())


async def test_no_topics_yields_nothing_without_calls():
    # The config refuses an empty list; the graph still ends cleanly when given one.
    backend = ScriptedBackend(responder())
    scenarios, report = await expand_scenarios(DiaSynthConfig.model_construct(
        **{**config(1, 1, 2).model_dump(), "topics": []}), backend)
    assert scenarios == [] and report.actual.pairs == 0 and backend.calls == []


async def test_every_model_call_sits_in_an_agent_span():
    spans = []
    with use_tracer(Tracer([spans.append])):
        await expand_scenarios(config(1, 2, 2), ScriptedBackend(responder()), seed=1)
    [root] = [s for s in spans if s.name == "invoke_workflow"]
    agents = {s.span_id: s for s in spans if s.name == "invoke_agent"}
    names = sorted(s.attributes["gen_ai.agent.name"] for s in agents.values())
    assert names == ["persona_generator", "persona_generator", "subtopic_generator"]
    assert all(s.parent_id == root.span_id and s.trace_id == root.trace_id for s in agents.values())
    chats = [s for s in spans if s.name == "chat"]
    assert len(chats) == 3 and all(c.parent_id in agents for c in chats)


# -- the real embedded engine --------------------------------------------------------

@pytest_asyncio.fixture(scope="module")
async def engine():
    backend = create_backend(BackendConfig())
    await backend.start()
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.mark.engine
async def test_scenario_graph_on_the_embedded_engine(engine):
    cfg = DiaSynthConfig(topics=["Pets"], subtopics_per_topic=2, personas_per_subtopic=3, max_topup_attempts=1)
    scenarios, report = await expand_scenarios(cfg, engine, StageSampling(), seed=11)
    # SmolLM2-135M's content is poor; structure and counts are what can be checked.
    persona_lists = [r for r in report.lists if r.kind == "personas"]
    [subtopic_list] = [r for r in report.lists if r.kind == "subtopics"]
    assert 1 <= subtopic_list.calls <= 2 and all(1 <= r.calls <= 2 for r in persona_lists)
    assert len(persona_lists) == report.actual.subtopics <= 2
    assert report.actual.personas == sum(r.kept for r in persona_lists)
    assert len(scenarios) == report.actual.pairs == sum(comb(r.kept, 2) for r in persona_lists)
    assert report.expected.pairs == 6
    assert sum(r.missing_pairs for r in report.lists) == report.expected.pairs - report.actual.pairs
    if report.actual.pairs < report.expected.pairs:
        assert len(report.explain()) > 3
    subtopics = {r.subtopic for r in persona_lists}
    for s in scenarios:
        assert s.source == "diasynth" and s.topic == "Pets" and s.subtopic in subtopics
        assert all(p.name.strip() for p in s.personas) and s.personas[0] != s.personas[1]
    assert len({s.id for s in scenarios}) == len(scenarios)
