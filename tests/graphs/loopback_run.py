"""Runs against the loopback server: a config pointed at it, the CLI as a killable subprocess,
and the checks every scale test makes on a run directory (each record once, every line whole)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.traces.spanfile import ReadStats, iter_span_lines
from tests.cli import REPO

JSONL = ("dialogues.jsonl", "preferences.jsonl", "sft.jsonl", "scenarios.jsonl", "traces.jsonl.zst")


def canned_server(delay_s: float = 0.0) -> FakeOpenAIServer:
    """Realistic agent replies: every dialogue plans, speaks, gets one violation found, revised and verified."""
    return FakeOpenAIServer(responder=agent_reply, reply_delay_s=delay_s, record_requests=False)


def write_config(folder: Path, base_url: str, *, dialogues: int, concurrency: int, max_in_flight: int = 64,
                 max_turns: int = 2, retry: dict[str, Any] | None = None, workers: int = 1) -> Path:
    """Assistant-mode dialogues over 4 scenarios. With ``max_turns: 2`` a dialogue makes 6 calls
    (plan, 2 turns, critique, revise, verify), one at a time."""
    config = {
        "name": "scale-test", "seed": 5, "concurrency": concurrency, "workers": workers,
        "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model",
                    "max_in_flight": max_in_flight,
                    "retry": retry or {"attempts": 3, "initial_wait_s": 0.01, "max_wait_s": 0.05, "timeout_s": 10}},
        "principles": {"sets": ["quickstart"]},
        "dialogue": {"mode": "assistant", "max_turns": max_turns},
        "jobs": {"dialogues_per_scenario": -(-dialogues // 4), "max_dialogues": dialogues},
        # These tests check records, not statistics: no embedding model loaded at each run's end.
        "report": {"embeddings": False},
        "scenarios": [{"topic": f"topic {i}", "subtopic": f"a question about thing {i}",
                       "personas": [f"Person{i}: a curious customer", "an adviser: knows the subject"]}
                      for i in range(4)],
    }
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def expected_ids(config: Path) -> list[str]:
    """The dialogue ids the config makes (ids are deterministic)."""
    from sparring.graphs.runtime.run_request import iter_jobs, request_from_config

    return [job.id for job in iter_jobs(request_from_config(config))]


def start_cli(*args: str, cwd: Path, new_session: bool = False) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "200"}
    return subprocess.Popen([sys.executable, "-m", "sparring.graphs.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=new_session)


def wait_for_requests(proc: subprocess.Popen[str], server: FakeOpenAIServer, n: int, timeout: float = 60) -> None:
    """Until the server has seen ``n`` chat requests; the process must still be running by then."""
    deadline = time.monotonic() + timeout
    while server.stats.chat_requests < n:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (status {proc.returncode}) before request {n}:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"no request {n} within {timeout}s (saw {server.stats.chat_requests})")
        time.sleep(0.005)


def read_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSONL file, which must each be whole, valid JSON objects (of a compressed span
    file: every span whole, no torn end)."""
    if not path.exists():
        return []
    if path.name.endswith(".zst"):
        stats = ReadStats()
        data = b"".join(iter_span_lines(path, stats))
        assert stats.torn == 0, f"{path.name}: a torn span"
    else:
        data = path.read_bytes()
    assert not data or data.endswith(b"\n"), f"{path.name}: torn last line {data[-80:]!r}"
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except ValueError as exc:
            raise AssertionError(f"{path.name} line {number} is not JSON: {line[:120]!r}") from exc
        assert isinstance(rows[-1], dict), f"{path.name} line {number} is not an object"
    return rows


def check_complete(run_dir: Path, expected: list[str], *, pairs_per_dialogue: int = 1) -> dict[str, Any]:
    """Every expected dialogue written exactly once and ok, its pairs and SFT row exactly once,
    nothing else, every line of every file valid. Returns the manifest."""
    rows = {name: read_lines(run_dir / name) for name in JSONL}
    dialogues = rows["dialogues.jsonl"]
    counts = Counter(d["id"] for d in dialogues)
    assert sorted(counts) == sorted(expected), "dialogue ids differ from the config's jobs"
    assert [i for i, c in counts.items() if c > 1] == [], "a dialogue was written twice"
    assert {d["status"] for d in dialogues} == {"ok"}
    pairs = rows["preferences.jsonl"]
    assert len({p["id"] for p in pairs}) == len(pairs), "a preference pair was written twice"
    # A critic, reviser or verifier call that failed for good (a fault outlasting the retries) is recorded
    # against its turn: that dialogue is written whole, with fewer rows (graphs/_branching.step_failure).
    stepped = {d["id"] for d in dialogues if any(v.get("error") for v in d["verdicts"])
               or any(r.get("error") for r in d["revisions"])}
    assert Counter(p["dialogue_id"] for p in pairs) == {i: pairs_per_dialogue for i in expected if i not in stepped}
    sft = Counter(r["dialogue_id"] for r in rows["sft.jsonl"])
    assert {i: n for i, n in sft.items() if i not in stepped} == {i: 1 for i in expected if i not in stepped}
    assert all(sft[i] <= 1 for i in stepped)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed"
    assert manifest["counts"]["dialogues"] == len(expected) and manifest["counts"]["failed"] == 0
    return manifest


