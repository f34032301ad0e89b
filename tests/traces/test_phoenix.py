"""Traces the observability tools show: runs exported over OTLP to a real Arize Phoenix (started on
loopback from its own environment, .venv-phoenix, made by scripts/install.sh dev), read back through
Phoenix's own REST API: every span and its tree, each chat span showing what the agent was shown and
what it said, the root span with a kind, an input and an output, one session per dialogue and run,
and a run routed to its own project."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import sparring
from sparring.graphs.runtime.store import DIALOGUES, iter_jsonl
from sparring.traces.read import iter_spans
from tests.cli import REPO
from tests.engines import free_port, stop_group
from tests.graphs.loopback_run import canned_server

pytest.importorskip("opentelemetry.sdk")

START_TIMEOUT_S = 240.0


def phoenix_executable() -> Path | None:
    venv = Path(os.environ.get("SPARRING_PHOENIX_VENV", REPO / ".venv-phoenix"))
    exe = venv / "bin" / "phoenix"
    if exe.exists():
        return exe
    found = shutil.which("phoenix")
    return Path(found) if found else None


def get(url: str, timeout: float = 10) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.load(resp)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    exe = phoenix_executable()
    if exe is None:
        pytest.skip("Arize Phoenix is not installed: scripts/install.sh dev puts it in .venv-phoenix")
    work = tmp_path_factory.mktemp("phoenix")
    port = free_port()
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("PHOENIX_", "OTEL_"))},
           "PHOENIX_HOST": "127.0.0.1", "PHOENIX_PORT": str(port), "PHOENIX_GRPC_PORT": str(free_port()),
           "PHOENIX_WORKING_DIR": str(work), "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
           "PHOENIX_TELEMETRY_ENABLED": "false", "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
           "PHOENIX_ENABLE_MCP_SERVER": "false", "PHOENIX_LOG_MIGRATIONS": "false"}
    log = (work / "phoenix.log").open("wb")
    proc = subprocess.Popen([str(exe), "serve"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"phoenix exited with {proc.returncode}: "
                                     f"{(work / 'phoenix.log').read_text(errors='replace')[-3000:]}")
            with contextlib.suppress(urllib.error.URLError, OSError):
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as resp:
                    if resp.status == 200:
                        break
            if time.monotonic() > deadline:
                raise AssertionError(f"phoenix did not answer /healthz within {START_TIMEOUT_S:.0f}s")
            time.sleep(0.5)
        yield url
    finally:
        stop_group(proc)
        log.close()


def spans_of(phoenix: str, project: str, expected: int, timeout: float = 60) -> list[dict[str, Any]]:
    """Every span of ``project``, once Phoenix has ingested ``expected`` of them (ingestion lags)."""
    deadline = time.monotonic() + timeout
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        spans, cursor = [], None
        try:
            while True:
                query = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
                page = get(f"{phoenix}/v1/projects/{urllib.parse.quote(project)}/spans?"
                           f"{urllib.parse.urlencode(query)}")
                spans += page["data"]
                cursor = page.get("next_cursor")
                if not cursor:
                    break
        except urllib.error.HTTPError as exc:
            if exc.code != 404:  # 404 until the project's first span arrives
                raise
        if len(spans) >= expected:
            return spans
        time.sleep(0.5)
    raise AssertionError(f"phoenix holds {len(spans)} spans of {project}, expected {expected}")


def config(base_url: str, phoenix: str, project: str | None) -> dict[str, Any]:
    tracing: dict[str, Any] = {"otlp_endpoint": phoenix}
    if project:
        tracing["otlp_project"] = project
    return {
        "name": "phoenix-test", "seed": 9, "concurrency": 4,
        "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model"},
        "principles": {"sets": ["quickstart"]}, "dialogue": {"mode": "assistant", "max_turns": 4},
        "jobs": {"dialogues_per_scenario": 2, "principles_per_dialogue": 1}, "report": {"stats": False},
        "tracing": tracing,
        "scenarios": [{"topic": "rent", "goal": "get the heating fixed",
                       "personas": ["Ana: a tenant with a cold flat", "a building manager: runs repairs"]}],
    }


def messages_of(attributes: dict[str, Any], prefix: str) -> list[dict[str, str]]:
    """Phoenix's flattened ``llm.input_messages.N.message.role/content`` back as a list of messages."""
    out: dict[int, dict[str, str]] = {}
    for key, value in attributes.items():
        if key.startswith(prefix + "."):
            index, _, field = key[len(prefix) + 1:].partition(".message.")
            if field in ("role", "content"):
                out.setdefault(int(index), {})[field] = value
    return [out[i] for i in sorted(out)]


