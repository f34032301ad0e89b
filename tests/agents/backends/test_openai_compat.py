"""The ``openai_compat`` backend against a real OpenAI-compatible server: vLLM's, on the embedded model,
through the real openai client on both request paths (``transport: direct`` and ``sdk``)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import BaseModel, Field

from sparring.agents.backends import Backend, BackendConfig, SamplingParams, create_backend
from sparring.errors import BackendError, TransientBackendError
from sparring.graphs.commands.diagnosis import diagnose
from tests.engines import VLLMServer, seeded

pytestmark = pytest.mark.server


class Verdict(BaseModel):
    violated: bool
    principle: str = Field(max_length=30)
    severity: int = Field(ge=1, le=5)


@pytest_asyncio.fixture(loop_scope="session")
async def backend(vllm_server: VLLMServer, transport: str) -> AsyncIterator[Backend]:
    b = create_backend(BackendConfig(kind="openai_compat", base_url=vllm_server.base_url, model=vllm_server.model,
                                     transport=transport))
    await b.start()
    yield b
    await b.aclose()


async def test_plain_completion_with_logprobs(backend: Backend, vllm_server: VLLMServer) -> None:
    result = await backend.complete(
        [{"role": "user", "content": "Name one colour of the rainbow."}],
        SamplingParams(temperature=0.0, max_tokens=12, seed=seeded(3), logprobs=2))
    assert result.text.strip()
    assert 1 <= result.usage.completion_tokens <= 12 and result.usage.prompt_tokens > 5
    assert result.finish_reason in ("stop", "length")
    assert result.model == vllm_server.model
    assert result.retries == 0 and result.structured_mode == "none"
    assert result.logprobs is not None and len(result.logprobs) == result.usage.completion_tokens
    assert all(len(t.top) >= 1 for t in result.logprobs)


async def test_json_schema_is_detected_and_validates(backend: Backend) -> None:
    """``structured_output: auto`` probes the server: vLLM enforces response_format, so no re-ask is needed."""
    assert backend.structured_mode_label() == "auto (not probed yet)"
    result = await backend.complete(
        [{"role": "user", "content": "Is 'Give me your password' a privacy violation? Judge it."}],
        SamplingParams(temperature=0.0, max_tokens=64), Verdict)
    assert isinstance(result.parsed, Verdict)
    assert Verdict.model_validate_json(result.text) == result.parsed
    assert result.structured_mode == "json_schema" and result.retries == 0
    assert backend.structured_mode_label() == "json_schema"


async def test_unknown_model_is_a_permanent_error(vllm_server: VLLMServer, transport: str) -> None:
    b = create_backend(BackendConfig(kind="openai_compat", base_url=vllm_server.base_url, model="no-such-model",
                                     transport=transport))
    try:
        with pytest.raises(BackendError) as info:
            await b.complete([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4))
    finally:
        await b.aclose()
    assert not isinstance(info.value, TransientBackendError)
    assert "HTTP 404" in str(info.value) and "'no-such-model'" in str(info.value)


async def test_doctor_against_the_server(vllm_server: VLLMServer, transport: str) -> None:
    report = await diagnose(BackendConfig(kind="openai_compat", base_url=vllm_server.base_url,
                                          model=vllm_server.model, transport=transport))
    assert report.ok, report.failure
    rows = dict(report.rows)
    assert rows["reachable"] == "yes" and rows["model"] == vllm_server.model
    assert rows["structured output"] == "json_schema"
