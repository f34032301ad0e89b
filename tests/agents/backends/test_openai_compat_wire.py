"""What the openai_compat backend puts on the wire, and how it reacts to a server that refuses schemas.

Against the fault-injection server, which records each request as received.
"""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from sparring.agents.backends import SamplingParams, create_backend
from tests.fakeserver import FakeOpenAIServer


class Turn(BaseModel):
    speaker: Literal["A", "B"]
    text: str = Field(default="", max_length=200)


class Verdicts(BaseModel):
    turns: list[Turn]
    done: bool = False


ASK = [{"role": "user", "content": "Judge the dialogue."}]


async def test_request_shape(fake_server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPARRING_TEST_API_KEY", "k-123")
    backend = create_backend(fake_server.backend_config(api_key_env="SPARRING_TEST_API_KEY",
                                                        extra_body={"top_k": 20}))
    params = SamplingParams(temperature=0.3, top_p=0.9, max_tokens=50, stop=("END",), seed=11)
    try:
        result = await backend.complete(ASK, params, Verdicts)
    finally:
        await backend.aclose()
    assert result.parsed == Verdicts(turns=[], done=False)
    request = fake_server.requests[0]
    body = request.body
    assert request.headers["authorization"] == "Bearer k-123"
    # Either path sends what the openai client would: its user agent and content type.
    assert request.headers["user-agent"].startswith("AsyncOpenAI/Python")
    assert request.headers["content-type"] == "application/json"
    assert (body["model"], body["temperature"], body["top_p"], body["max_tokens"], body["stop"], body["seed"]) == \
        (fake_server.model, 0.3, 0.9, 50, ["END"], 11)
    assert body["top_k"] == 20  # extra_body fields travel at the top level of the JSON body
    assert body["messages"][0]["role"] == "system" and "JSON object" in body["messages"][0]["content"]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == "Verdicts"
    schema = fmt["json_schema"]["schema"]
    # OpenAI's strict mode: every object closed, every property required, no defaults.
    assert schema["additionalProperties"] is False and schema["required"] == ["turns", "done"]
    turn = schema["$defs"]["Turn"]
    assert turn["additionalProperties"] is False and turn["required"] == ["speaker", "text"]
    assert "default" not in turn["properties"]["text"]


async def test_a_server_that_refuses_schemas_gets_parse_and_reask(transport: str) -> None:
    """A 400 naming response_format switches the backend to re-ask mode for good, after one try
    with length bounds removed (strict servers refuse those keywords but may take the rest)."""
    reply = '{"turns": [{"speaker": "A", "text": "hi"}], "done": true}'
    with FakeOpenAIServer(schema_support="reject", responder=lambda body: reply) as server:
        backend = create_backend(server.backend_config(transport=transport))
        try:
            first = await backend.complete(ASK, SamplingParams(), Verdicts)
            second = await backend.complete(ASK, SamplingParams(), Verdicts)
        finally:
            await backend.aclose()
        sent_format = ["response_format" in r.body for r in server.requests]
    assert first.parsed == second.parsed == Verdicts(turns=[Turn(speaker="A", text="hi")], done=True)
    assert first.structured_mode == second.structured_mode == "reask"
    assert backend.structured_mode_label() == "reask"
    assert sent_format == [True, True, False, False]
    schemas = [r.body["response_format"]["json_schema"]["schema"] for r in server.requests[:2]]
    assert "maxItems" in str(schemas[0]) or "maxLength" in str(schemas[0]) or schemas[0] == schemas[1]
    assert "maxLength" not in str(schemas[1]) and "maxItems" not in str(schemas[1])
