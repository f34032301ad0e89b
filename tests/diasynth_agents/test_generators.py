"""Subtopic and persona generators on a scripted backend (real embedding model for dedup):
top-up after deduplication, its bound, failed calls, prompts and sampling."""

from __future__ import annotations

import json
import re

import pytest

from sparring.agents.backends import BackendConfig, SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.diasynth_agents.personas import generate_personas
from sparring.diasynth_agents.subtopics import generate_subtopics
from sparring.diasynth_agents.text import clean_item
from sparring.traces.spans import Tracer, use_tracer

PARAMS = SamplingParams(temperature=0.1, max_tokens=2048)
OPTS = {"threshold": 0.85, "seed": 3}


def asked(messages) -> int:
    return int(re.search(r"(?:List|Invent) (\d+)", messages[-1]["content"]).group(1))


def replies(*batches: list[str] | str):
    """A responder that returns the given subtopic batches in turn (the last one repeats),
    cut to the size asked, as a constrained decoder would."""
    calls = []

    def respond(messages, params, schema):
        calls.append({"messages": messages, "params": params, "schema": schema})
        batch = batches[min(len(calls) - 1, len(batches) - 1)]
        return batch if isinstance(batch, str) else json.dumps({"subtopics": batch[:asked(messages)]})

    return respond, calls


async def test_top_up_replaces_what_dedup_dropped():
    respond, calls = replies(["Home office ergonomics", "Ergonomics of the home office", "Video call etiquette"],
                             ["Security risks of public wifi"])
    kept, report = await generate_subtopics(ScriptedBackend(respond), "Remote Work", 3, PARAMS, max_topups=2, **OPTS)
    assert kept == ["Home office ergonomics", "Video call etiquette", "Security risks of public wifi"]
    assert (report.calls, report.kept, report.shortfall) == (2, 3, 0)
    [drop] = report.dropped
    assert (drop.text, drop.duplicate_of, drop.call) == ("Ergonomics of the home office", "Home office ergonomics", 1)
    assert drop.similarity >= 0.85
    # The top-up asks only for what is missing and names what is taken.
    assert asked(calls[1]["messages"]) == 1
    top_up_prompt = calls[1]["messages"][-1]["content"]
    assert "already taken" in top_up_prompt
    assert "Home office ergonomics" in top_up_prompt and "Video call etiquette" in top_up_prompt
    assert "already taken" not in calls[0]["messages"][-1]["content"]
    # Schemas are sized to the request, so a constrained decoder stops at the count.
    assert [c["schema"]["properties"]["subtopics"]["maxItems"] for c in calls] == [3, 1]
    # Each call has its own seed; the top-up samples hotter than the paper's 0.1.
    assert calls[0]["params"].seed != calls[1]["params"].seed
    assert calls[0]["params"].temperature == 0.1 < calls[1]["params"].temperature <= 1.0


@pytest.mark.parametrize("max_topups", [0, 1, 3])
async def test_top_up_attempts_are_bounded_and_the_shortfall_explained(max_topups):
    respond, calls = replies(["Puppy training tips", "Tips for training a puppy", "Training tips for puppies"])
    kept, report = await generate_subtopics(ScriptedBackend(respond), "Pets", 3, PARAMS, max_topups=max_topups, **OPTS)
    assert len(calls) == report.calls == 1 + max_topups
    assert kept == ["Puppy training tips"]
    assert report.shortfall == 2
    assert len(report.dropped) == 2 + 2 * max_topups
    line = report.explain()
    assert "1 of 3 subtopics" in line and f"after {1 + max_topups} call(s)" in line and "dropped" in line


