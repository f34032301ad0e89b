"""Export spans to an OpenTelemetry collector over OTLP/HTTP (protobuf), beside traces.jsonl.

The same spans, the same ids: a trace id in dialogues.jsonl finds the trace
in Jaeger, Tempo, Honeycomb or any OTLP backend. Their attributes take the
shape of the OpenTelemetry GenAI conventions (``conventions``), which Arize
Phoenix, Langfuse and others read to show each model call's messages; the
run's traces.jsonl keeps the OpenAI message shape. Spans are handed to the
SDK's batch processor, which exports from its own thread, so the event loop
only pays for the conversion. Needs ``pip install 'sparring[otel]'``;
nothing is imported until a sink is made.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from .spans import Span

INSTALL_HINT = "OTLP export needs the OpenTelemetry SDK: pip install 'sparring[otel]'"
PROJECT_ATTRIBUTE = "openinference.project.name"
"""The resource attribute that picks the project in Arize Phoenix (and Arize)."""


def traces_url(endpoint: str) -> str:
    """``http://host:4318`` -> ``http://host:4318/v1/traces``; a URL with a path is kept as given."""
    return endpoint.rstrip("/") + "/v1/traces" if urlsplit(endpoint).path in ("", "/") else endpoint


def otel_value(value: Any) -> Any:
    """An attribute value OpenTelemetry accepts: primitives, lists of one primitive type, else JSON text."""
    if isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        if all(isinstance(v, str) for v in value) or all(isinstance(v, bool) for v in value):
            return list(value)
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return list(value)
    return json.dumps(value, ensure_ascii=False, default=str)


def otel_name(span: Span) -> str:
    """The GenAI conventions name a span ``{operation} {agent or model}``."""
    a = span.attributes
    detail = a.get("gen_ai.request.model") if span.name == "chat" else a.get("gen_ai.agent.name")
    return f"{span.name} {detail}" if detail else span.name


def _parts(message: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-shape message (``role``/``content``) in the GenAI conventions' shape (``role``/``parts``)."""
    out: dict[str, Any] = {"role": message.get("role", "user"),
                           "parts": [{"type": "text", "content": str(message.get("content") or "")}]}
    if message.get("name"):
        out["name"] = message["name"]
    return out


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def conventions(span: Span) -> dict[str, Any]:
    """The span's attributes as OTLP receivers read them (traces.jsonl keeps the OpenAI message shape).

    - chat: ``gen_ai.input.messages`` / ``gen_ai.output.messages`` as JSON in the GenAI conventions'
      ``parts`` shape (each output message with its ``finish_reason``), plus ``input.value`` (the
      messages) and ``output.value`` (the reply), which tables of Phoenix and Langfuse show;
    - every span: a span kind (``openinference.span.kind``: CHAIN for a dialogue, AGENT for an agent's
      step, LLM for a model call) and ``session.id`` = ``gen_ai.conversation.id`` (unique per run);
    - the dialogue's root span: its scenario and goal as input, its outcome and transcript as output.
    """
    a = {k: v for k, v in span.attributes.items() if v is not None}
    if "gen_ai.conversation.id" in a:
        a["session.id"] = a["gen_ai.conversation.id"]
    if span.name == "chat":
        a["openinference.span.kind"] = "LLM"
        shown, said = a.pop("gen_ai.input.messages", None), a.pop("gen_ai.output.messages", None)
        if shown is not None:
            a["gen_ai.input.messages"] = _json([_parts(m) for m in shown])
            a["input.value"], a["input.mime_type"] = _json(shown), "application/json"
        if said is not None:
            finish = next(iter(a.get("gen_ai.response.finish_reasons") or []), None) or "stop"
            a["gen_ai.output.messages"] = _json([{**_parts(m), "finish_reason": finish} for m in said])
            a["output.value"] = "\n".join(str(m.get("content") or "") for m in said)
            a["output.mime_type"] = "text/plain"
    elif span.name == "invoke_workflow":
        a["openinference.span.kind"] = "CHAIN"
        given = {"scenario": a.pop("app.scenario", None), "goal": a.pop("app.goal", None),
                 "mode": a.get("app.mode"), "principle_ids": a.get("app.principle_ids")}
        a["input.value"], a["input.mime_type"] = _json({k: v for k, v in given.items() if v is not None}), \
            "application/json"
        outcome = {key.removeprefix("app."): a[key] for key in (
            "app.stop_reason", "app.is_violation", "app.violated_principles", "app.turns", "app.revisions")
            if key in a}
        transcript = a.pop("app.transcript", None)
        if transcript is not None:
            outcome["transcript"] = transcript
        if outcome:
            a["output.value"], a["output.mime_type"] = _json(outcome), "application/json"
    else:
        a["openinference.span.kind"] = "AGENT"
    return {k: otel_value(v) for k, v in a.items()}


class OtlpSpanSink:
    """A span sink that exports to ``endpoint``; ``close()`` flushes what is still queued."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None, *, service_name: str = "sparring",
                 project: str | None = None, timeout_s: float = 10.0) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: F401
            from opentelemetry.sdk.trace import ReadableSpan  # noqa: F401
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self.endpoint = traces_url(endpoint)
        self._headers = dict(headers or {})
        self._service_name = service_name
        self._project = project
        self._timeout_s = timeout_s
        self._processor: Any = None
        self._resource: Any = None
        self._scope: Any = None

    def _start(self) -> None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        exporter = OTLPSpanExporter(endpoint=self.endpoint, headers=self._headers, timeout=self._timeout_s)
        self._processor = BatchSpanProcessor(exporter)
        # Resource.create also reads OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME; what is set here wins.
        attributes = {"service.name": self._service_name}
        if self._project:
            attributes[PROJECT_ATTRIBUTE] = self._project
        self._resource = Resource.create(attributes)
        self._scope = InstrumentationScope("sparring")

    def __call__(self, span: Span) -> None:
        if self._processor is None:
            self._start()
        self._processor.on_end(self.convert(span))

    def convert(self, span: Span) -> Any:
        """Our span as an SDK ReadableSpan: same ids, parent, times (ns), status and attributes."""
        from opentelemetry.sdk.trace import ReadableSpan
        from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

        flags = TraceFlags(TraceFlags.SAMPLED)
        trace_id = int(span.trace_id, 16)
        context = SpanContext(trace_id=trace_id, span_id=int(span.span_id, 16), is_remote=False, trace_flags=flags)
        parent = None if span.parent_id is None else SpanContext(
            trace_id=trace_id, span_id=int(span.parent_id, 16), is_remote=False, trace_flags=flags)
        status = Status(StatusCode.ERROR, span.error) if span.status == "error" else Status(StatusCode.OK)
        end = span.end_time if span.end_time is not None else span.start_time
        return ReadableSpan(
            name=otel_name(span), context=context, parent=parent, resource=self._resource,
            attributes=conventions(span),
            kind=SpanKind.CLIENT if span.name == "chat" else SpanKind.INTERNAL, status=status,
            start_time=int(span.start_time * 1e9), end_time=int(end * 1e9), instrumentation_scope=self._scope)

    def close(self) -> None:
        processor, self._processor = self._processor, None
        if processor is not None:
            processor.shutdown()  # exports what is queued, then stops the worker thread
