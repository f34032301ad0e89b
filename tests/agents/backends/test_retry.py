"""Transient faults over real HTTP: the openai_compat backend against the fault-injection server."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pydantic import BaseModel

from sparring.agents.backends import Backend, RetryConfig, SamplingParams, _retry, create_backend
from sparring.errors import BackendError, InputError, TransientBackendError
from tests.fakeserver import FakeOpenAIServer

# Tiny waits: the suite measures behaviour, not patience. The timeout stays generous
# (a loaded CI box can take a second to answer the first request) except where a
# timeout is the fault under test.
FAST = RetryConfig(attempts=4, initial_wait_s=0.001, max_wait_s=0.05, timeout_s=30.0)
IMPATIENT = FAST.model_copy(update={"timeout_s": 1.0})
HI = [{"role": "user", "content": "hi"}]
PARAMS = SamplingParams(max_tokens=8)

# (fault kind, its options, what the final error must say)
TRANSIENT = [
    pytest.param("http_500", {}, "HTTP 500: injected server error", id="500"),
    pytest.param("status", {"status": 503, "message": "overloaded"}, "HTTP 503: overloaded", id="503"),
    pytest.param("http_429", {"retry_after": 0}, "429 rate limited", id="429"),
    pytest.param("slow", {"delay_s": 4}, "timed out after 1s", id="slow"),
    pytest.param("garbage", {}, "the body is not JSON", id="garbage-json"),
    pytest.param("garbage", {"content_type": "text/html"}, "the body is not JSON", id="garbage-html"),
    pytest.param("no_choices", {}, "no choices[0].message", id="no-choices"),
    # httpx says "Server disconnected without sending a response", aiohttp "Server disconnected"
    pytest.param("drop", {}, "Server disconnected", id="drop"),
]


@contextlib.asynccontextmanager
async def backend_for(server: FakeOpenAIServer, kind: str = "", **config: Any) -> AsyncIterator[Backend]:
    """An openai_compat backend on ``server``; ``kind`` is the fault under test (``slow`` wants a short timeout)."""
    backend = create_backend(server.backend_config(**{"retry": IMPATIENT if kind == "slow" else FAST, **config}))
    await backend.start()
    try:
        yield backend
    finally:
        await backend.aclose()


@pytest.fixture
def recorded_waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Every backoff the retry layer decides on, in order (the waits still happen)."""
    waits: list[float] = []
    original = _retry._wait

    def recording(policy: RetryConfig) -> Any:
        decide = original(policy)

        def wait(state: Any) -> float:
            waits.append(decide(state))
            return waits[-1]

        return wait

    monkeypatch.setattr(_retry, "_wait", recording)
    return waits


@pytest.mark.parametrize(("kind", "options", "reason"), TRANSIENT)
async def test_fault_then_success(fake_server: FakeOpenAIServer, kind: str, options: dict[str, Any],
                                  reason: str) -> None:
    fake_server.fail(kind, times=2, **options)
    async with backend_for(fake_server, kind) as backend:
        result = await backend.complete(HI, PARAMS)
    assert result.text == "ok"
    assert result.retries == 2
    assert fake_server.stats.chat_requests == 3
    assert fake_server.stats.faults[kind] == 2


@pytest.mark.parametrize(("kind", "options", "reason"), TRANSIENT)
async def test_gives_up_past_the_bound(fake_server: FakeOpenAIServer, kind: str, options: dict[str, Any],
                                       reason: str) -> None:
    fake_server.fail(kind, times=FAST.attempts + 1, **options)
    async with backend_for(fake_server, kind) as backend:
        with pytest.raises(TransientBackendError) as info:
            await backend.complete(HI, PARAMS)
    message = str(info.value)
    assert reason in message
    assert message.endswith(f"(gave up after {FAST.attempts} attempts)")
    assert info.value.attempts == FAST.attempts
    assert fake_server.stats.chat_requests == FAST.attempts


async def test_a_single_attempt_is_counted_as_one(fake_server: FakeOpenAIServer) -> None:
    fake_server.fail("http_500")
    async with backend_for(fake_server, retry=RetryConfig(attempts=1)) as backend:
        with pytest.raises(TransientBackendError, match=r"\(gave up after 1 attempt\)$"):
            await backend.complete(HI, PARAMS)


LONGER_WAITS = FAST.model_copy(update={"max_wait_s": 0.3})


@pytest.mark.parametrize(("options", "expected"), [
    pytest.param({"retry_after": 0.2}, 0.2, id="seconds"),
    pytest.param({"retry_after_ms": 150}, 0.15, id="milliseconds"),
    pytest.param({"retry_after": 100}, LONGER_WAITS.max_wait_s, id="capped-at-max_wait_s"),
])
async def test_retry_after_is_honoured(fake_server: FakeOpenAIServer, recorded_waits: list[float],
                                       options: dict[str, Any], expected: float) -> None:
    fake_server.fail("http_429", times=2, **options)
    async with backend_for(fake_server, retry=LONGER_WAITS) as backend:
        result = await backend.complete(HI, PARAMS)
    assert result.retries == 2
    assert recorded_waits == pytest.approx([expected, expected])