def flat(attributes: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Phoenix returns attributes flat (dotted keys) or nested, by version: make them flat."""
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flat(value, name))
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            for i, item in enumerate(value):
                out.update(flat(item, f"{name}.{i}"))
        else:
            out[name] = value
    return out


def test_phoenix_shows_what_every_agent_was_shown_and_said(phoenix: str, tmp_path: Path) -> None:
    project = "sparring-run-a"
    with canned_server() as server:
        first = sparring.run(config(server.base_url, phoenix, project), out=tmp_path / "a", progress=False)
        second = sparring.run(config(server.base_url, phoenix, project), out=tmp_path / "b", progress=False)
    assert first.status == second.status == "completed"
    ours = {s["span_id"]: s for run in ("a", "b") for s in iter_spans(tmp_path / run)}
    theirs = {s["context"]["span_id"]: s for s in spans_of(phoenix, project, len(ours))}
    assert theirs.keys() == ours.keys()
    chats = 0
    for span_id, mine in ours.items():
        shown = theirs[span_id]
        attrs = flat(shown.get("attributes") or {})
        assert shown["context"]["trace_id"] == mine["trace_id"]
        assert shown.get("parent_id") == mine["parent_id"]
        assert attrs["session.id"] == mine["attributes"]["gen_ai.conversation.id"]
        if mine["name"] == "chat":
            chats += 1
            assert shown["span_kind"] == "LLM"
            sent = mine["attributes"]["gen_ai.input.messages"]
            assert messages_of(attrs, "llm.input_messages") == [{"role": m["role"], "content": m["content"]}
                                                                for m in sent]
            said = mine["attributes"]["gen_ai.output.messages"][0]["content"]
            assert messages_of(attrs, "llm.output_messages") == [{"role": "assistant", "content": said}]
            assert json.loads(attrs["input.value"]) == sent and attrs["output.value"] == said
        elif mine["name"] == "invoke_workflow":
            assert shown["span_kind"] == "CHAIN"
            given, outcome = json.loads(attrs["input.value"]), json.loads(attrs["output.value"])
            assert given["scenario"]["topic"] == "rent" and given["goal"]
            record = next(d for run in ("a", "b") for d in iter_jsonl(tmp_path / run / DIALOGUES)
                          if d["trace_id"] == mine["trace_id"])
            assert outcome["transcript"] == [f"{m['name']}: {m['content']}" for m in record["messages"]]
            assert outcome["stop_reason"] == record["stop_reason"]
        else:
            assert shown["span_kind"] == "AGENT"
    assert chats >= 2 * 2 * 6
    sessions = {s["attributes"]["gen_ai.conversation.id"] for s in ours.values()
                if s["name"] == "invoke_workflow"}
    listed = get(f"{phoenix}/v1/projects/{project}/sessions?limit=100")["data"]
    assert {s["session_id"] for s in listed} == sessions and len(sessions) == 4  # 2 runs x 2 dialogues


def test_a_run_goes_to_its_own_project_or_the_default(phoenix: str, tmp_path: Path) -> None:
    with canned_server() as server:
        sparring.run(config(server.base_url, phoenix, "sparring-run-b"), out=tmp_path / "own", progress=False)
        sparring.run(config(server.base_url, phoenix, None), out=tmp_path / "default", progress=False)
    own = [s["trace_id"] for s in iter_spans(tmp_path / "own")]
    default = [s["trace_id"] for s in iter_spans(tmp_path / "default")]
    assert {s["context"]["trace_id"] for s in spans_of(phoenix, "sparring-run-b", len(own))} == set(own)
    in_default = {s["context"]["trace_id"] for s in spans_of(phoenix, "default", len(default))}
    assert set(default) <= in_default and not set(own) & in_default
