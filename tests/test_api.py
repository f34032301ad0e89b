"""The Python API (``sparring.run``/``arun``/``load_run``/``build_graph``/``RunConfig``) against the real
``openai`` client on the loopback OpenAI-compatible server: every kind of config, bad input, a running
event loop, no signal handler, nothing forked, process state put back, typed rows equal to the files."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import sparring
from sparring.errors import InputError
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SCENARIOS, SFT, iter_jsonl
from tests.graphs.loopback_run import canned_server, check_complete, expected_ids, write_config


def config_dict(base_url: str, dialogues: int = 4) -> dict[str, Any]:
    return {
        "name": "api-test", "seed": 3, "concurrency": 4,
        "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model",
                    "retry": {"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.05, "timeout_s": 10}},
        "principles": {"sets": ["quickstart"]},
        "dialogue": {"mode": "assistant", "max_turns": 2},
        "jobs": {"dialogues_per_scenario": dialogues // 2, "principles_per_dialogue": 1},
        "report": {"embeddings": False},
        "scenarios": [{"topic": f"topic {i}", "personas": [f"Ana{i}: a tenant", "a manager: runs the building"]}
                      for i in range(2)],
    }


def test_the_public_surface_is_small() -> None:
    assert sorted(sparring.__all__) == ["RunConfig", "RunRecords", "RunResult", "arun", "build_graph", "load_run",
                                        "run"]
    with pytest.raises(AttributeError):
        _ = sparring.execute  # type: ignore[attr-defined]


def test_run_takes_a_str_path_and_load_run_reads_typed_rows_equal_to_the_files(tmp_path: Path) -> None:
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=6, concurrency=3)
        result = sparring.run(str(config), out=str(tmp_path / "run"), progress=False)
    assert result.status == "completed" and result.run_dir == tmp_path / "run"
    assert (result.counts.dialogues, result.counts.failed, result.counts.pairs) == (6, 0, 6)
    check_complete(tmp_path / "run", expected_ids(config))
    run = sparring.load_run(str(tmp_path / "run"))
    assert isinstance(run, sparring.RunRecords) and run.status == "completed"
    for rows, name in ((run.dialogues, DIALOGUES), (run.pairs, PREFERENCES), (run.sft, SFT),
                       (run.scenarios, SCENARIOS)):
        assert [r.model_dump(mode="json") for r in rows] == list(iter_jsonl(tmp_path / "run" / name)), name
    assert run.stats is not None and run.stats["counts"]["pairs"] == 6
    assert run.manifest.model_dump(mode="json") == json.loads((tmp_path / "run" / "manifest.json").read_text())
    pairs = run.to_dataset("pairs")
    assert pairs.num_rows == 6 and {"prompt", "chosen", "rejected"} <= set(pairs.column_names)
    assert pairs[0]["chosen"] == run.pairs[0].chosen
    assert run.to_dataset("sft").num_rows == 6
    assert run.to_dataset("dialogues")["id"] == [d.id for d in run.dialogues]


def test_run_takes_a_dict_with_overrides_and_a_runconfig_built_in_code(tmp_path: Path) -> None:
    from sparring.agents.backends.backend_config import BackendConfig, RetryConfig
    from sparring.graphs.jobs import JobsConfig, ScenarioSpec

    with canned_server() as server:
        first = sparring.run(config_dict(server.base_url), out=tmp_path / "dict", progress=False,
                             overrides={"dialogue.max_turns": 4, "jobs.dialogues_per_scenario": 1})
        built = sparring.RunConfig(
            name="built", output_dir=tmp_path / "built", report={"stats": False},  # type: ignore[arg-type]
            backend=BackendConfig(kind="openai_compat", base_url=server.base_url, model="fake-model",
                                  retry=RetryConfig(attempts=2, initial_wait_s=0.01, max_wait_s=0.05)),
            jobs=JobsConfig(dialogues_per_scenario=3),
            scenarios=[ScenarioSpec(topic="cooking", personas=("Lea: a student", "a chef: cooks"))])  # type: ignore[arg-type]
        second = sparring.run(built, overrides=["concurrency=2"], progress=False)
    assert first.status == second.status == "completed"
    assert (first.counts.dialogues, first.counts.avg_turns) == (2, 4.0)
    manifest = first.manifest
    assert manifest.config["dialogue"]["max_turns"] == 4 and manifest.config_path is None
    assert second.run_dir == tmp_path / "built" and second.counts.dialogues == 3
    assert second.manifest.config["concurrency"] == 2 and not (tmp_path / "built" / "stats.json").exists()


def test_bad_input_raises_input_error_naming_the_key_and_writes_nothing(tmp_path: Path) -> None:
    data = config_dict("http://127.0.0.1:9/v1")
    data["dialogue"]["max_turnz"] = 3
    with pytest.raises(InputError, match=r"dialogue\.max_turnz.*unknown key 'max_turnz' \(did you mean 'max_turns'"):
        sparring.run(data, out=tmp_path / "a", progress=False)
    with pytest.raises(InputError, match=r"concurrency"):
        sparring.run(config_dict("http://127.0.0.1:9/v1"), out=tmp_path / "b", overrides={"concurrency": 0})
    with pytest.raises(InputError, match="not found"):
        sparring.run(str(tmp_path / "missing.yaml"), out=tmp_path / "c")
    with pytest.raises(InputError, match="not a Hugging Face Hub license id .did you mean 'apache-2.0'"):
        sparring.run({**config_dict("http://127.0.0.1:9/v1"), "license": "apache2"}, out=tmp_path / "d")
    assert not any((tmp_path / name).exists() for name in "abcd")
    with pytest.raises(InputError, match="holds no manifest.json"):
        sparring.load_run(tmp_path)


async def test_run_inside_a_running_loop_points_to_arun(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"await sparring\.arun\(\.\.\.\)"):
        sparring.run(config_dict("http://127.0.0.1:9/v1"), out=tmp_path / "run")
    assert not (tmp_path / "run").exists()


def _fd_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


async def test_arun_in_a_running_loop_installs_no_handler_forks_nothing_and_restores_the_process(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    loop_handlers = dict(getattr(loop, "_signal_handlers", {}))
    thresholds, frozen, fds = gc.get_threshold(), gc.get_freeze_count(), (_fd_identity(1), _fd_identity(2))

    def no_fork() -> int:
        raise AssertionError("the library path forked with workers: 1")

    monkeypatch.setattr(os, "fork", no_fork)
    seen: list[dict[Any, Any]] = []
    with canned_server(delay_s=0.02) as server:
        task = asyncio.create_task(sparring.arun(config_dict(server.base_url, dialogues=8), out=tmp_path / "run",
                                                 progress=False))
        while not task.done():  # watch the process while the run is under way
            seen.append({**{sig: signal.getsignal(sig) for sig in handlers},
                         "loop": dict(getattr(loop, "_signal_handlers", {}))})
            await asyncio.sleep(0.01)
        result = task.result()
    assert result.status == "completed" and result.counts.dialogues == 8
    assert len(seen) > 5 and all(s == {**handlers, "loop": loop_handlers} for s in seen)
    assert {sig: signal.getsignal(sig) for sig in handlers} == handlers
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)
    assert (_fd_identity(1), _fd_identity(2)) == fds
    assert (tmp_path / "run" / "engine.log").is_file()


async def test_cancelling_arun_stops_cleanly_and_the_same_call_continues(tmp_path: Path) -> None:
    data = config_dict("", dialogues=8)
    with canned_server(delay_s=0.05) as server:
        data["backend"]["base_url"] = server.base_url
        task = asyncio.create_task(sparring.arun(data, out=tmp_path / "run", progress=False))
        while server.stats.chat_requests < 10:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
        assert manifest["status"] == "interrupted"
        result = await sparring.arun(data, out=tmp_path / "run", progress=False)
    assert result.status == "completed" and result.counts.dialogues == 8
    assert [r.status for r in result.manifest.runs] == ["interrupted", "completed"]
    assert len({d["id"] for d in iter_jsonl(tmp_path / "run" / DIALOGUES)}) == 8


async def test_build_graph_is_invoked_on_one_job_drawn_and_embedded_as_a_subgraph(tmp_path: Path) -> None:
    from langgraph.graph import END, START, StateGraph
    from langgraph.graph.state import CompiledStateGraph
    from typing_extensions import TypedDict

    from sparring.graphs.runtime.run_request import iter_jobs, request_from_config

    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=4, concurrency=1)
        graph = sparring.build_graph(str(config))
        assert isinstance(graph, CompiledStateGraph) and graph.checkpointer is None
        mermaid = graph.get_graph().draw_mermaid()
        assert all(node in mermaid for node in ("plan", "speak", "critique", "revise", "verify"))
        job = next(iter_jobs(request_from_config(config)))
        state = await graph.ainvoke({"job": job.model_dump(mode="json")})
        assert [m["speaker"] for m in state["messages"]] == ["A", "B"]
        assert state["revisions"] and state["revisions"][0]["verified"]

        class Outer(TypedDict, total=False):
            job: dict[str, Any]
            messages: list[dict[str, Any]]

        outer = StateGraph(Outer)
        outer.add_node("selfplay", graph)
        outer.add_edge(START, "selfplay")
        outer.add_edge("selfplay", END)
        embedded = await outer.compile().ainvoke({"job": job.model_dump(mode="json")})
        assert embedded["messages"] == state["messages"]
        calls = server.stats.chat_requests
    assert calls == 14  # two dialogues of seven calls: plan and side A's brief, 2 turns, critique, revise, verify


IMPORT_CHECK = """
import sys, time
t0 = time.perf_counter()
{statement}
elapsed = time.perf_counter() - t0
heavy = sorted(m for m in ("torch", "vllm", "transformers", "sentence_transformers", "langgraph", "datasets")
               if m in sys.modules)
