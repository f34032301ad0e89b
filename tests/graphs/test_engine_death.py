"""The engine dies mid-run. For real: ``sparring run`` on the embedded engine, its engine-core
process (``VLLM::EngineCore``, the child of the sparring process that vLLM starts) SIGKILLed once a
dialogue is stored, as the kernel's out-of-memory killer would. The run stops with exit 1 and one
line on stderr; what was written stays whole and no dialogue is failed by the death; ``sparring
resume`` starts a new engine and finishes the run, every dialogue exactly once.

Without an engine: the vLLM adapter turns a dead engine's error into ``EngineDied`` (never retried),
and a run on a scripted model that raises it stops the same way and resumes exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sparring.agents.backends import BackendConfig, SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.agents.backends.vllm_engine import VLLMBackend
from sparring.errors import EngineDied
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import request_from_config, request_from_run_dir
from tests.cli import run_cli
from tests.engines import seeded
from tests.graphs.loopback_run import (
    JSONL,
    assert_processes_gone,
    check_consistent,
    expected_ids,
    read_lines,
    start_cli,
    write_config,
)
from tests.graphs.scripted_world import World

ENGINE_CORE = "VLLM::EngineCore"
"""The title vLLM gives its engine-core process (its model runner is a child of it, ``VLLM::Worker``)."""

# Five short dialogues, four at once: the first is stored while the others are mid-way. Mechanics
# only, so the cheapest dialogue there is (no critique, one planner call, one characteristic): the
# two engine starts (~30 s each) are most of the test's time.
CONFIG = f"""
name: engine-death
seed: {seeded(5)}
concurrency: 4
report: {{embeddings: false}}
principles: {{sets: [quickstart]}}
dialogue: {{mode: assistant, max_turns: 2, critique: false, characteristics: [formality level]}}
jobs: {{dialogues_per_scenario: 5, principles_per_dialogue: 0}}
sampling:
  planner: {{max_tokens: 600}}
  persona: {{max_tokens: 30}}
scenarios:
  - topic: travel
    personas: ["Ines: a commuter whose train was cancelled", "a rail agent: knows refunds"]
"""


def children(pid: int, title: str) -> list[int]:
    """The live child processes of ``pid`` whose process title (first command-line word) is ``title`` (from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        state, parent = stat.rpartition(")")[2].split()[:2]
        if int(parent) == pid and command == title and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


def stored(run_dir: Path) -> int:
    path = run_dir / "dialogues.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def wait_for_engine_and_a_dialogue(proc: subprocess.Popen[str], run_dir: Path, timeout: float = 900) -> int:
    """The engine-core process's id, once the run has stored its first dialogue."""
    deadline = time.monotonic() + timeout
    engine: list[int] = []
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (status {proc.returncode}) before the kill:\n{out}\n{err}")
        engine = engine or children(proc.pid, ENGINE_CORE)
        if engine and stored(run_dir) >= 1:
            return engine[0]
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"no engine process ({engine}) or no dialogue stored within {timeout:.0f} s")


@pytest.mark.engine
def test_engine_killed_mid_run_stops_the_run_and_resume_finishes_it(engine_in_subprocess: None,
                                                                      tmp_path: Path) -> None:
    config = tmp_path / "engine-death.yaml"
    config.write_text(CONFIG)
    run_dir = tmp_path / "run"
    expected = expected_ids(config)
    proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
    engine = wait_for_engine_and_a_dialogue(proc, run_dir)
    runners = children(engine, "VLLM::Worker")
    os.kill(engine, signal.SIGKILL)
    out, err = proc.communicate(timeout=300)

    # Exit 1 and one line that says what happened; no traceback, nothing else on the terminal.
    written = read_lines(run_dir / "dialogues.jsonl")  # every line whole
    ok = [d for d in written if d["status"] == "ok"]  # (a failed one: the tiny model's own doing, checked below)
    assert proc.returncode == 1, err
    assert out == ""
    assert err.splitlines() == [
        f"error: the embedded engine (pid {engine}) died mid-run (killed by SIGKILL, the out-of-memory killer's "
        f"signal); {len(ok)} of {len(expected)} dialogues are stored; resume with: sparring resume {run_dir}"]
    assert_processes_gone([engine, *runners])  # vLLM's model runner went with its engine

    # Nothing torn, nothing failed by the death: no record of an unfinished dialogue, none blames the engine.
    for name in JSONL:
        read_lines(run_dir / name)
    assert 1 <= len(written) < len(expected)
    assert "EngineDied" not in json.dumps([d.get("error") for d in written])
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "engine_died"
    attempt = manifest["runs"][0]
    assert attempt["status"] == "engine_died" and f"pid {engine}" in attempt["error"]
    assert manifest["backend"]["engine_pids"] == [engine]
    # The engine's own output is in the log, not on the terminal (whether vLLM's monitor logs "engine core
    # exited unexpectedly" before the process ends depends on timing: the fresh-clone run had it missing).
    assert "engine and library output of this attempt" in (run_dir / "engine.log").read_text()

    # A new engine finishes the run: every dialogue exactly once, those in flight from their checkpoints.
    final = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=1200)
    assert final.returncode in (0, 3), final.stderr  # 3: the tiny model failed a dialogue of its own accord
    dialogues = read_lines(run_dir / "dialogues.jsonl")
    assert sorted(d["id"] for d in dialogues) == sorted(expected)  # each once, none missing
    assert "EngineDied" not in json.dumps([d.get("error") for d in dialogues])
    pairs = read_lines(run_dir / "preferences.jsonl")
    assert not [k for k, n in Counter((p["dialogue_id"], p["turn_index"]) for p in pairs).items() if n > 1]
    assert {p["dialogue_id"] for p in pairs} <= {d["id"] for d in dialogues}
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert [r["status"] for r in manifest["runs"]] == ["engine_died", "completed"]
    assert manifest["runs"][1]["counts"]["skipped"] == len(written)
    assert manifest["counts"]["resumed"] >= 1, "no dialogue continued from its checkpoint"


