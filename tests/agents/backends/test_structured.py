"""Schema enforcement logic of ``Backend.complete``: re-asks, fences, giving up, mode detection.

The scripted backend replaces only the model; slots, parsing, re-asks and
detection are the production code path.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from sparring.agents.backends import BackendConfig, SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.errors import BackendError, SchemaUnsupported, StructuredOutputError

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


async def test_detection_falls_back_to_reask_when_the_server_ignores_the_schema(caplog) -> None:
    """Prose under json_schema, several times in a row and nothing parsed yet: the server ignores
    schemas. One warning line says so; the decision and its evidence are in describe()."""
    script = Script("I think it is safe.", "Safe, four.", "It is safe, score four.", VALID, VALID)
    backend = scripted(script, structured_output="auto")
    assert backend.structured_mode_label() == "auto (not probed yet)"
    first = await backend.complete(ASK, PARAMS, Judgement)
    assert first.structured_mode == "reask" and first.retries == 3
    assert backend.structured_mode_label() == "reask"
    second = await backend.complete(ASK, PARAMS, Judgement)
    assert second.structured_mode == "reask" and second.retries == 0
    assert [s is not None for s in script.schemas] == [True, True, True, False, False]
    decision = backend.describe()["structured_output_decision"]
    assert decision["mode"] == "reask" and decision["not_json_under_schema"] == 3
    assert "3 replies in a row" in decision["reason"] and decision["parsed_under_schema"] == 0
    warnings = [r.getMessage() for r in caplog.records if "ignores schemas" in r.getMessage()]
    assert len(warnings) == 1 and "structured_output: reask" in warnings[0]


async def test_one_malformed_reply_after_support_is_confirmed_changes_nothing() -> None:
    """The issue's failure: a reply cut mid-JSON (a dropped stream) once constrained replies had
    parsed. It is that reply's fault: re-asked under the schema, and every later call keeps it."""
    cut = VALID[:len(VALID) // 2]
    script = Script(VALID, cut, VALID, *([cut] * 3), VALID, VALID)
    backend = scripted(script, structured_output="auto", reasks=3)
    for _ in range(4):
        result = await backend.complete(ASK, PARAMS, Judgement)
        assert result.structured_mode == "json_schema"
    assert all(s is not None for s in script.schemas)
    decision = backend.describe()["structured_output_decision"]
    assert decision["mode"] == "json_schema" and decision["not_json_under_schema"] == 4
    assert decision["reason"] == "a reply under a JSON schema parsed"


async def test_unconfirmed_support_survives_fewer_bad_replies_than_the_evidence_needs() -> None:
    script = Script("prose", "more prose", VALID, VALID)
    backend = scripted(script, structured_output="auto")
    assert (await backend.complete(ASK, PARAMS, Judgement)).structured_mode == "json_schema"
    await backend.complete(ASK, PARAMS, Judgement)
    assert all(s is not None for s in script.schemas) and backend.structured_mode_label() == "json_schema"


async def test_a_refusal_after_confirmation_sends_only_that_call_without_a_schema() -> None:
    script = Script(VALID, SchemaUnsupported("response_format is not supported"), VALID, VALID)
    backend = scripted(script, structured_output="auto")
    await backend.complete(ASK, PARAMS, Judgement)
    refused = await backend.complete(ASK, PARAMS, Judgement)
    assert refused.structured_mode == "reask"
    assert (await backend.complete(ASK, PARAMS, Judgement)).structured_mode == "json_schema"
    assert [s is not None for s in script.schemas] == [True, True, False, True]
    assert backend.describe()["structured_output_decision"]["refusals"] == 1


async def test_a_refusal_with_json_schema_configured_is_a_clear_error() -> None:
    backend = scripted(Script(SchemaUnsupported("response_format is not supported")), structured_output="json_schema")
    with pytest.raises(BackendError, match="structured_output: json_schema: set it to auto or reask"):
        await backend.complete(ASK, PARAMS, Judgement)


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


KINDS = {"valid": VALID, "cut": VALID[:9], "prose": "I would say it is safe.", "json_wrong": '{"label": "safe"}'}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(sorted(KINDS)), min_size=1, max_size=24))
def test_schema_support_is_decided_only_by_clear_evidence(kinds: list[str]) -> None:
    """Any order of good, cut, prose and wrong-shaped replies: the schema is never dropped after a
    constrained reply parsed, and dropped only after NON_JSON_EVIDENCE non-JSON replies in a row."""
    import asyncio

    from sparring.agents.backends._retry import SchemaSupport

    queue = list(kinds)
    sent: list[tuple[bool, str]] = []  # (schema sent, reply kind) per request

    def responder(messages: list[Any], params: SamplingParams, json_schema: dict[str, Any] | None) -> str:
        kind = queue.pop(0) if queue else "valid"
        sent.append((json_schema is not None, kind))
        return KINDS[kind]

    backend = ScriptedBackend(responder, config=BackendConfig(structured_output="auto", reasks=2))

    async def drive() -> None:
        while queue:
            try:
                await backend.complete(ASK, PARAMS, Judgement)
            except StructuredOutputError:
                pass

    asyncio.run(drive())
    parsed_under_schema = False
    in_a_row = 0
    for with_schema, kind in sent:
        if not with_schema:
            assert not parsed_under_schema, "the schema was dropped after a constrained reply had parsed"
            assert in_a_row >= SchemaSupport.NON_JSON_EVIDENCE, "the schema was dropped on thin evidence"
            continue
        parsed_under_schema |= kind == "valid"
        in_a_row = in_a_row + 1 if kind in ("cut", "prose") else 0
    dropped = any(not with_schema for with_schema, _ in sent)
    assert dropped == (backend.structured_mode_label() == "reask")


