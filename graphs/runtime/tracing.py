"""The span sinks a run's ``tracing:`` block asks for, beyond traces.jsonl."""

from __future__ import annotations

import os

from sparring.errors import InputError
from sparring.graphs.run_config import TracingConfig
from sparring.traces.spans import SpanSink


def span_exporters(config: TracingConfig) -> list[SpanSink]:
    """The OTLP exporter when ``otlp_endpoint`` is set, not started yet (it connects on the first span).

    Called before anything is written: an unset header variable or a missing
    SDK is bad input, reported like any other."""
    if config.otlp_endpoint is None:
        return []
    headers = {}
    for header, env in config.otlp_headers_env.items():
        value = os.environ.get(env)
        if not value:
            raise InputError(f"environment variable {env} (header {header}) is not set (or empty)",
                             field="tracing.otlp_headers_env")
        headers[header] = value
    from sparring.traces.otlp import OtlpSpanSink

    try:
        return [OtlpSpanSink(config.otlp_endpoint, headers, project=config.otlp_project)]
    except ImportError as exc:
        raise InputError(str(exc), field="tracing.otlp_endpoint") from None
