"""The fault-injection server itself: later tests and benchmarks lean on it, so it is checked too."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from enum import Enum
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from sparring.agents.backends.openai_compat import strict_schema
from tests.fakeserver import FakeOpenAIServer, minimal_instance


class Colour(str, Enum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    name: str = Field(min_length=3, max_length=5)
    weight: float = Field(gt=0.5)


class Outer(BaseModel):
    kind: Literal["x", "y"]
    colour: Colour
    count: int = Field(ge=2, le=9)
    maybe: int | None = None
    inner: Inner
    inners: list[Inner] = Field(min_length=2)
    tags: list[str] = []
    flag: bool
    extra: dict[str, int] = {}


@pytest.mark.parametrize("strict", [False, True], ids=["pydantic-schema", "strict-schema"])
def test_minimal_instance_validates(strict: bool) -> None:
    schema = Outer.model_json_schema()
    instance = minimal_instance(strict_schema(schema) if strict else schema)
    parsed = Outer.model_validate(instance)
    assert parsed.count == 2 and len(parsed.inners) == 2 and parsed.inner.name == "xxx"


def _post(server: FakeOpenAIServer, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{server.base_url}/chat/completions", data=json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def test_fault_queue_then_share_then_reset() -> None:
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "a b c"}]}
    with FakeOpenAIServer() as server:
        server.fail("status", times=2, status=418, message="teapot")
        assert [_post(server, body)[0] for _ in range(3)] == [418, 418, 200]
        server.fail_share("http_500", 0.5, seed=3)
        statuses = [_post(server, body)[0] for _ in range(40)]
        assert 5 < statuses.count(500) < 35 and set(statuses) == {200, 500}
        server.fail_share("http_500", 0.5, seed=3)
        assert [_post(server, body)[0] for _ in range(40)] == statuses  # seeded: the same calls fail
        server.reset()
        status, reply = _post(server, body)
        assert status == 200 and reply["choices"][0]["message"]["content"] == "ok"
        assert reply["usage"] == {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
        stats = server.stats
        assert stats.chat_requests == 1 and stats.faults == {} and len(server.requests) == 1
        with urllib.request.urlopen(f"{server.base_url}/models", timeout=5) as resp:
            assert [m["id"] for m in json.load(resp)["data"]] == ["fake-model"]
        assert server.stats.model_requests == 1


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind 'http_999'"):
        FakeOpenAIServer().fail("http_999")