# -- without an engine ------------------------------------------------------------------------------

class _DeadEngine:
    """What vLLM's AsyncLLM is once its engine core has died: ``errored``, and every request fails."""

    errored = True

    def __init__(self) -> None:
        self.requests = 0

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        self.requests += 1
        raise RuntimeError("EngineCore encountered an issue. See stack trace (above) for the root cause.")
        yield  # an async generator, as vLLM's


@pytest.mark.parametrize(("exitcode", "how"), [
    (-9, "killed by SIGKILL, the out-of-memory killer's signal"), (-11, "killed by SIGSEGV"), (1, "exit status 1")])
async def test_a_dead_engine_is_engine_died_at_once_never_retried(exitcode: int, how: str) -> None:
    backend = VLLMBackend(BackendConfig(kind="vllm", model="some/model", retry={"attempts": 5}))
    engine = _DeadEngine()
    backend._engine = engine
    backend._processes = [SimpleNamespace(pid=4242, exitcode=exitcode)]
    backend.engine_request = lambda *a: ([1, 2], SimpleNamespace(structured_outputs=None))  # type: ignore[method-assign]
    with pytest.raises(EngineDied) as caught:
        await backend.complete([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4))
    assert str(caught.value) == f"the vllm engine (pid 4242) died mid-run ({how})"
    assert engine.requests == 1  # no retry of a dead engine
    engine.errored = False  # a failure of a live engine stays what it was
    with pytest.raises(RuntimeError, match="EngineCore encountered"):
        await backend.complete([{"role": "user", "content": "hi"}], SamplingParams(max_tokens=4))


class _DyingWorld(World):
    """Scripted replies until call ``dies_at``; from then on every call finds the engine dead."""

    def __init__(self, dies_at: int) -> None:
        super().__init__(violating_turns={1: ["honesty.no-fabrication"]})
        self.dies_at = dies_at
        self.calls = 0

    def backend(self) -> ScriptedBackend:
        async def reply(messages: Any, params: SamplingParams, schema: Any) -> str:
            self.calls += 1
            await asyncio.sleep(0.001)
            if self.calls >= self.dies_at:
                raise EngineDied("embedded", 4242, "killed by SIGKILL")
            return self.reply(messages, params, schema)

        return ScriptedBackend(reply)


async def test_a_run_whose_engine_dies_stops_and_resumes_exactly_once(tmp_path: Path) -> None:
    config = write_config(tmp_path, "http://127.0.0.1:9/v1", dialogues=12, concurrency=4)
    run_dir = tmp_path / "run"
    expected = expected_ids(config)
    world = _DyingWorld(dies_at=30)  # 6 calls a dialogue, 4 at once: a few stored, 4 cut short
    with pytest.raises(EngineDied) as caught:
        await execute(request_from_config(config, out=run_dir), backend=world.backend())
    written = read_lines(run_dir / "dialogues.jsonl")
    assert 0 < len(written) < len(expected) and {d["status"] for d in written} == {"ok"}  # none failed by it
    assert caught.value.stored == (len(written), len(expected))
    assert str(caught.value).endswith(f"(killed by SIGKILL); {len(written)} of {len(expected)} dialogues are stored")
    assert world.calls < 30 + 4 * 3  # no new dialogue started once the engine was dead
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == manifest["runs"][0]["status"] == "engine_died"
    assert manifest["runs"][0]["error"] == str(caught.value).split(";")[0]
    # The lock is free and a live engine finishes the run: every dialogue once, those cut short from checkpoints.
    result = await execute(request_from_run_dir(run_dir), backend=World(
        violating_turns={1: ["honesty.no-fabrication"]}).backend())
    assert result.status == "completed"
    manifest = check_consistent(run_dir, expected)
    assert [r["status"] for r in manifest["runs"]] == ["engine_died", "completed"]
    assert manifest["counts"]["resumed"] >= 1
