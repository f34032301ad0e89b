"""LangGraph's own tools: langgraph.json names an importable compiled self-play graph, and the real
``langgraph dev`` server (the LangGraph CLI's local server that LangGraph Studio opens) loads it and
runs one dialogue against the loopback OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.cli import REPO
from tests.graphs.loopback_run import canned_server, write_config

LANGGRAPH_JSON = REPO / "langgraph.json"
START_TIMEOUT_S = 180


def load_factory(spec: str) -> Any:
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr)


def test_langgraph_json_names_an_importable_compiled_graph(tmp_path: Path) -> None:
    from langgraph.graph.state import CompiledStateGraph

    spec = json.loads(LANGGRAPH_JSON.read_text())
    assert spec["dependencies"] and set(spec["graphs"]) == {"selfplay"}
    entry = spec["graphs"]["selfplay"]
    assert "/" not in entry["path"]  # a module path: a file path would load the file outside the package
    factory = load_factory(entry["path"])
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", dialogues=2, concurrency=1)
    graph = asyncio.run(factory({"configurable": {"sparring_config": str(config), "__is_for_execution__": False}}))
    assert isinstance(graph, CompiledStateGraph) and graph.checkpointer is None
    assert {"plan", "speak", "critique", "revise", "verify"} <= set(graph.get_graph().nodes)


def test_the_studio_module_prints_a_configs_jobs_as_inputs(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", dialogues=4, concurrency=1)
    proc = subprocess.run([sys.executable, "-m", "sparring.graphs.studio", str(config)], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    inputs = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(inputs) == 4 and all(set(i) == {"job"} and i["job"]["scenario"]["topic"] for i in inputs)


def _post(url: str, body: dict[str, Any], timeout: float = 120) -> Any:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return json.load(resp)


def _wait_for_api(proc: subprocess.Popen[str], log: Path) -> str:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = re.sub(r"\x1b\[[0-9;]*m", "", log.read_text(errors="replace"))  # colours, whatever NO_COLOR says
        found = re.search(r"API: (http://127\.0\.0\.1:\d+)", text)
        if found:
            try:
                with urllib.request.urlopen(f"{found.group(1)}/ok", timeout=5) as resp:
                    if resp.status == 200:
                        return found.group(1)
            except (urllib.error.URLError, OSError):
                pass
        if proc.poll() is not None:
            raise AssertionError(f"langgraph dev exited with {proc.returncode}:\n{text[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"langgraph dev did not answer within {START_TIMEOUT_S}s:\n{log.read_text()[-3000:]}")


def test_langgraph_dev_loads_the_graph_and_runs_a_dialogue(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "langgraph"
    if not exe.exists() and shutil.which("langgraph") is None:
        pytest.skip("the LangGraph CLI is not installed (scripts/install.sh dev installs it)")
    from sparring.graphs.runtime.run_request import iter_jobs, request_from_config
    from tests.engines import free_port, stop_group

    cwd = tmp_path / "server"  # it writes .langgraph_api/ into its working directory
    cwd.mkdir()
    log = tmp_path / "langgraph.log"
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=2, concurrency=1)
        job = next(iter_jobs(request_from_config(config)))
        env = {**os.environ, "SPARRING_CONFIG": str(config), "LANGGRAPH_CLI_NO_ANALYTICS": "1",
               "LANGGRAPH_NO_VERSION_CHECK": "true", "LANGSMITH_TRACING": "false", "PYTHONPATH": str(REPO)}
        with log.open("w") as out:
            proc = subprocess.Popen([str(exe) if exe.exists() else "langgraph", "dev", "--no-browser", "--no-reload",
                                     "--host", "127.0.0.1", "--port", str(free_port()),
                                     "--config", str(LANGGRAPH_JSON)],
                                    cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, text=True,
                                    start_new_session=True)
        try:
            api = _wait_for_api(proc, log)
            assistants = _post(f"{api}/assistants/search", {"graph_id": "selfplay"})
            assert [a["graph_id"] for a in assistants] == ["selfplay"]
            state = _post(f"{api}/runs/wait", {"assistant_id": "selfplay",
                                               "input": {"job": job.model_dump(mode="json")}})
        finally:
            stop_group(proc)
        calls = server.stats.chat_requests
    assert "__error__" not in state, state  # a graph error still answers 200
    assert [m["speaker"] for m in state["messages"]] == ["A", "B"]
    assert state["job"]["id"] == job.id and state["revisions"][0]["verified"] is True
    assert calls == 7  # plan and side A's brief, two turns, critique, revise, verify: the server ran our graph on our backend
