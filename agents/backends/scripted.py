"""A backend whose replies come from Python: for unit tests of graph logic and for replay.

It goes through the same ``complete`` path as the real adapters (slots,
spans, schema parsing and re-asks); only the model is replaced. It never
stands in for a real engine where an integration test asks for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from .backend_config import BackendConfig
from .base import Backend
from .messages import ChatMessage, RawCompletion, SamplingParams, TokenUsage

Responder = Callable[[list[ChatMessage], SamplingParams, "dict[str, Any] | None"], "str | Awaitable[str]"]


class ScriptedBackend(Backend):
    """Replies with ``responder(messages, params, json_schema)``; token counts are word counts."""

    provider = "scripted"

    def __init__(self, responder: Responder, *, model: str = "scripted", delay_s: float = 0.0,
                 config: BackendConfig | None = None, cut_at_max_tokens: bool = False) -> None:
        super().__init__(config or BackendConfig(kind="embedded", structured_output="json_schema"), model)
        self.responder = responder
        self.delay_s = delay_s
        self.cut_at_max_tokens = cut_at_max_tokens
        """Cut a reply longer than ``max_tokens`` characters there (a character standing for a token, the
        worst case) with ``finish_reason: length``, as a server cuts at the token limit."""
        self.calls: list[list[ChatMessage]] = []

    async def _generate(self, messages: list[ChatMessage], params: SamplingParams,
                        json_schema: dict[str, Any] | None) -> RawCompletion:
        self.calls.append(messages)
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        reply = self.responder(messages, params, json_schema)
        if asyncio.iscoroutine(reply) or isinstance(reply, Awaitable):
            reply = await reply
        text, finish = str(reply), "stop"
        if self.cut_at_max_tokens and len(text) > params.max_tokens:
            text, finish = text[:params.max_tokens], "length"
        prompt_words = sum(len(m["content"].split()) for m in messages)
        return RawCompletion(text=text, usage=TokenUsage(prompt_words, len(text.split())), finish_reason=finish,
                             model=self.model)