async def test_backoff_without_retry_after_is_jittered_exponential(fake_server: FakeOpenAIServer,
                                                                   recorded_waits: list[float]) -> None:
    policy = RetryConfig(attempts=5, initial_wait_s=0.01, max_wait_s=0.03, timeout_s=30.0)
    fake_server.fail("http_500", times=4)
    async with backend_for(fake_server, retry=policy) as backend:
        await backend.complete(HI, PARAMS)
    assert len(recorded_waits) == 4
    for i, wait in enumerate(recorded_waits):
        assert 0.0 <= wait <= min(policy.max_wait_s, policy.initial_wait_s * 2 ** i)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_permanent_errors_are_not_retried(fake_server: FakeOpenAIServer, status: int) -> None:
    fake_server.fail("status", status=status, message="you asked for something impossible")
    async with backend_for(fake_server) as backend:
        with pytest.raises(BackendError) as info:
            await backend.complete(HI, PARAMS)
    assert not isinstance(info.value, TransientBackendError)
    assert f"HTTP {status}: you asked for something impossible" in str(info.value)
    assert fake_server.stats.chat_requests == 1


async def test_wrong_model_name_is_not_retried_and_says_so(fake_server: FakeOpenAIServer) -> None:
    async with backend_for(fake_server, model="gpt-nonexistent") as backend:
        with pytest.raises(BackendError, match=r"HTTP 404: .*is 'gpt-nonexistent' the model name the server serves"):
            await backend.complete(HI, PARAMS)
    assert fake_server.stats.chat_requests == 1


class Answer(BaseModel):
    answer: str
    confidence: int


async def test_structured_call_counts_transient_retries(fake_server: FakeOpenAIServer) -> None:
    fake_server.fail("drop")
    async with backend_for(fake_server) as backend:
        result = await backend.complete(HI, PARAMS, Answer)
    assert isinstance(result.parsed, Answer)
    assert result.structured_mode == "json_schema" and result.retries == 1


async def test_a_share_of_faults_under_concurrency(fake_server: FakeOpenAIServer) -> None:
    """Many calls at once, 30% of requests failing: every call succeeds and retries add up exactly."""
    fake_server.fail_share("http_500", 0.3, seed=7)
    fake_server.reply_delay_s = 0.05
    policy = RetryConfig(attempts=8, initial_wait_s=0.001, max_wait_s=0.01, timeout_s=5.0)
    async with backend_for(fake_server, retry=policy, max_in_flight=4) as backend:
        results = await asyncio.gather(*(backend.complete(HI, PARAMS) for _ in range(24)))
    stats = fake_server.stats
    assert all(r.text == "ok" for r in results)
    assert sum(r.retries for r in results) == stats.faults["http_500"] > 0
    assert stats.chat_requests == 24 + stats.faults["http_500"]
    # max_in_flight bounds what reaches the server; with replies this slow the bound is reached.
    assert stats.max_concurrent == 4
    assert backend.max_in_flight_seen == 4


SECRETS = [pytest.param("sk-proj-Zq8Zq8Zq8Zq8Zq8Zq8", id="sk-style"),
           pytest.param("correct horse battery staple 42", id="passphrase")]


@pytest.mark.parametrize("secret", SECRETS)
async def test_the_api_key_never_appears_in_errors(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch,
                                                   secret: str) -> None:
    monkeypatch.setenv("SPARRING_TEST_API_KEY", secret)
    plan: list[tuple[str, dict[str, Any]]] = [
        (kind, options) for kind, options, _ in (p.values for p in TRANSIENT)]  # type: ignore[misc]
    plan += [("status", {"status": 401, "message": "Incorrect API key provided: {api_key}"}),
             ("status", {"status": 500, "message": "upstream rejected key {api_key}"})]
    for kind, options in plan:
        fake_server.reset()
        policy = (IMPATIENT if kind == "slow" else FAST).model_copy(update={"attempts": 2})
        fake_server.fail(kind, times=policy.attempts, **options)
        async with backend_for(fake_server, retry=policy, api_key_env="SPARRING_TEST_API_KEY") as backend:
            with pytest.raises(BackendError) as info:
                await backend.complete(HI, PARAMS)
            assert secret not in str(backend.describe())
        for text in (str(info.value), repr(info.value), str(info.value.args)):
            assert secret not in text, (kind, text)
        # It was sent, though: the server saw it as the bearer token.
        assert fake_server.requests[0].headers["authorization"] == f"Bearer {secret}"


def test_missing_api_key_variable_is_named(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SPARRING_TEST_API_KEY", raising=False)
    with pytest.raises(InputError, match="environment variable SPARRING_TEST_API_KEY is not set"):
        create_backend(fake_server.backend_config(api_key_env="SPARRING_TEST_API_KEY"))
