"""Summaries: the summarizer call and the summarization export rows."""

from __future__ import annotations

from sparring.agents.backends import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.diasynth_agents.summaries import summarization_rows, summarize, transcript
from sparring.traces.spans import Tracer, use_tracer

MESSAGES = [
    {"role": "user", "speaker": "A", "name": "Dana", "content": "Did you  book the vet?"},
    {"role": "assistant", "speaker": "B", "name": "Marcus", "content": "Yes, Friday at nine."},
]


def test_transcript_names_speakers_and_keeps_what_they_said():
    assert transcript(MESSAGES) == "Dana: Did you  book the vet?\nMarcus: Yes, Friday at nine."


async def test_summarize_sends_the_transcript_and_returns_plain_text():
    backend = ScriptedBackend(lambda messages, params, schema: "  Dana asks Marcus about the vet.\n He booked Friday. ")
    spans = []
    with use_tracer(Tracer([spans.append])):
        summary = await summarize(backend, MESSAGES, SamplingParams(temperature=0.2, max_tokens=100))
    assert summary == "Dana asks Marcus about the vet. He booked Friday."
    prompt = backend.calls[0][-1]["content"]
    assert transcript(MESSAGES) in prompt
    agent = [s for s in spans if s.name == "invoke_agent"]
    assert agent and agent[0].attributes["gen_ai.agent.name"] == "summarizer"


def test_export_rows_skip_dialogues_without_summary_or_failed():
    records = [
        {"id": "1", "status": "ok", "messages": MESSAGES, "summary": "Vet booked for Friday."},
        {"id": "2", "status": "ok", "messages": MESSAGES, "summary": None},
        {"id": "3", "status": "failed", "messages": MESSAGES, "summary": "partial"},
        {"id": "4", "status": "ok", "messages": [], "summary": "nothing said"},
    ]
    assert list(summarization_rows(records)) == [{"dialogue": transcript(MESSAGES), "summary": "Vet booked for Friday."}]
