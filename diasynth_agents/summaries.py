"""Dialogue summaries (DiaSynth's downstream task): one model call per dialogue, and the export rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from sparring.agents.agent_calls import call_agent, transcript
from sparring.agents.backends import Backend, ChatMessage, SamplingParams

from .templates import render

AGENT_NAME = "summarizer"


async def summarize(backend: Backend, messages: Sequence[Mapping[str, Any]],
                    params: SamplingParams) -> str:
    """A few-sentence summary of one dialogue, as plain text."""
    prompt: list[ChatMessage] = [
        {"role": "system", "content": render("summary_system.txt")},
        {"role": "user", "content": render("summary_user.txt", dialogue=transcript(messages))},
    ]
    completion = await call_agent(backend, AGENT_NAME, prompt, params, None, turns=len(messages))
    return " ".join(completion.text.split())


def summarization_rows(records: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, str]]:
    """``{"dialogue", "summary"}`` rows for a summarization dataset; dialogues without a summary are skipped."""
    for record in records:
        summary = (record.get("summary") or "").strip()
        messages = record.get("messages") or []
        if summary and messages and record.get("status", "ok") == "ok":
            yield {"dialogue": transcript(messages), "summary": summary}
