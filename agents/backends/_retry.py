"""The one place that retries: transient faults (tenacity) and structured-output re-asks.

Adapters make exactly one request per ``_generate`` call and translate their
SDK's errors into ``TransientBackendError`` (worth retrying) or
``BackendError`` (not). Nothing else in the code base retries a model call, so
retries never stack (an SDK's own retries are switched off).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from sparring.errors import TransientBackendError

from .config import RetryConfig
from .messages import ChatMessage, RawCompletion

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def _wait(policy: RetryConfig) -> Callable[[RetryCallState], float]:
    """Exponential backoff with full jitter, or the server's retry-after when it gave one."""

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None:
            return min(max(float(retry_after), 0.0), policy.max_wait_s)
        ceiling = min(policy.max_wait_s, policy.initial_wait_s * 2 ** (state.attempt_number - 1))
        return random.uniform(0, ceiling)

    return wait


async def with_retries(call: Callable[[int], Awaitable[RawCompletion]],
                       policy: RetryConfig) -> tuple[RawCompletion, int]:
    """Run ``call(attempt_index)`` until it succeeds or a non-transient error / the bound stops it.

    Returns the result and how many retries it took. Past the bound the last
    TransientBackendError propagates, its message naming the attempt count.
    """
    # Nearly every call succeeds at once: tenacity's machinery (its retrying object, attempt
    # iterator and call state, ~3% of the orchestrator's CPU per call) is built only after a
    # first failure, which is then replayed to it as attempt 0 so that waits, counts and the
    # final message are tenacity's as usual.
    try:
        return await call(0), 0
    except TransientBackendError as exc:
        first_failure = exc

    async def replaying(index: int) -> RawCompletion:
        if index == 0:
            raise first_failure
        return await call(index)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception_type(TransientBackendError),
        reraise=True,
    )
    attempt_index = 0
    try:
        async for attempt in retrying:
            with attempt:
                result = await replaying(attempt_index)
                return result, attempt_index
            attempt_index += 1
    except TransientBackendError as exc:
        # Tenacity raises only once the stop condition is met, i.e. after the
        # failed attempt has been counted above: attempt_index is the number tried.
        exc.attempts = attempt_index
        if "gave up after" not in str(exc):
            exc.args = (f"{exc} (gave up after {attempt_index} attempt{'s' if attempt_index != 1 else ''})",)
        raise
    raise AssertionError("unreachable: tenacity either returns or raises")


@lru_cache(maxsize=256)
def json_schema_of(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema sent for constrained decoding, computed once per model class."""
    return model.model_json_schema()


@lru_cache(maxsize=256)
def format_instruction(model: type[BaseModel], full: bool) -> str:
    """What a structured call tells the model about the reply's shape.

    With constrained decoding the server enforces the schema, so a compact
    outline is enough and saves prompt tokens on every call; without it the
    model gets the whole schema.
    """
    schema = json_schema_of(model)
    if full:
        shape = json.dumps(schema, separators=(",", ":"))
        return ("Reply with one JSON object and nothing else (no prose, no code fence). "
                f"It must match this JSON schema: {shape}")
    return f"Reply with one JSON object and nothing else, shaped like: {outline(schema)}"


def outline(schema: dict[str, Any], node: dict[str, Any] | None = None) -> str:
    """A one-line sketch of a JSON schema: ``{"goal": string, "items": [{"name": string}]}``."""
    node = schema if node is None else node
    if "$ref" in node:
        node = schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
    if "enum" in node:
        return "|".join(json.dumps(v) for v in node["enum"])
    if "const" in node:
        return json.dumps(node["const"])
    kind = node.get("type")
    if kind == "object" or "properties" in node:
        inner = ", ".join(f"{json.dumps(k)}: {outline(schema, v)}" for k, v in node.get("properties", {}).items())
        return "{" + inner + "}"
    if kind == "array":
        return "[" + outline(schema, node.get("items", {})) + ", ...]"
    if "anyOf" in node:
        return "|".join(outline(schema, v) for v in node["anyOf"])
    return str(kind or "value")


def with_format_instruction(messages: list[ChatMessage], model: type[BaseModel], *, full: bool) -> list[ChatMessage]:
    """Append the reply format to the system message (or add one), so even unconstrained servers know the shape."""
    instruction = format_instruction(model, full)
    if messages and messages[0]["role"] == "system":
        first = {"role": "system", "content": f"{messages[0]['content']}\n\n{instruction}"}
        return [first, *messages[1:]]  # type: ignore[list-item]
    return [{"role": "system", "content": instruction}, *messages]


def extract_json(text: str) -> str:
    """The JSON object inside a reply that may wrap it in a code fence or prose."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        return fenced.group(1)
    if stripped.startswith("{"):
        return stripped
    start, end = stripped.find("{"), stripped.rfind("}")
    return stripped[start:end + 1] if 0 <= start < end else stripped


def parse_reply(text: str, model: type[BaseModel]) -> BaseModel:
    """Validate a reply against ``model``; raises ValidationError."""
    return model.model_validate_json(extract_json(text))


def is_json(text: str) -> bool:
    try:
        json.loads(extract_json(text))
        return True
    except ValueError:
        return False


def reask_messages(messages: list[ChatMessage], reply: str, error: ValidationError | str,
                   truncated: bool) -> list[ChatMessage]:
    """The conversation for a re-ask: the bad reply and what was wrong with it."""
    if truncated:
        problem = "Your reply was cut off before the JSON object was complete. Keep every field short."
    elif isinstance(error, ValidationError):
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}"
            for e in error.errors(include_url=False)[:5])
        problem = f"Your reply did not match the schema: {details}."
    else:
        problem = f"Your reply was not valid: {error}."
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": f"{problem} Reply again with only the corrected JSON object."}]