print(f"{{elapsed:.3f}} {{','.join(heavy)}}")
"""


@pytest.mark.parametrize("statement", [
    pytest.param("import sparring", id="import-sparring"),
    pytest.param("from sparring.graphs.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
                 id="cli-help"),
])
def test_import_sparring_and_the_cli_help_load_no_heavy_library(statement: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", IMPORT_CHECK.format(statement=statement)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    heavy = proc.stdout.split()[-1] if len(proc.stdout.split()) > 1 and not proc.stdout.split()[-1][0].isdigit() \
        else ""
    assert heavy == "", f"imported {heavy}"


def test_a_config_with_yaml_text_and_a_path_agree(tmp_path: Path) -> None:
    """A dict read from the YAML file and the file itself make the same jobs (one config, three spellings)."""
    from sparring.graphs.runtime.run_request import iter_jobs, request_from_config

    config = write_config(tmp_path, "http://127.0.0.1:9/v1", dialogues=4, concurrency=1)
    data = yaml.safe_load(config.read_text())
    ids = [j.id for j in iter_jobs(request_from_config(config))]
    assert [j.id for j in iter_jobs(request_from_config(data))] == ids
    assert [j.id for j in iter_jobs(request_from_config(sparring.RunConfig.model_validate(data)))] == ids
    assert [j.id for j in iter_jobs(request_from_config(str(config)))] == ids


TWO_LOOPS = """
import asyncio, sys
from pathlib import Path
import sparring
from sparring.graphs.runtime.run_request import iter_jobs, request_from_config
from tests.graphs.loopback_run import canned_server, write_config

with canned_server() as server:
    config = write_config(Path(sys.argv[1]), server.base_url, dialogues=2, concurrency=1)
    graph = sparring.build_graph(config)
    job = next(iter_jobs(request_from_config(config)))
    for _ in range(2):  # each asyncio.run is a new event loop
        state = asyncio.run(graph.ainvoke({"job": job.model_dump(mode="json")}))
        print(len(state["messages"]), server.stats.chat_requests)
"""


def test_a_built_graph_runs_in_one_event_loop_after_another_and_closes_its_backend(tmp_path: Path) -> None:
    from tests.cli import REPO

    proc = subprocess.run([sys.executable, "-c", TWO_LOOPS, str(tmp_path)], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["2 7", "2 14"]  # seven calls a dialogue (see above)
    assert "Unclosed" not in proc.stderr and "Event loop is closed" not in proc.stderr, proc.stderr
