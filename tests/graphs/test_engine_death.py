"""The engine dies mid-run: ``sparring run`` on the embedded engine, its engine-core process
(``VLLM::EngineCore``, the child of the sparring process that vLLM starts) SIGKILLed once a dialogue
is stored, as the kernel's out-of-memory killer would. The run stops with exit 1 and one line on
stderr; what was written stays whole and no dialogue is failed by the death; ``sparring resume``
starts a new engine and finishes the run, every dialogue exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.engines import seeded
from tests.graphs.loopback_run import JSONL, assert_processes_gone, expected_ids, read_lines, start_cli

pytestmark = pytest.mark.engine

ENGINE_CORE = "VLLM::EngineCore"
"""The title vLLM gives its engine-core process (its model runner is a child of it, ``VLLM::Worker``)."""

# Four short dialogues, all in flight at once: the first is stored while the others are mid-way.
CONFIG = f"""
name: engine-death
seed: {seeded(5)}
concurrency: 4
report: {{embeddings: false}}
principles: {{sets: [quickstart]}}
dialogue: {{mode: assistant, max_turns: 2, unverified_pairs: keep}}
jobs: {{dialogues_per_scenario: 4, principles_per_dialogue: 1}}
sampling:
  planner: {{max_tokens: 400}}
  persona: {{max_tokens: 30}}
  critic: {{temperature: 0.0, max_tokens: 250}}
  reviser: {{max_tokens: 40}}
  verifier: {{temperature: 0.0, max_tokens: 250}}
scenarios:
  - topic: travel
    personas: ["Ines: a commuter whose train was cancelled", "a rail agent: knows refunds"]
"""


def children(pid: int, title: str) -> list[int]:
    """The live child processes of ``pid`` whose command line starts with ``title`` (read from /proc)."""
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
    assert "engine core exited unexpectedly" in (run_dir / "engine.log").read_text()  # vLLM's own word, logged

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
