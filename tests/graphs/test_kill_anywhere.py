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
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.graphs.loopback_run import (
    canned_server,
    check_consistent,
    expected_ids,
    kill_and_resume,
    next_command,
    read_lines,
    start_cli,
    write_config,
)

KILLS = 10
"""Moments per worker count in the suite (20 in all); the benchmark sweeps more."""
@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path, workers):
    with canned_server(delay_s=0.03) as server:
        config = write_config(tmp_path, server.base_url, dialogues=16, concurrency=4, workers=workers)
        run_dir = tmp_path / "run"
        kills = kill_and_resume(config, run_dir, server, kills=KILLS, seed=1700 + workers)
    check_consistent(run_dir, expected_ids(config))
    assert sum(kills.values()) >= KILLS // 2, kills  # most moments found a live process to kill


def _handling(pid: int, sig: int, timeout: float = 60) -> None:
    """Until process ``pid`` catches ``sig`` (its SigCgt mask in /proc)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("SigCgt:") and int(line.split()[1], 16) >> (sig - 1) & 1:
                return
        time.sleep(0.001)
    raise AssertionError(f"process {pid} never caught signal {sig}")


def _after_requests(proc: Any, server: Any, n: int, timeout: float = 60) -> None:
    """Until the server has seen ``n`` chat requests, or the process has ended."""
    deadline = time.monotonic() + timeout
    while server.stats.chat_requests < n and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)


def _diasynth_config(folder: Path, base_url: str) -> Path:
    path = write_config(folder, base_url, dialogues=16, concurrency=4)
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
    with canned_server(delay_s=0.05) as server:
        config = _diasynth_config(tmp_path, server.base_url)
        run_dir = tmp_path / "run"
        statuses: Counter[int] = Counter()
        for sig in (signal.SIGINT, signal.SIGTERM) * 3:
            proc = start_cli(*next_command(config, run_dir), cwd=tmp_path)
            _handling(proc.pid, signal.SIGTERM)  # sparring's own code runs (see graphs/cli.py)
            # The moment is drawn in requests served, not seconds, so that it lands inside the run however
            # fast the machine is: 0 is start-up (imports, the probe), then the expansion and the dialogues.
            _after_requests(proc, server, server.stats.chat_requests + rng.choice([0, 0, 3, 10, 20, 30]))
            if proc.poll() is None:
                proc.send_signal(sig)
            _, err = proc.communicate(timeout=120)
            statuses[proc.returncode] += 1
            assert proc.returncode in (0, 130), err
            assert "Traceback" not in err, err
        final = start_cli(*next_command(config, run_dir), cwd=tmp_path)
        _, err = final.communicate(timeout=300)
        assert final.returncode == 0, err
    assert statuses[130] >= 3, statuses  # the later attempts may find the run over
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "completed" and manifest["expansion"] is not None
    rows = read_lines(run_dir / "dialogues.jsonl")
    assert len({r["id"] for r in rows}) == len(rows) and {r["status"] for r in rows} == {"ok"}
