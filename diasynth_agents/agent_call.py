"""One model call made as a named agent: an ``invoke_agent`` span around ``backend.complete``."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from agents.backends import ChatBackend, ChatMessage, Completion, SamplingParams
from traces import spans


async def call_agent(backend: ChatBackend, agent: str, messages: list[ChatMessage], params: SamplingParams,
                     schema: type[BaseModel] | None = None, attributes: dict[str, Any] | None = None) -> Completion:
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent, **(attributes or {})}
    with spans.span("invoke_agent", attrs) as s:
        completion = await backend.complete(messages, params, schema=schema, agent=agent)
        s.update({"gen_ai.usage.input_tokens": completion.usage.prompt_tokens,
                  "gen_ai.usage.output_tokens": completion.usage.completion_tokens,
                  "app.retries": completion.retries})
        return completion


def topup_params(params: SamplingParams, call: int, seed: int) -> SamplingParams:
    """Sampling for call ``call`` of a list (0 = first): its own seed, and hotter for top-ups.

    At the paper's temperature of 0.1 a model asked again mostly repeats what
    it said, which is exactly what deduplication just removed; each top-up
    adds 0.3, up to 1.0 (never below the configured temperature).
    """
    temperature = params.temperature if call == 0 else max(params.temperature, min(1.0, params.temperature + 0.3 * call))
    return params.model_copy(update={"seed": seed, "temperature": temperature})