# -- a reply cut at the token limit ------------------------------------------------------------

def bounded_model(*limits: int) -> type[BaseModel]:
    from pydantic import create_model

    return create_model("Bounded", **{f"f{i}": (str, Field(max_length=n)) for i, n in enumerate(limits)})


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 400), min_size=1, max_size=4), st.integers(1, 300), st.data())
def test_a_cut_structured_reply_gets_room_for_the_whole_schema(limits: list[int], budget: int,
                                                               data: st.DataObject) -> None:
    """Whatever the stage's budget, a model that writes any reply the schema allows (cut at the budget, a
    character a token: the worst case) is answered on the re-ask at the latest: the re-ask's budget is raised
    to room for the longest valid reply, within the stated cap."""
    import asyncio

    from sparring.agents.backends import _retry
    from sparring.traces import spans
    from sparring.traces.sinks import ListSpanSink

    model = bounded_model(*limits)
    letters = st.characters(codec="ascii", exclude_categories=["Cc"], exclude_characters='"\\')
    reply = json.dumps({f"f{i}": data.draw(st.text(letters, max_size=n), label=f"f{i}") for i, n in enumerate(limits)},
                       separators=(",", ":"))
    backend = ScriptedBackend(lambda m, p, s: reply, cut_at_max_tokens=True,
                              config=BackendConfig(structured_output="json_schema", reasks=1))
    params = SamplingParams(temperature=0.0, max_tokens=budget)
    captured = ListSpanSink()
    with spans.use_tracer(spans.Tracer([captured])):
        result = asyncio.run(backend.complete(ASK, params, model))
    assert result.parsed is not None and result.text == reply
    chats = [s.to_dict() for s in captured if s.name == "chat"]
    assert len(chats) == (1 if len(reply) <= budget else 2)
    if len(chats) == 2:
        first, second = (c["attributes"] for c in chats)
        assert first["gen_ai.response.finish_reasons"] == ["length"]
        assert second["app.reask_reason"] == "length"
        assert second["gen_ai.request.max_tokens"] == _retry.raised_budget(budget, budget, model)
        assert budget < second["gen_ai.request.max_tokens"] <= max(_retry.MAX_RAISED_TOKENS, budget)
        assert second["app.reply_max_chars"] == _retry.reply_room(model) >= len(reply)


def test_the_raised_budget_is_bounded() -> None:
    from sparring.agents.backends import _retry

    small, huge = bounded_model(100), bounded_model(20000)
    assert _retry.raised_budget(10, 10, small) == _retry.reply_room(small) == 110
    assert _retry.raised_budget(500, 500, small) == 1000  # room already: doubled all the same
    assert _retry.raised_budget(1000, 1000, huge) == _retry.MAX_RAISED_TOKENS
    # A schema with an unbounded string: doubled, up to 4x the stage's budget.
    assert _retry.raised_budget(100, 100, Judgement) == 200
    assert _retry.raised_budget(400, 100, Judgement) == 400


async def test_an_empty_revision_misses_the_schema() -> None:
    from sparring.agents.reviser import revision_schema

    schema = revision_schema(500)
    assert schema.model_json_schema()["properties"]["revision"] | {"title": ""} == {
        "type": "string", "minLength": 1, "maxLength": 500, "title": ""}
    script = Script('{"revision": ""}', '{"revision": "fixed"}')
    result = await scripted(script, structured_output="json_schema").complete(ASK, PARAMS, schema)
    assert result.parsed.revision == "fixed" and result.retries == 1  # type: ignore[attr-defined]
