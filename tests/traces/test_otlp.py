"""OTLP export against a loopback collector of the test's own: a run's spans arrive over
OTLP/HTTP (protobuf) with the same trace and span ids, parents, status and attributes, and the
header named by an environment variable."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from sparring.errors import InputError  # noqa: E402
from sparring.graphs.config import RunConfig  # noqa: E402
from sparring.graphs.store import TRACES, iter_jsonl  # noqa: E402
from sparring.traces.otlp import otel_value, traces_url  # noqa: E402
from tests.graphs.scripted_world import World  # noqa: E402
from tests.traces.scripted_run import scripted_run  # noqa: E402


class Collector:
    """Accepts POST /v1/traces and keeps every exported span (and the headers it came with)."""

    def __init__(self) -> None:
        self.spans: list = []
        self.headers: list[dict[str, str]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                for rs in request.resource_spans:
                    for ss in rs.scope_spans:
                        collector.spans.extend(ss.spans)
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if self.path == "/v1/traces" else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> Collector:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


async def test_spans_arrive_with_the_same_ids(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("SPARRING_TEST_OTLP_TOKEN", "Bearer test-collector-token")
    with Collector() as collector:
        await scripted_run(tmp_path, World(violating_turns={1: ["privacy.no-doxxing"]}).backend(), n=2,
                           tracing={"otlp_endpoint": collector.url,
                                    "otlp_headers_env": {"Authorization": "SPARRING_TEST_OTLP_TOKEN"}})
    ours = {s["span_id"]: s for s in iter_jsonl(tmp_path / TRACES)}
    theirs = {s.span_id.hex(): s for s in collector.spans}
    assert theirs.keys() == ours.keys() and len(ours) > 10
    for span_id, exported in theirs.items():
        mine = ours[span_id]
        assert exported.trace_id.hex() == mine["trace_id"]
        assert (exported.parent_span_id.hex() or None) == mine["parent_id"]
        assert exported.name.split(" ")[0] == mine["name"]
        assert exported.start_time_unix_nano == int(mine["start_time"] * 1e9)
        attrs = {kv.key: kv.value for kv in exported.attributes}
        if mine["name"] == "chat":
            assert attrs["gen_ai.usage.output_tokens"].int_value == mine["attributes"]["gen_ai.usage.output_tokens"]
            assert "turn #" in attrs["gen_ai.output.messages"].string_value or "{" in \
                attrs["gen_ai.output.messages"].string_value
    assert all(h.get("authorization") == "Bearer test-collector-token" for h in collector.headers)
    assert "test-collector-token" not in (tmp_path / "manifest.json").read_text()


async def test_an_unset_header_variable_is_bad_input_before_anything_is_written(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("SPARRING_TEST_UNSET", raising=False)
    with pytest.raises(InputError, match="SPARRING_TEST_UNSET"):
        await scripted_run(tmp_path / "run", World().backend(), n=1,
                           tracing={"otlp_endpoint": "http://127.0.0.1:9",
                                    "otlp_headers_env": {"x-api-key": "SPARRING_TEST_UNSET"}})
    assert not (tmp_path / "run").exists()


def test_config_takes_variable_names_only():
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        RunConfig.model_validate({"tracing": {"otlp_endpoint": "http://x:4318",
                                              "otlp_headers_env": {"Authorization": "Bearer abc def"}}})
    with pytest.raises(ValueError, match="http:// or https://"):
        RunConfig.model_validate({"tracing": {"otlp_endpoint": "localhost:4317"}})


def test_urls_and_attribute_values():
    assert traces_url("http://h:4318") == "http://h:4318/v1/traces"
    assert traces_url("http://h:4318/") == "http://h:4318/v1/traces"
    assert traces_url("https://h/otlp/v1/traces") == "https://h/otlp/v1/traces"
    assert otel_value(["a", "b"]) == ["a", "b"] and otel_value([1, 2.5]) == [1, 2.5]
    assert otel_value([{"role": "user", "content": "hi"}]) == '[{"role": "user", "content": "hi"}]'
    assert otel_value(["a", None]) == '["a", null]'


def test_missing_sdk_is_bad_input_with_the_install_hint(monkeypatch):
    import sys

    from sparring.graphs.config import TracingConfig
    from sparring.graphs.tracing import span_exporters

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(InputError, match=r"pip install 'sparring\[otel\]'"):
        span_exporters(TracingConfig(otlp_endpoint="http://127.0.0.1:9"))