def check_consistent(run_dir: Path, expected: list[str]) -> dict[str, Any]:
    """``check_complete`` and more, after kills and resumes: no pair without its dialogue, no pair
    twice (a dialogue and turn once). Returns the manifest."""
    dialogues = {d["id"] for d in read_lines(run_dir / "dialogues.jsonl")}
    pairs = read_lines(run_dir / "preferences.jsonl")
    assert {p["dialogue_id"] for p in pairs} <= dialogues, "a pair without its dialogue"
    twice = [k for k, n in Counter((p["dialogue_id"], p["turn_index"]) for p in pairs).items() if n > 1]
    assert not twice, f"pairs written twice: {twice}"
    return check_complete(run_dir, expected)


def assert_processes_gone(pids: list[int], timeout: float = 10) -> None:
    """Each process has exited (a zombie waiting for its reaper counts as exited)."""
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [pid for pid in alive if _running(pid)]
        time.sleep(0.05)
    assert not alive, f"worker processes outlived their parent: {alive}"


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


# -- kill anywhere: a run SIGKILLed at seeded random moments, each attempt followed by the next
TRIGGERS = ("boot", "manifest", "requests", "requests", "records", "records", "end")
"""Moments to kill at, drawn with these weights: ``boot`` (within 0.3 s of the start: imports,
before any manifest), ``manifest`` (within 0.2 s of this attempt's entry in the manifest: repair,
planning, the first calls), ``requests`` (after 1-40 more model requests: mid-dialogue),
``records`` (the moment dialogues.jsonl grows: records being written), ``end`` (the manifest says the
attempt ended: statistics and report being written)."""


def next_command(config: Path, run_dir: Path) -> tuple[str, ...]:
    if (run_dir / "manifest.json").exists():
        return ("resume", str(run_dir), "-q")
    return ("run", str(config), "--out", str(run_dir), "-q")  # killed before its first manifest: start again


def _attempts(run_dir: Path) -> int:
    try:
        return len(json.loads((run_dir / "manifest.json").read_text())["runs"])
    except (OSError, ValueError, KeyError):
        return 0


def _wait_for(proc: subprocess.Popen[str], trigger: str, rng: random.Random, server: FakeOpenAIServer,
              run_dir: Path, attempts_before: int) -> bool:
    """Wait for the moment ``trigger`` names; False when the process ended first."""
    deadline = time.monotonic() + 60
    pause = rng.uniform(0.0, 0.3 if trigger == "boot" else 0.2)
    target = server.stats.chat_requests + rng.randint(1, 40)
    size = (run_dir / "dialogues.jsonl").stat().st_size if (run_dir / "dialogues.jsonl").exists() else 0
    while time.monotonic() < deadline and proc.poll() is None:
        if trigger == "boot":
            time.sleep(pause)
            return proc.poll() is None
        if trigger == "manifest" and _attempts(run_dir) > attempts_before:
            time.sleep(pause)
            return proc.poll() is None
        if trigger == "requests" and server.stats.chat_requests >= target:
            return True
        if trigger == "records" and (run_dir / "dialogues.jsonl").exists() \
                and (run_dir / "dialogues.jsonl").stat().st_size > size:
            return True  # a dialogue's lines are being written
        if trigger == "end" and _attempts(run_dir) > attempts_before and _attempt_status(run_dir) != "running":
            return True  # the manifest says the attempt ended: statistics and report are being written
        time.sleep(0.0005)
    return False


def _attempt_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())["runs"][-1]["status"]
    except (OSError, ValueError, KeyError, IndexError):
        return None




def kill_and_resume(config: Path, run_dir: Path, server: FakeOpenAIServer, *, kills: int, seed: int) -> Counter[str]:
    """SIGKILL ``kills`` attempts of one run at seeded random moments (a trigger from TRIGGERS each),
    each followed by the next attempt, then one more to the end (which must exit 0). Returns how
    many kills landed, by trigger (a moment the attempt outlived is no kill)."""
    rng = random.Random(seed)
    landed: Counter[str] = Counter()
    for _ in range(kills):
        trigger = rng.choice(TRIGGERS)
        before = _attempts(run_dir)
        proc = start_cli(*next_command(config, run_dir), cwd=run_dir.parent)
        if _wait_for(proc, trigger, rng, server, run_dir, before):
            proc.kill()
            landed[trigger] += 1
        _, err = proc.communicate(timeout=120)
        assert proc.returncode in (0, -signal.SIGKILL), err  # nothing but the kill stopped it
    final = start_cli(*next_command(config, run_dir), cwd=run_dir.parent)
    _, err = final.communicate(timeout=300)
    assert final.returncode == 0, err
    return landed
