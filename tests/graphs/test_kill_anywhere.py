"""Kill anything, lose nothing: SIGKILL at seeded random moments of one run (its first
milliseconds, before any manifest; planning; mid-dialogue; while records are written; during
the end-of-run statistics and report), each attempt followed by the next (``resume``, or
``run`` again when the kill came before the first manifest), then a last one to the end: every
dialogue exactly once, every line valid, no pair without its dialogue, no pair twice. Ctrl-C
and SIGTERM at random moments, start-up and a DiaSynth expansion included, exit 130.

``benchmarks/kill_sweep.py`` runs the same with more moments."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from tests.graphs.loopback_run import (
    canned_server,
    check_consistent,
    expected_ids,
    read_lines,
    start_cli,
    write_config,
)

KILLS = 10
"""Moments per worker count in the suite (20 in all); the benchmark sweeps more."""
TRIGGERS = ("start", "requests", "records", "end")


def _command(config: Path, run_dir: Path) -> tuple[str, ...]:
    if (run_dir / "manifest.json").exists():
        return ("resume", str(run_dir), "-q")
    return ("run", str(config), "--out", str(run_dir), "-q")  # killed before its first manifest: start again


def _wait_for(proc: subprocess.Popen[str], trigger: str, rng: random.Random, server, run_dir: Path) -> bool:
    """Wait for the moment ``trigger`` names; False when the process ended first."""
    deadline = time.monotonic() + 60
    if trigger == "start":
        end = time.monotonic() + rng.uniform(0.0, 1.5)  # imports, probe, lock, the first manifest
        while time.monotonic() < end:
            if proc.poll() is not None:
                return False
            time.sleep(0.001)
        return True
    target = server.stats.chat_requests + rng.randint(1, 40)
    size = (run_dir / "dialogues.jsonl").stat().st_size if (run_dir / "dialogues.jsonl").exists() else 0
    while time.monotonic() < deadline and proc.poll() is None:
        if trigger == "requests" and server.stats.chat_requests >= target:
            return True
        if trigger == "records" and (run_dir / "dialogues.jsonl").exists() \
                and (run_dir / "dialogues.jsonl").stat().st_size > size:
            return True  # a dialogue's lines are being written
        if trigger == "end" and _attempt_status(run_dir) not in (None, "running"):
            return True  # the manifest says the attempt ended: statistics and report are being written
        time.sleep(0.0005)
    return False


def _attempt_status(run_dir: Path) -> str | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text())["runs"][-1]["status"]
    except (OSError, ValueError, KeyError, IndexError):
        return None


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path, workers):
    rng = random.Random(1700 + workers)
    with canned_server(delay_s=0.01) as server:
        config = write_config(tmp_path, server.base_url, dialogues=16, concurrency=4, workers=workers)
        run_dir = tmp_path / "run"
        expected = expected_ids(config)
        seen: Counter[str] = Counter()
        for _ in range(KILLS):
            trigger = rng.choice(TRIGGERS)
            proc = start_cli(*_command(config, run_dir), cwd=tmp_path)
            if _wait_for(proc, trigger, rng, server, run_dir):
                proc.kill()
                seen[trigger] += 1
            _, err = proc.communicate(timeout=120)
            assert proc.returncode in (0, -signal.SIGKILL), err  # nothing but the kill stopped it
        final = start_cli(*_command(config, run_dir), cwd=tmp_path)
        _, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
    check_consistent(run_dir, expected)
    assert sum(seen.values()) >= KILLS // 2, seen  # most moments found a live process to kill


def _handling(pid: int, sig: int, timeout: float = 60) -> None:
    """Until process ``pid`` catches ``sig`` (its SigCgt mask in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (sig - 1) & 1:
                return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} never caught signal {sig}")


def _diasynth_config(folder: Path, base_url: str) -> Path:
    path = write_config(folder, base_url, dialogues=8, concurrency=4)
    data = yaml.safe_load(path.read_text())
    data.pop("scenarios")
    data["diasynth"] = {"topics": ["travel", "cooking"], "subtopics_per_topic": 2, "personas_per_subtopic": 2}
    path.write_text(yaml.safe_dump(data))
    return path


def test_a_signal_at_any_moment_exits_130_and_resume_finishes(tmp_path):
    """Ctrl-C and SIGTERM in turn. Start-up (imports, the probe), the DiaSynth expansion, the
    dialogues, the end: exit 130 whenever the signal lands (0 when the run was over first), and the
    run still finishes."""
    rng = random.Random(130)
    with canned_server(delay_s=0.02) as server:
        config = _diasynth_config(tmp_path, server.base_url)
        run_dir = tmp_path / "run"
        statuses: Counter[int] = Counter()
        for sig in (signal.SIGINT, signal.SIGTERM) * 3:
            proc = start_cli(*_command(config, run_dir), cwd=tmp_path)
            _handling(proc.pid, signal.SIGTERM)  # sparring's own code runs (see graphs/cli.py)
            time.sleep(rng.uniform(0.0, 3.0))
            proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            statuses[proc.returncode] += 1
            assert proc.returncode in (0, 130), err
            assert "Traceback" not in err, err
        final = start_cli(*_command(config, run_dir), cwd=tmp_path)
        _, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
    assert statuses[130] >= 4, statuses
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["expansion"] is not None
    rows = read_lines(run_dir / "dialogues.jsonl")
    assert len({r["id"] for r in rows}) == len(rows) and {r["status"] for r in rows} == {"ok"}
