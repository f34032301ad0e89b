"""A backend that answers from a recorded trace: the replies a run got, served again, no model.

Each ``chat`` span of a dialogue's trace is one recorded request: who asked
(``gen_ai.agent.name``), about which turn (``app.turn_index``), what it was
shown (``gen_ai.input.messages``) and what came back (the reply, its usage
and finish reason, or the error the attempt failed with).

Matching a live request to a recording:

1. the key is (agent name, turn index), read from the live ``chat`` span,
   which inherits both from its agent span; concurrent calls of different
   turns (the critic judges turns in parallel) therefore never compete;
2. within a key, the first unused recording whose prompt equals the live
   prompt is served (retries of one prompt replay in the order they happened,
   failed attempts first, re-asks match by their longer prompt);
3. if no unused recording has that prompt, the graph asked something the run
   did not: the first unused recording of the key is served anyway and the
   difference is noted in ``mismatches`` (``strict=True`` raises instead),
   so a changed prompt template still replays and the report says where;
4. if the key has no unused recording left, the graph made a call the run
   never made: ``ReplayExhausted`` (a BackendError) fails the dialogue, as a
   dead model would have.

The recorded span needs content (``tracing.record_content: true``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sparring.errors import BackendError, ReplayExhausted, ReplayMismatch, SchemaUnsupported, TransientBackendError
from sparring.traces import spans as tracing

from .backend_config import BackendConfig
from .base import Backend
from .messages import ChatMessage, RawCompletion, SamplingParams, TokenUsage


@dataclass(slots=True)
class RecordedCall:
    """One ``chat`` span, as replay needs it."""

    agent: str
    turn_index: int | None
    messages: list[dict[str, Any]] | None
    text: str | None
    usage: TokenUsage
    finish_reason: str | None
    model: str
    error: str | None
    """``Type: message`` of a failed attempt, None for a reply."""
    used: bool = False

    @classmethod
    def from_span(cls, span: dict[str, Any]) -> RecordedCall:
        a = span.get("attributes") or {}
        output = a.get("gen_ai.output.messages") or []
        reasons = a.get("gen_ai.response.finish_reasons") or [None]
        return cls(agent=a.get("gen_ai.agent.name", ""), turn_index=a.get("app.turn_index"),
                   messages=a.get("gen_ai.input.messages"), text=output[0]["content"] if output else None,
                   usage=TokenUsage(a.get("gen_ai.usage.input_tokens", 0), a.get("gen_ai.usage.output_tokens", 0)),
                   finish_reason=reasons[0], model=a.get("gen_ai.response.model") or a.get(
                       "gen_ai.request.model", "replay"),
                   error=span.get("error") if span.get("status") == "error" else None)

    def where(self) -> str:
        return self.agent + (f" turn {self.turn_index}" if self.turn_index is not None else "")


def has_content(chat_spans: Iterable[dict[str, Any]]) -> bool:
    """False when the run recorded no prompts and replies (``tracing.record_content: false``)."""
    return any("gen_ai.input.messages" in (s.get("attributes") or {}) for s in chat_spans)


def structured_mode_of(chat_spans: Iterable[dict[str, Any]], default: str) -> str:
    """The ``structured_output`` setting that makes replay take the recorded path.

    The live backend learns whether the server honours schemas on its first
    structured call and keeps that for the whole run; a dialogue replayed
    alone must start from what was known when it ran."""
    modes = {(s.get("attributes") or {}).get("app.structured_mode") for s in chat_spans} - {None, "none"}
    if modes == {"json_schema"}:
        return "json_schema"
    if modes == {"reask"}:
        return "reask"
    return "auto" if modes else default


class ReplayBackend(Backend):
    """Serves the replies recorded in ``chat_spans``; see the module docstring for matching."""

    provider = "replay"

    def __init__(self, chat_spans: Iterable[dict[str, Any]], *, config: BackendConfig | None = None,
                 strict: bool = False) -> None:
        ordered = sorted((s for s in chat_spans if s["name"] == "chat"), key=lambda s: s["start_time"])
        super().__init__(config or BackendConfig(kind="embedded", structured_output=structured_mode_of(
            ordered, "auto")), "replay")
        self.strict = strict
        self._calls: dict[tuple[str, int | None], list[RecordedCall]] = {}
        for span in ordered:
            call = RecordedCall.from_span(span)
            self._calls.setdefault((call.agent, call.turn_index), []).append(call)
        self.mismatches: list[str] = []
        """One line per served call whose live prompt differed from the recorded one."""

    async def _generate(self, messages: list[ChatMessage], params: SamplingParams,
                        json_schema: dict[str, Any] | None) -> RawCompletion:
        current = tracing.current_span()
        if current is None:
            raise BackendError("replay needs an active tracer: calls are matched by their chat span's agent and turn")
        attrs = current.attributes
        key = (attrs.get("gen_ai.agent.name", ""), attrs.get("app.turn_index"))
        queue = self._calls.get(key, [])
        call = next((c for c in queue if not c.used and c.messages == messages), None)
        if call is None:
            call = next((c for c in queue if not c.used), None)
            where = key[0] + (f" turn {key[1]}" if key[1] is not None else "")
            if call is None:
                raise ReplayExhausted(f"no recorded reply left for {where}: the run made "
                                      f"{len(queue)} such call(s), the replay asks for more")
            note = f"{where}: prompt differs from the recording ({first_difference(call.messages, messages)})"
            if self.strict:
                raise ReplayMismatch(note)
            self.mismatches.append(note)
        call.used = True
        if call.error is not None:
            raise _recorded_error(call.error)
        if call.text is None:
            raise BackendError(f"the recording of {call.where()} holds no reply (content was not recorded)")
        return RawCompletion(text=call.text, usage=TokenUsage(call.usage.prompt_tokens, call.usage.completion_tokens),
                             finish_reason=call.finish_reason, model=call.model)

    def unused(self) -> list[str]:
        """Recorded calls the replay never asked for (the graph took a shorter path)."""
        return [c.where() for queue in self._calls.values() for c in queue if not c.used]


@lru_cache(maxsize=64)
def _error_class(name: str) -> type[BackendError]:
    """A BackendError subclass carrying the recorded type's name, so the dialogue's error
    text (``Type: message``) comes out as the run wrote it."""
    return type(name, (BackendError,), {"__module__": __name__})


def _recorded_error(error: str) -> Exception:
    kind, _, message = error.partition(": ")
    if kind == "TransientBackendError":
        return TransientBackendError(message)
    if kind == "SchemaUnsupported":
        return SchemaUnsupported(message)
    if kind == "BackendError" or not kind.isidentifier():
        return BackendError(message if kind == "BackendError" else error)
    return _error_class(kind)(message)


def first_difference(recorded: list[dict[str, Any]] | None, live: list[ChatMessage]) -> str:
    """Where two prompts part, in a few words."""
    if recorded is None:
        return "nothing recorded"
    if len(recorded) != len(live):
        return f"{len(recorded)} recorded messages, {len(live)} now"
    for i, (old, new) in enumerate(zip(recorded, live)):
        if old.get("role") != new["role"]:
            return f"message {i}: role {old.get('role')} recorded, {new['role']} now"
        a, b = str(old.get("content", "")), new["content"]
        if a != b:
            at = next((j for j, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            return f"message {i} ({new['role']}) from character {at}: {a[at:at + 40]!r} recorded, {b[at:at + 40]!r} now"
    return "same text"
