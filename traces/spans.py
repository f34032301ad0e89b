"""Spans: one per unit of work, named after the OpenTelemetry GenAI conventions.

A dialogue is one trace: ``invoke_workflow`` at the root, then ``plan``,
``invoke_agent`` (persona turns, critique, revision, verification) and ``chat``
(each model call). The current span and tracer live in context variables, so
code deep in a backend opens a child span without being handed anything, and
concurrent dialogues on one event loop never see each other's spans.

With no tracer active every call here is a cheap no-op: library users who do
not trace pay almost nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

SpanSink = Callable[["Span"], None]

# Copied from a parent span to its children, so a ``chat`` span deep in a
# backend knows its dialogue, its agent and the turn it is about without being
# told (replay matches recorded calls by agent and turn).
INHERITED = ("gen_ai.conversation.id", "gen_ai.agent.name", "app.turn_index")


# Ids need to be unique, not unpredictable: a private PRNG (seeded from the OS once) costs
# half of os.urandom and, unlike it, never releases the GIL, which a busy event loop
# then waits to take back. Private, so code that seeds ``random`` cannot make ids repeat.
_ids = random.Random()


def new_trace_id() -> str:
    return f"{_ids.getrandbits(128):032x}"


def new_span_id() -> str:
    return f"{_ids.getrandbits(64):016x}"


@dataclass(slots=True)
class Span:
    """One finished or running unit of work."""

    name: str
    """Operation: ``invoke_workflow``, ``plan``, ``invoke_agent``, ``chat``, ..."""
    trace_id: str
    """32 hex digits shared by every span of one dialogue."""
    span_id: str
    """16 hex digits."""
    parent_id: str | None
    """Enclosing span, None at the root."""
    start_time: float
    """Unix time, seconds."""
    end_time: float | None = None
    status: str = "ok"
    """``ok`` or ``error``."""
    error: str | None = None
    """Error type and message when status is ``error``."""
    attributes: dict[str, Any] = field(default_factory=dict)
    """``gen_ai.*`` and ``app.*`` attributes."""

    def set(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def update(self, values: dict[str, Any]) -> None:
        self.attributes.update(values)

    def fail(self, exc: BaseException | str) -> None:
        self.status = "error"
        self.error = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"

    @property
    def duration_s(self) -> float:
        return (self.end_time or time.time()) - self.start_time

    def to_dict(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id, "span_id": self.span_id, "parent_id": self.parent_id,
            "name": self.name, "start_time": self.start_time, "end_time": self.end_time,
            "status": self.status, "error": self.error, "attributes": self.attributes,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Span:
        return cls(name=d["name"], trace_id=d["trace_id"], span_id=d["span_id"], parent_id=d.get("parent_id"),
                   start_time=d["start_time"], end_time=d.get("end_time"), status=d.get("status", "ok"),
                   error=d.get("error"), attributes=dict(d.get("attributes") or {}))


class _NoopSpan:
    """Stands in for a span when nothing is traced."""

    __slots__ = ()
    trace_id = None
    span_id = None

    def set(self, key: str, value: Any) -> None:
        pass

    def update(self, values: dict[str, Any]) -> None:
        pass

    def fail(self, exc: BaseException | str) -> None:
        pass


NOOP_SPAN = _NoopSpan()


class Tracer:
    """Hands finished spans to sinks (the run's traces.jsonl, an OTLP exporter, a test list)."""

    def __init__(self, sinks: list[SpanSink] | None = None, *, record_content: bool = True) -> None:
        self.sinks: list[SpanSink] = list(sinks or [])
        self.record_content = record_content
        """When False, prompts and completions are left out of spans."""

    def emit(self, span: Span) -> None:
        for sink in self.sinks:
            sink(span)

    def close(self) -> None:
        """Close every sink that has a ``close`` (files, exporters flushing their last batch)."""
        for sink in self.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                close()


_tracer: ContextVar[Tracer | None] = ContextVar("sparring_tracer", default=None)
_current: ContextVar[Span | None] = ContextVar("sparring_span", default=None)


def current_tracer() -> Tracer | None:
    return _tracer.get()


def current_span() -> Span | None:
    return _current.get()


def content_enabled() -> bool:
    tracer = _tracer.get()
    return tracer is not None and tracer.record_content


@contextmanager
def use_tracer(tracer: Tracer | None) -> Iterator[Tracer | None]:
    token = _tracer.set(tracer)
    try:
        yield tracer
    finally:
        _tracer.reset(token)


@contextmanager
def span(name: str, attributes: dict[str, Any] | None = None, *, trace_id: str | None = None,
         reraise: bool = True) -> Iterator[Span | _NoopSpan]:
    """Open a span under the current one; a new trace when there is none or ``trace_id`` is given.

    An exception escaping the block marks the span as failed and propagates.
    """
    tracer = _tracer.get()
    if tracer is None:
        yield NOOP_SPAN
        return
    parent = None if trace_id else _current.get()
    attrs: dict[str, Any] = {}
    if parent is not None:
        for key in INHERITED:
            if key in parent.attributes:
                attrs[key] = parent.attributes[key]
    if attributes:
        attrs.update(attributes)
    s = Span(name=name, trace_id=trace_id or (parent.trace_id if parent else new_trace_id()),
             span_id=new_span_id(), parent_id=parent.span_id if parent else None,
             start_time=time.time(), attributes=attrs)
    token = _current.set(s)
    try:
        yield s
    except BaseException as exc:
        s.fail(exc)
        if reraise:
            raise
    finally:
        _current.reset(token)
        s.end_time = time.time()
        tracer.emit(s)
