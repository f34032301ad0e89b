"""The one place that retries: transient faults (tenacity) and structured-output re-asks,
and what decides whether a server honours JSON schemas (``SchemaSupport``).

Adapters make exactly one request per ``_generate`` call and translate their
SDK's errors into ``TransientBackendError`` (worth retrying) or
``BackendError`` (not). Nothing else in the code base retries a model call, so
retries never stack (an SDK's own retries are switched off).
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from sparring.errors import TransientBackendError

from .backend_config import RetryConfig
from .messages import MAX_RAISED_TOKENS, ChatMessage, RawCompletion

_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)

SchemaState = Literal["unconfirmed", "confirmed", "unsupported"]


class SchemaSupport:
    """Whether a backend's server constrains decoding to the JSON schema it is sent.

    ``structured_output: json_schema`` and ``reask`` settle it from the start; ``auto`` starts
    unconfirmed and sends schemas until the evidence decides:

    - a constrained reply that parses confirms support, for good: from then on a reply that is
      not JSON is a fault of that reply (re-asked in the same mode), never a verdict on the server;
    - while unconfirmed, an explicit refusal (a 400 naming ``response_format``) or
      ``NON_JSON_EVIDENCE`` replies in a row under a schema that are not JSON at all, with none
      parsed, decide that the server ignores schemas: the rest of the run parses and re-asks.

    A JSON reply that misses the schema, and a reply cut off by ``max_tokens``, are evidence of
    nothing. The decision, its reason and the counts behind it are in ``describe()`` (the
    manifest) and in one warning line (``on_decision``). Thread-safe counters: one instance
    serves every dialogue of a backend.

        >>> support = SchemaSupport("auto")
        >>> support.mode, support.state
        ('json_schema', 'unconfirmed')
        >>> for _ in range(SchemaSupport.NON_JSON_EVIDENCE):
        ...     _ = support.not_json()
        >>> support.mode, support.state
        ('reask', 'unsupported')
    """

    NON_JSON_EVIDENCE = 3
    """Non-JSON replies in a row, none parsed yet, that show a server ignores the schema."""

    def __init__(self, configured: Literal["auto", "json_schema", "reask"],
                 on_decision: Callable[[str], None] | None = None) -> None:
        self.configured = configured
        self.on_decision = on_decision
        """Called once with a one-line account when ``auto`` decides the server ignores schemas."""
        self.state: SchemaState = {"auto": "unconfirmed", "json_schema": "confirmed",
                                   "reask": "unsupported"}[configured]  # type: ignore[assignment]
        self.reason = {"auto": "not decided yet", "json_schema": "set in the config (structured_output: json_schema)",
                       "reask": "set in the config (structured_output: reask)"}[configured]
        self.decided_at: float | None = None
        self.counts = {"parsed_under_schema": 0, "not_json_under_schema": 0, "refusals": 0}
        self._not_json_in_a_row = 0
        self._lock = threading.Lock()

    @property
    def mode(self) -> Literal["json_schema", "reask"]:
        """How the next structured request is sent."""
        return "reask" if self.state == "unsupported" else "json_schema"

    def label(self) -> str:
        return {"unconfirmed": "auto (not probed yet)", "confirmed": "json_schema",
                "unsupported": "reask"}[self.state]

    def describe(self) -> dict[str, Any]:
        """The decision and its evidence, as the manifest records it."""
        out: dict[str, Any] = {"mode": self.label(), "configured": self.configured, "reason": self.reason,
                               **self.counts}
        if self.decided_at is not None:
            out["decided_at"] = round(self.decided_at, 3)
        return out

    def parsed(self) -> None:
        """A reply sent under a schema parsed: the server honours schemas."""
        with self._lock:
            self.counts["parsed_under_schema"] += 1
            self._not_json_in_a_row = 0
            if self.state == "unconfirmed":
                self._decide("confirmed", "a reply under a JSON schema parsed")

    def json_but_invalid(self) -> None:
        """JSON under a schema that failed validation: ends a run of non-JSON replies, decides nothing."""
        with self._lock:
            self._not_json_in_a_row = 0

    def not_json(self) -> bool:
        """A reply under a schema that is not JSON at all (not cut off by max_tokens). True when
        this reply decided that the server ignores schemas."""
        with self._lock:
            self.counts["not_json_under_schema"] += 1
            self._not_json_in_a_row += 1
            if self.state != "unconfirmed" or self._not_json_in_a_row < self.NON_JSON_EVIDENCE:
                return False
            self._decide("unsupported", f"{self._not_json_in_a_row} replies in a row under a JSON schema were "
                                        "not JSON and none had parsed: the server ignores schemas")
        return True

    def refused(self, message: str) -> bool:
        """The server refused a schema. Unconfirmed support ends here (True); confirmed support stays,
        and only the refused call goes on without a schema."""
        with self._lock:
            self.counts["refusals"] += 1
            if self.state != "unconfirmed":
                return False
            self._decide("unsupported", f"the server refused the JSON schema: {message[:200]}")
        return True

    def _decide(self, state: SchemaState, reason: str) -> None:
        self.state, self.reason, self.decided_at = state, reason, time.time()
        if state == "unsupported" and self.on_decision is not None:
            self.on_decision(reason)


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
def reply_room(model: type[BaseModel]) -> int | None:
    """The most characters a compact JSON reply valid for ``model`` can hold, from the schema's
    ``maxLength``, ``maxItems`` and enums (a character escaped in JSON counted once); None when a
    string or list in it is unbounded.

        >>> from pydantic import Field, create_model
        >>> reply_room(create_model("R", text=(str, Field(max_length=10))))
        22
    """
    schema = json_schema_of(model)
    return _room(schema, schema)


def _room(schema: dict[str, Any], node: dict[str, Any]) -> int | None:
    if "$ref" in node:
        node = schema.get("$defs", {}).get(node["$ref"].rsplit("/", 1)[-1], {})
    if "enum" in node or "const" in node:
        return max(len(json.dumps(v)) for v in node.get("enum", [node.get("const")]))
    options = node.get("anyOf") or node.get("oneOf")
    if options:
        rooms = [_room(schema, o) for o in options]
        return None if None in rooms else max(r for r in rooms if r is not None)
    kind = node.get("type")
    if kind == "string":
        return node["maxLength"] + 2 if "maxLength" in node else None
    if kind == "array":
        item = _room(schema, node.get("items", {}))
        return None if item is None or "maxItems" not in node else 2 + node["maxItems"] * (item + 1)
    if kind == "object" or "properties" in node:
        total = 2
        for key, sub in node.get("properties", {}).items():
            inner = _room(schema, sub)
            if inner is None:
                return None
            total += len(json.dumps(key)) + 2 + inner
        return total
    return 24  # a number, a boolean or null


def raised_budget(current: int, stage: int, model: type[BaseModel]) -> int:
    """The token budget for the re-ask of a structured reply cut at ``current`` tokens.

    Double it, and at least give room for the longest reply the schema allows at one token a
    character (its bounded fields make that finite), so that constrained decoding cannot be cut
    again; at most four times the stage's budget or that room, whichever is larger, and never more
    than ``MAX_RAISED_TOKENS``.

        >>> from pydantic import Field, create_model
        >>> raised_budget(60, 60, create_model("R", text=(str, Field(max_length=500))))
        512
    """
    room = reply_room(model) or 0
    ceiling = min(max(stage * 4, room), MAX_RAISED_TOKENS)
    return max(current, min(max(current * 2, room), ceiling))


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
        problem = ("Your reply was cut off before the JSON object was complete. Keep every field within its length "
                   "limit and close the object.")
    elif isinstance(error, ValidationError):
        details = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}"
            for e in error.errors(include_url=False)[:5])
        problem = f"Your reply did not match the schema: {details}."
    else:
        problem = f"Your reply was not valid: {error}."
    return [*messages, {"role": "assistant", "content": reply},
            {"role": "user", "content": f"{problem} Reply again with only the corrected JSON object."}]
