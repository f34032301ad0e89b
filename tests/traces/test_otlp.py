"""OTLP export against a loopback collector of the test's own: a run's spans arrive over
OTLP/HTTP (protobuf) with the same trace and span ids, parents, status and attributes, and the
header named by an environment variable."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("opentelemetry.sdk")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (  # noqa: E402
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from sparring.errors import InputError  # noqa: E402
from sparring.graphs.run_config import RunConfig  # noqa: E402
from sparring.traces.otlp import conventions, otel_value, traces_url  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402
from sparring.traces.spans import Span  # noqa: E402
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
    ours = {s["span_id"]: s for s in iter_spans(tmp_path)}
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

    from sparring.graphs.run_config import TracingConfig
    from sparring.graphs.runtime.tracing import span_exporters

    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(InputError, match=r"pip install 'sparring\[otel\]'"):
        span_exporters(TracingConfig(otlp_endpoint="http://127.0.0.1:9"))


def _chat_span(shown: list[dict], said: str, finish: str | None) -> Span:
    return Span(name="chat", trace_id="0" * 31 + "1", span_id="0" * 15 + "2", parent_id=None, start_time=1.0,
                end_time=2.0, attributes={"gen_ai.operation.name": "chat", "gen_ai.conversation.id": "run-d1",
                                          "gen_ai.input.messages": shown,
                                          "gen_ai.output.messages": [{"role": "assistant", "content": said}],
                                          "gen_ai.response.finish_reasons": [finish]})


@settings(max_examples=100, deadline=None)
@given(shown=st.lists(st.fixed_dictionaries({"role": st.sampled_from(["system", "user", "assistant"]),
                                             "content": st.text()}), max_size=8),
       said=st.text(), finish=st.sampled_from(["stop", "length", None]))
def test_chat_spans_carry_every_message_in_the_conventions_shape(shown: list[dict], said: str,
                                                                 finish: str | None) -> None:
    """What the agent was shown and said reaches the receiver whole, whatever the text: the GenAI
    ``parts`` shape (each output message with a finish reason), input.value and output.value."""
    attrs = conventions(_chat_span(shown, said, finish))
    assert attrs["openinference.span.kind"] == "LLM" and attrs["session.id"] == "run-d1"
    parts = json.loads(attrs["gen_ai.input.messages"])
    assert [(m["role"], [p["content"] for p in m["parts"] if p["type"] == "text"]) for m in parts] == \
        [(m["role"], [m["content"]]) for m in shown]
    (out,) = json.loads(attrs["gen_ai.output.messages"])
    assert out == {"role": "assistant", "parts": [{"type": "text", "content": said}], "finish_reason": finish or "stop"}
    assert json.loads(attrs["input.value"]) == shown and attrs["output.value"] == said
    assert all(isinstance(v, (str, bool, int, float, list)) for v in attrs.values())


def test_the_root_span_has_a_kind_and_the_dialogue_as_input_and_output() -> None:
    root = Span(name="invoke_workflow", trace_id="0" * 31 + "1", span_id="0" * 15 + "3", parent_id=None,
                start_time=1.0, end_time=2.0, attributes={
                    "gen_ai.operation.name": "invoke_workflow", "gen_ai.conversation.id": "run-d1",
                    "app.mode": "assistant", "app.principle_ids": ["privacy.no-doxxing"],
                    "app.scenario": {"topic": "rent"}, "app.goal": "fix the heating", "app.stop_reason": "max_turns",
                    "app.is_violation": True, "app.turns": 2, "app.transcript": ["Ana: hi", "AI assistant: hello"]})
    attrs = conventions(root)
    assert attrs["openinference.span.kind"] == "CHAIN" and attrs["input.mime_type"] == "application/json"
    assert json.loads(attrs["input.value"]) == {"scenario": {"topic": "rent"}, "goal": "fix the heating",
                                                "mode": "assistant", "principle_ids": ["privacy.no-doxxing"]}
    assert json.loads(attrs["output.value"]) == {"stop_reason": "max_turns", "is_violation": True, "turns": 2,
                                                 "transcript": ["Ana: hi", "AI assistant: hello"]}
    assert "app.transcript" not in attrs and "app.scenario" not in attrs
