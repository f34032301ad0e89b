"""Dialogue summaries (DiaSynth's downstream task): one model call per dialogue, and the export rows."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from agents.backends import ChatBackend, ChatMessage, SamplingParams

from .agent_call import call_agent
from .templates import render

AGENT_NAME = "summarizer"


def _get(message: Mapping[str, Any] | Any, field: str) -> Any:
    return message.get(field) if isinstance(message, Mapping) else getattr(message, field, None)


def transcript(messages: Sequence[Mapping[str, Any] | Any]) -> str:
    """``Name: text`` per turn, from record messages (dicts or models with speaker/name/content)."""
    lines = []
    for m in messages:
        who = _get(m, "name") or _get(m, "speaker") or _get(m, "role") or "?"
        lines.append(f"{who}: {' '.join(str(_get(m, 'content') or '').split())}")
    return "\n".join(lines)


async def summarize(backend: ChatBackend, messages: Sequence[Mapping[str, Any] | Any],
                    params: SamplingParams) -> str:
    """A few-sentence summary of one dialogue, as plain text."""
    prompt: list[ChatMessage] = [
        {"role": "system", "content": render("summary_system.txt")},
        {"role": "user", "content": render("summary_user.txt", dialogue=transcript(messages))},
    ]
    completion = await call_agent(backend, AGENT_NAME, prompt, params, None, {"app.turns": len(messages)})
    return " ".join(completion.text.split())


def summarization_rows(records: Iterable[Mapping[str, Any]]) -> Iterator[dict[str, str]]:
    """``{"dialogue", "summary"}`` rows for a summarization dataset; dialogues without a summary are skipped."""
    for record in records:
        summary = (record.get("summary") or "").strip()
        messages = record.get("messages") or []
        if summary and messages and record.get("status", "ok") == "ok":
            yield {"dialogue": transcript(messages), "summary": summary}