async def test_failed_call_uses_an_attempt_and_is_reported():
    respond, calls = replies("not json at all", ["Index funds for beginners", "Day trading strategies"])
    backend = ScriptedBackend(respond, config=BackendConfig(structured_output="json_schema", reasks=0))
    kept, report = await generate_subtopics(backend, "Stock Market", 2, PARAMS, max_topups=1, **OPTS)
    assert kept == ["Index funds for beginners", "Day trading strategies"]
    assert report.calls == 2 and len(report.errors) == 1 and "call 1" in report.errors[0]

    respond, calls = replies("not json at all")
    backend = ScriptedBackend(respond, config=BackendConfig(structured_output="json_schema", reasks=0))
    kept, report = await generate_subtopics(backend, "Stock Market", 2, PARAMS, max_topups=1, **OPTS)
    assert kept == [] and report.calls == 2 and len(report.errors) == 2
    assert "failed call" in report.explain()


async def test_personas_are_conditioned_on_topic_and_subtopic():
    seen = []
    first = [{"name": "1. Dana, a night-shift nurse", "description": "Works  nights in a busy emergency room."},
             {"name": "  ", "description": "Nobody in particular."},
             {"name": "Marcus, a hospital administrator", "description": "Schedules staff rotas."}]
    second = [{"name": "Lena, a medical student", "description": "Shadows doctors on her first rotation."}]

    def respond(messages, params, schema):
        seen.append(messages)
        return json.dumps({"personas": (first if len(seen) == 1 else second)[:asked(messages)]})

    spans = []
    with use_tracer(Tracer([spans.append])):
        kept, report = await generate_personas(ScriptedBackend(respond), "Healthcare", "Night shifts in the ER", 3,
                                               PARAMS, max_topups=1, **OPTS)
    prompt = seen[0][-1]["content"]
    assert "Topic: Healthcare" in prompt and "Subtopic: Night shifts in the ER" in prompt
    assert [p.name for p in kept] == ["Dana, a night-shift nurse", "Marcus, a hospital administrator",
                                      "Lena, a medical student"]
    assert kept[0].description == "Works nights in a busy emergency room."
    assert [d.reason for d in report.dropped] == ["no name"]
    assert len(seen) == report.calls == 2 and asked(seen[1]) == 1
    agents = [s for s in spans if s.name == "invoke_agent"]
    assert {s.attributes["gen_ai.agent.name"] for s in agents} == {"persona_generator"}
    chats = [s for s in spans if s.name == "chat"]
    assert chats and all(c.parent_id in {a.span_id for a in agents} for c in chats)


@pytest.mark.parametrize("raw, clean", [
    ("1. Home office setup,", "Home office setup"), ("- 'Video calls'", "Video calls"), ("3) Burnout", "Burnout"),
    ("  Pay  gaps ", "Pay gaps"), ("2024 trends", "2024 trends"), ("\u2022 Sleep", "Sleep"),
])
def test_clean_item(raw, clean):
    assert clean_item(raw) == clean


async def test_personas_need_distinct_first_names_and_subtopics_must_not_repeat_the_topic():
    def respond(messages, params, schema):
        prompt = messages[-1]["content"]
        if "Subtopic:" not in prompt:
            return json.dumps({"subtopics": ["pets", "Grooming long-haired cats"][:asked(messages)]})
        if "already taken" in prompt:
            return json.dumps({"personas": [{"name": "Bo, a dog walker", "description": "Walks ten dogs a day."}]})
        return json.dumps({"personas": [
            {"name": "Dana, a veterinarian", "description": "Runs a small-animal clinic in town."},
            {"name": "dana", "description": "A teenager saving up for her first hamster."}]})

    backend = ScriptedBackend(respond)
    subtopics, sub_report = await generate_subtopics(backend, "Pets", 2, PARAMS, max_topups=0, **OPTS)
    assert subtopics == ["Grooming long-haired cats"]
    assert [d.reason for d in sub_report.dropped] == ["repeats the topic"]
    personas, report = await generate_personas(backend, "Pets", subtopics[0], 2, PARAMS, max_topups=1, **OPTS)
    assert [p.name for p in personas] == ["Dana, a veterinarian", "Bo, a dog walker"]
    [drop] = report.dropped
    assert drop.reason == "same first name as 'Dana, a veterinarian'" and report.calls == 2
