"""Backend: what all adapters share. Adapters implement ``_generate`` and nothing else.

``complete`` bounds requests in flight, opens one ``chat`` span per model
request (retries and re-asks are requests too), and enforces a schema either
by constrained decoding or by parse-and-re-ask.
"""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from sparring.errors import BackendError, SchemaUnsupported, StructuredOutputError
from sparring.traces import spans

from . import _retry
from ._slots import FairSlots
from .backend_config import BackendConfig
from .messages import ChatMessage, Completion, RawCompletion, SamplingParams, StructuredMode, TokenUsage

log = logging.getLogger(__name__)


@dataclass(slots=True)
class UsageMeter:
    """Tokens and requests of every model call made inside ``metered()``, retries and re-asks included.
    Meters nest: a dialogue's meter also counts into the run's."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0
    parent: UsageMeter | None = None
    by_agent: dict[str, list[int]] = field(default_factory=dict)
    """Agent name (``agent_scope``: planner, persona_A, target, critic, ...) -> [prompt, completion, calls]."""

    def add(self, usage: TokenUsage) -> None:
        agent = _agent.get() or "other"
        meter: UsageMeter | None = self
        while meter is not None:
            meter.prompt_tokens += usage.prompt_tokens
            meter.completion_tokens += usage.completion_tokens
            meter.calls += 1
            counts = meter.by_agent.setdefault(agent, [0, 0, 0])
            counts[0] += usage.prompt_tokens
            counts[1] += usage.completion_tokens
            counts[2] += 1
            meter = meter.parent

    def add_counts(self, prompt_tokens: int, completion_tokens: int, calls: int) -> None:
        """Usage counted elsewhere (a worker process's meter), added here and to the meters above."""
        meter: UsageMeter | None = self
        while meter is not None:
            meter.prompt_tokens += prompt_tokens
            meter.completion_tokens += completion_tokens
            meter.calls += calls
            meter = meter.parent


_meter: ContextVar[UsageMeter | None] = ContextVar("sparring_usage_meter", default=None)
_agent: ContextVar[str | None] = ContextVar("sparring_usage_agent", default=None)


@contextmanager
def agent_scope(agent: str) -> Iterator[None]:
    """Count the usage of the calls made in this context under ``agent`` (``UsageMeter.by_agent``)."""
    token = _agent.set(agent)
    try:
        yield
    finally:
        _agent.reset(token)


@contextmanager
def metered() -> Iterator[UsageMeter]:
    """Count usage of the calls made in this context (and tasks started from it)."""
    meter = UsageMeter(parent=_meter.get())
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


class Backend(ABC):
    """Base of every adapter: one instance per configured backend, shared by all dialogues."""

    provider: str = "unknown"
    """``gen_ai.provider.name`` of the spans this backend records."""

    def __init__(self, config: BackendConfig, model: str) -> None:
        self.config = config
        self.model = model
        self.name = "default"
        """The backend's name in the run config (``backends:``); chat spans carry it as ``app.backend``."""
        self._slots = FairSlots(config.max_in_flight)
        self.schema_support = _retry.SchemaSupport(config.structured_output, on_decision=self._warn_schemas_ignored)
        """Whether the server honours JSON schemas: settled by the config, or found out from replies."""
        self.in_flight = 0
        self.max_in_flight_seen = 0

    # -- what adapters provide -------------------------------------------------
    async def start(self) -> None:
        """Load or connect; called once before the first request."""

    async def aclose(self) -> None:
        """Release the engine or the connection pool."""

    @abstractmethod
    async def _generate(self, messages: list[ChatMessage], params: SamplingParams,
                        json_schema: dict[str, Any] | None) -> RawCompletion:
        """One request. Raise TransientBackendError for faults worth retrying,
        SchemaUnsupported when the server refuses ``json_schema``."""

    def describe(self) -> dict[str, Any]:
        return {"provider": self.provider, "model": self.model, "kind": self.config.kind,
                "max_in_flight": self.config.max_in_flight,
                "structured_output": self.structured_mode_label(),
                "structured_output_decision": self.schema_support.describe()}

    def where(self) -> str:
        """How messages name this backend: its kind and model (adapters add their URL)."""
        return f"{self.config.kind} backend ({self.model})"

    def schema_warning(self, reason: str) -> str:
        """The one line that says this backend's server was found to ignore JSON schemas."""
        return (f"warning: {self.where()}: {reason}; structured calls now describe the schema in the prompt "
                "and re-ask (structured_output: reask; the manifest's backend.structured_output_decision has "
                "the evidence)")

    def _warn_schemas_ignored(self, reason: str) -> None:
        log.warning("%s", self.schema_warning(reason))

    # -- the shared call path --------------------------------------------------
    def structured_mode_label(self) -> str:
        return self.schema_support.label()

    async def complete(self, messages: list[ChatMessage], params: SamplingParams,
                       schema: type[BaseModel] | None = None, *, agent: str | None = None) -> Completion:
        """One logical call: transient faults retried, a schema enforced, usage summed."""
        if schema is None:
            raw, retries, latency = await self._request(messages, params, None, "none", 0)
            return Completion(text=raw.text, parsed=None, usage=raw.usage, finish_reason=raw.finish_reason,
                              model=raw.model, latency_s=latency, retries=retries, logprobs=raw.logprobs)
        return await self._complete_structured(messages, params, schema)

    async def _complete_structured(self, messages: list[ChatMessage], params: SamplingParams,
                                   schema: type[BaseModel]) -> Completion:
        """A reply that validates against ``schema``: constrained decoding while the server honours
        schemas (``self.schema_support`` decides, from evidence), parse-and-re-ask otherwise. A bad
        reply costs a re-ask of this call, nothing more; a cut one gets room (``_retry.raised_budget``)."""
        support = self.schema_support
        ask = _Ask(params=params, room=_retry.reply_room(schema))
        refused_here = False  # this call was refused a schema the server had accepted before
        while True:
            mode: StructuredMode = "reask" if refused_here else support.mode
            if mode != ask.mode:  # first try, or constrained decoding just turned out unsupported
                ask.convo, ask.mode = _retry.with_format_instruction(messages, schema, full=mode == "reask"), mode
            json_schema = _retry.json_schema_of(schema) if mode == "json_schema" else None
            try:
                raw, r, dt = await self._request(ask.convo, ask.params, json_schema, mode, ask.reask,
                                                 {"app.reask_reason": ask.reason, "app.reply_max_chars": ask.room})
            except SchemaUnsupported as exc:
                if support.configured == "json_schema":
                    raise BackendError(f"the server refuses JSON schemas ({exc}); the config says "
                                       "structured_output: json_schema: set it to auto or reask") from None
                refused_here = not support.refused(str(exc))
                continue
            ask.add(raw, r, dt)
            try:
                parsed = _retry.parse_reply(raw.text, schema)
            except ValidationError as exc:
                self._after_bad_reply(ask, raw, exc, params, schema)
                continue
            if mode == "json_schema":
                support.parsed()
            return Completion(text=raw.text, parsed=parsed, usage=ask.usage, finish_reason=raw.finish_reason,
                              model=raw.model, latency_s=ask.latency, retries=ask.retries + ask.reasked,
                              structured_mode=mode, logprobs=raw.logprobs)

    def _after_bad_reply(self, ask: _Ask, raw: RawCompletion, error: ValidationError, params: SamplingParams,
                         schema: type[BaseModel]) -> None:
        """What a reply that missed the schema leads to: evidence about schema support, then a re-ask (with
        room when it was cut at its budget), or StructuredOutputError once ``reasks`` are spent."""
        truncated = raw.finish_reason == "length"
        if ask.mode == "json_schema" and not truncated:
            if _retry.is_json(raw.text):
                self.schema_support.json_but_invalid()
            elif self.schema_support.not_json():  # this reply decided: the server ignores schemas
                ask.reask = 0  # a fresh start in reask mode (it happens once per backend)
                ask.reasked += 1
                return
        if ask.reask >= self.config.reasks:
            cut = f" (the last cut at its {ask.params.max_tokens}-token budget)" if truncated else ""
            raise StructuredOutputError(
                f"reply did not match {schema.__name__} after {ask.reask + 1} tries{cut}: {_short(error)}",
                raw_text=raw.text, attempts=ask.reask + 1)
        ask.reask += 1
        ask.reasked += 1
        ask.convo = _retry.reask_messages(ask.convo, raw.text, error, truncated)
        ask.reason = "length" if truncated else "invalid"
        if truncated:
            # Cut off mid-object: the same budget would be cut the same way. Room for the whole
            # bounded reply (_retry.raised_budget), recorded on the re-ask's chat span.
            ask.params = ask.params.model_copy(update={"max_tokens": _retry.raised_budget(
                ask.params.max_tokens, params.max_tokens, schema)})

    async def _request(self, messages: list[ChatMessage], params: SamplingParams, json_schema: dict[str, Any] | None,
                       mode: StructuredMode, reask: int,
                       extra: dict[str, Any] | None = None) -> tuple[RawCompletion, int, float]:
        """One model request with transient retries; each attempt is a ``chat`` span."""
        elapsed = 0.0

        async def attempt(index: int) -> RawCompletion:
            nonlocal elapsed
            meter = _meter.get()
            # The dialogue's calls so far: when the slots bind, the least advanced dialogue goes first.
            await self._slots.acquire(meter.calls if meter is not None else 0)
            try:
                self.in_flight += 1
                self.max_in_flight_seen = max(self.max_in_flight_seen, self.in_flight)
                t0 = time.perf_counter()
                try:
                    with spans.span("chat", self._chat_attributes(params, mode, index, reask, extra)) as s:
                        if spans.content_enabled():
                            s.set("gen_ai.input.messages", messages)
                        raw = await self._generate(messages, params, json_schema)
                        s.update({
                            "gen_ai.response.model": raw.model,
                            "gen_ai.response.finish_reasons": [raw.finish_reason],
                            "gen_ai.usage.input_tokens": raw.usage.prompt_tokens,
                            "gen_ai.usage.output_tokens": raw.usage.completion_tokens,
                        })
                        if spans.content_enabled():
                            s.set("gen_ai.output.messages", [{"role": "assistant", "content": raw.text}])
                        if meter is not None:
                            meter.add(raw.usage)
                        return raw
                finally:
                    self.in_flight -= 1
                    elapsed += time.perf_counter() - t0
            finally:
                self._slots.release()

        raw, retries = await _retry.with_retries(attempt, self.config.retry)
        return raw, retries, elapsed

    def _chat_attributes(self, params: SamplingParams, mode: StructuredMode, attempt: int,
                         reask: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": self.provider,
            "gen_ai.request.model": self.model,
            "app.backend": self.name,
            "gen_ai.request.temperature": params.temperature,
            "gen_ai.request.top_p": params.top_p,
            "gen_ai.request.max_tokens": params.max_tokens,
            "app.structured_mode": mode,
            "app.retry_attempt": attempt,
        }
        if params.seed is not None:
            attrs["gen_ai.request.seed"] = params.seed
        if params.stop:
            attrs["gen_ai.request.stop_sequences"] = list(params.stop)
        if params.frequency_penalty:
            attrs["gen_ai.request.frequency_penalty"] = params.frequency_penalty
        if params.repetition_penalty != 1.0:
            attrs["app.repetition_penalty"] = params.repetition_penalty
        attrs["gen_ai.output.type"] = "text" if mode == "none" else "json"
        if reask:
            attrs["app.reask"] = reask
        # app.reask_reason: "length" (the last reply was cut at its budget: this request's max_tokens is
        # raised) or "invalid" (it missed the schema); app.reply_max_chars: the schema's bound on a reply.
        attrs.update({k: v for k, v in (extra or {}).items() if v is not None})
        return attrs


@dataclass
class _Ask:
    """One structured call while it is being asked: the conversation so far, the budget, the counts."""

    params: SamplingParams
    room: int | None
    """The longest reply the schema allows, in characters (``_retry.reply_room``)."""
    convo: list[ChatMessage] = field(default_factory=list)
    mode: StructuredMode | None = None
    reask: int = 0
    """Re-asks in the current mode; ``reasks`` bounds them."""
    reasked: int = 0
    """Re-asks in all."""
    reason: str | None = None
    """Why the next request is a re-ask: ``length`` or ``invalid``."""
    usage: TokenUsage = field(default_factory=TokenUsage)
    retries: int = 0
    latency: float = 0.0

    def add(self, raw: RawCompletion, retries: int, latency: float) -> None:
        self.retries += retries
        self.latency += latency
        self.usage.prompt_tokens += raw.usage.prompt_tokens
        self.usage.completion_tokens += raw.usage.completion_tokens


def _short(error: ValidationError | str, limit: int = 300) -> str:
    text = str(error) if not isinstance(error, ValidationError) else "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or 'object'}: {e['msg']}" for e in error.errors(include_url=False)[:3])
    return text if len(text) <= limit else text[:limit] + "..."

