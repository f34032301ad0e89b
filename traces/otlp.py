"""Export spans to an OpenTelemetry collector over OTLP/HTTP (protobuf), beside traces.jsonl.

The same spans, the same ids: a trace id in dialogues.jsonl finds the trace
in Jaeger, Tempo, Honeycomb or any OTLP backend. Spans are handed to the
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


class OtlpSpanSink:
    """A span sink that exports to ``endpoint``; ``close()`` flushes what is still queued."""

    def __init__(self, endpoint: str, headers: dict[str, str] | None = None, *, service_name: str = "sparring",
                 timeout_s: float = 10.0) -> None:
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: F401
            from opentelemetry.sdk.trace import ReadableSpan  # noqa: F401
        except ImportError as exc:
            raise ImportError(INSTALL_HINT) from exc
        self.endpoint = traces_url(endpoint)
        self._headers = dict(headers or {})
        self._service_name = service_name
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
        self._resource = Resource.create({"service.name": self._service_name})
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
            attributes={k: otel_value(v) for k, v in span.attributes.items() if v is not None},
            kind=SpanKind.CLIENT if span.name == "chat" else SpanKind.INTERNAL, status=status,
            start_time=int(span.start_time * 1e9), end_time=int(end * 1e9), instrumentation_scope=self._scope)

    def close(self) -> None:
        processor, self._processor = self._processor, None
        if processor is not None:
            processor.shutdown()  # exports what is queued, then stops the worker thread
