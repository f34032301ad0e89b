"""The ``vllm`` backend on the embedded model, in-process: the real engine, started once per session."""

from __future__ import annotations

import asyncio
from typing import Literal

import pytest
from pydantic import BaseModel, Field

from sparring.agents.backends import Backend, SamplingParams
from sparring.agents.backends.embedded import MODEL_NAME
from tests.engines import seeded

pytestmark = pytest.mark.engine


class CityFact(BaseModel):
    """Bounded strings keep a 135M model from rambling inside the object."""

    city: str = Field(max_length=40)
    country: str = Field(max_length=40)
    population_millions: int = Field(ge=0, le=100)
    capital: bool
    size: Literal["small", "medium", "large"]


async def test_plain_completion(embedded_backend: Backend) -> None:
    result = await embedded_backend.complete(
        [{"role": "system", "content": "You are a helpful assistant."},
         {"role": "user", "content": "Name one colour of the rainbow."}],
        SamplingParams(temperature=0.0, max_tokens=16, seed=seeded(1)))
    assert result.text.strip()
    assert 1 <= result.usage.completion_tokens <= 16
    assert result.usage.prompt_tokens > 10  # the chat template was applied
    assert result.finish_reason in ("stop", "length")
    assert result.model == MODEL_NAME
    assert result.parsed is None and result.structured_mode == "none" and result.retries == 0
    info = embedded_backend.describe()
    assert info["device"] == "cpu" and info["provider"] == "vllm"


async def test_schema_constrained_completions_validate(embedded_backend: Backend) -> None:
    """Constrained decoding holds for several concurrent requests (one engine batch), first try each."""
    prompts = ["Paris", "Tokyo", "Lagos", "Lima"]
    results = await asyncio.gather(*(
        embedded_backend.complete(
            [{"role": "user", "content": f"Give facts about {name} as JSON."}],
            SamplingParams(temperature=0.0, max_tokens=96, seed=seeded(i)), CityFact)
        for i, name in enumerate(prompts)))
    for result in results:
        assert isinstance(result.parsed, CityFact)
        assert CityFact.model_validate_json(result.text) == result.parsed  # the raw text itself is the object
        assert result.structured_mode == "json_schema"
        assert result.retries == 0
    assert embedded_backend.structured_mode_label() == "json_schema"


async def test_logprobs_are_returned(embedded_backend: Backend) -> None:
    """The judge stage scores with top log-probabilities: one entry per generated token."""
    result = await embedded_backend.complete(
        [{"role": "user", "content": "Rate this from 1 to 5: 'The sky is blue.' Answer with a digit."}],
        SamplingParams(temperature=0.0, max_tokens=3, logprobs=3))
    assert result.logprobs is not None
    assert len(result.logprobs) == result.usage.completion_tokens
    first = result.logprobs[0]
    assert first.logprob <= 0.0
    assert 1 <= len(first.top) <= 4  # the top 3, plus the sampled token when it is not among them
    assert max(first.top.values()) >= first.logprob  # greedy: nothing likelier than what was taken
