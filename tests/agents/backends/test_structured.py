"""Schema enforcement logic of ``Backend.complete``: re-asks, fences, giving up, mode detection.

The scripted backend replaces only the model; slots, parsing, re-asks and
detection are the production code path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, Field

from sparring.agents.backends import BackendConfig, SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.errors import SchemaUnsupported, StructuredOutputError

ASK = [{"role": "system", "content": "You judge."}, {"role": "user", "content": "Judge this."}]
PARAMS = SamplingParams(temperature=0.0, max_tokens=64)
VALID = '{"label": "safe", "score": 4}'


class Judgement(BaseModel):
    label: str
    score: int = Field(ge=1, le=5)


class Script:
    """Replies in order and records the schema each request carried (None = no constrained decoding)."""

    def __init__(self, *replies: str | Exception) -> None:
        self.replies: Iterator[str | Exception] = iter(replies)
        self.schemas: list[dict[str, Any] | None] = []

    def __call__(self, messages: list[Any], params: SamplingParams, json_schema: dict[str, Any] | None) -> str:
        self.schemas.append(json_schema)
        reply = next(self.replies)
        if isinstance(reply, Exception):
            raise reply
        return reply


def scripted(script: Script, **config: Any) -> ScriptedBackend:
    return ScriptedBackend(script, config=BackendConfig(**config))


async def test_reask_after_invalid_json_then_success() -> None:
    script = Script("Sure, the label is safe.", VALID)
    backend = scripted(script, structured_output="json_schema")
    result = await backend.complete(ASK, PARAMS, Judgement)
    assert result.parsed == Judgement(label="safe", score=4)
    assert result.retries == 1 and result.text == VALID
    # The re-ask shows the model its own bad reply and what was wrong with it.
    second = backend.calls[1]
    assert second[-2] == {"role": "assistant", "content": "Sure, the label is safe."}
    assert second[-1]["role"] == "user" and "did not match the schema" in second[-1]["content"]
    # Usage is summed over both requests (the scripted backend counts words).
    assert result.usage.completion_tokens == len("Sure, the label is safe.".split()) + len(VALID.split())


async def test_reask_names_the_failing_field() -> None:
    script = Script('{"label": "safe", "score": 9}', VALID)
    backend = scripted(script, structured_output="json_schema")
    result = await backend.complete(ASK, PARAMS, Judgement)
    assert result.retries == 1
    assert "score: Input should be less than or equal to 5" in backend.calls[1][-1]["content"]


@pytest.mark.parametrize("reply", [
    pytest.param(f"```json\n{VALID}\n```", id="json-fence"),
    pytest.param(f"```\n{VALID}\n```", id="bare-fence"),
    pytest.param(f"Here is my judgement: {VALID} Hope that helps.", id="prose-around"),
])
async def test_wrapped_json_is_accepted_first_time(reply: str) -> None:
    backend = scripted(Script(reply), structured_output="json_schema")
    result = await backend.complete(ASK, PARAMS, Judgement)
    assert result.parsed == Judgement(label="safe", score=4)
    assert result.retries == 0 and result.text == reply


async def test_gives_up_after_reasks_and_keeps_the_raw_text() -> None:
    script = Script("no", "still no", "{not json", "never reached")
    backend = scripted(script, structured_output="json_schema", reasks=2)
    with pytest.raises(StructuredOutputError) as info:
        await backend.complete(ASK, PARAMS, Judgement)
    assert len(backend.calls) == 3  # the first try and two re-asks
    assert info.value.raw_text == "{not json"
    assert info.value.attempts == 3
    assert "did not match Judgement after 3 tries" in str(info.value)


async def test_zero_reasks_fails_on_the_first_bad_reply() -> None:
    backend = scripted(Script("nope"), reasks=0, structured_output="json_schema")
    with pytest.raises(StructuredOutputError):
        await backend.complete(ASK, PARAMS, Judgement)
    assert len(backend.calls) == 1


async def test_the_schema_is_described_in_the_prompt_too() -> None:
    """Servers that cannot constrain decoding still learn the shape from the system message."""
    backend = scripted(Script(VALID), structured_output="reask")
    await backend.complete(ASK, PARAMS, Judgement)
    system = backend.calls[0][0]
    assert system["role"] == "system" and system["content"].startswith("You judge.")
    assert json.dumps(Judgement.model_json_schema(), separators=(",", ":")) in system["content"]


async def test_detection_falls_back_to_reask_when_the_server_ignores_the_schema() -> None:
    """Prose under json_schema means nothing constrained the decoder: stop sending the schema."""
    script = Script("I think it is safe, score four.", VALID, VALID)
    backend = scripted(script, structured_output="auto")
    assert backend.structured_mode_label() == "auto (not probed yet)"
    first = await backend.complete(ASK, PARAMS, Judgement)
    assert first.structured_mode == "reask" and first.retries == 1
    assert backend.structured_mode_label() == "reask"
    second = await backend.complete(ASK, PARAMS, Judgement)
    assert second.structured_mode == "reask" and second.retries == 0
    assert [s is not None for s in script.schemas] == [True, False, False]


async def test_detection_keeps_json_schema_when_the_reply_is_json_but_wrong() -> None:
    """Valid JSON that misses the schema (e.g. a lax constraint) is no proof the server ignores it."""
    script = Script('{"label": "safe"}', VALID)
    backend = scripted(script, structured_output="auto")
    result = await backend.complete(ASK, PARAMS, Judgement)
    assert result.structured_mode == "json_schema" and result.retries == 1
    assert backend.structured_mode_label() == "json_schema"
    assert all(s is not None for s in script.schemas)


async def test_detection_when_the_server_refuses_the_schema() -> None:
    script = Script(SchemaUnsupported("response_format is not supported"), VALID, VALID)
    backend = scripted(script, structured_output="auto")
    result = await backend.complete(ASK, PARAMS, Judgement)
    assert result.structured_mode == "reask" and result.retries == 0  # a refusal is not a re-ask
    assert backend.structured_mode_label() == "reask"
    await backend.complete(ASK, PARAMS, Judgement)
    assert [s is not None for s in script.schemas] == [True, False, False]


async def test_configured_json_schema_is_never_abandoned() -> None:
    """With structured_output: json_schema the user vouched for the server; prose is just a bad reply."""
    script = Script("prose", VALID)
    backend = scripted(script, structured_output="json_schema")
    result = await backend.complete(ASK, PARAMS, Judgement)
    assert result.structured_mode == "json_schema"
    assert all(s is not None for s in script.schemas)


async def test_plain_calls_carry_no_schema() -> None:
    script = Script("hello there")
    backend = scripted(script)
    result = await backend.complete(ASK, PARAMS)
    assert result.parsed is None and result.structured_mode == "none" and result.text == "hello there"
    assert script.schemas == [None]
