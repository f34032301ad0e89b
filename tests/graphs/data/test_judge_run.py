"""``sparring judge RUN_DIR`` on a scripted judge: scores merged into dialogues.jsonl, the manifest
and stats.json updated, already-scored dialogues left alone unless forced."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.graphs.commands.judge_run import judge_run
from sparring.graphs.runtime.runlock import RunDirLock
from sparring.graphs.runtime.store import iter_jsonl
from tests.agents.test_judge import LogprobBackend
from tests.cli import run_cli
from tests.graphs.data.fixture_run import write_run


def coherence_backend() -> LogprobBackend:
    return LogprobBackend({"coherence": {"3": 0.75, "2": 0.25}})  # 2.75


async def test_scores_go_into_the_run(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    summary = await judge_run(run_dir, criteria=["coherence"], backend=coherence_backend(),
                              overrides=["sampling.judge.logprobs=3"])
    assert (summary["to_score"], summary["scored"], summary["failed"]) == (3, 3, 0)
    rows = {r["id"]: r for r in iter_jsonl(run_dir / "dialogues.jsonl")}
    assert [rows[i]["scores"] for i in ("d1", "d2", "d3")] == [{"coherence": 2.75}] * 3
    assert rows["d1"]["scoring"] == "logprobs" and rows["d4"]["scores"] == {}  # the failed one is not judged
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["judge"]["methods"] == {"logprobs": 3} and manifest["judge"]["backend"]["provider"] == "scripted"
    stats = json.loads((run_dir / "stats.json").read_text())
    assert stats["judge"]["criteria"] == {"coherence": {"mean": 2.75, "n": 3}}

    again = await judge_run(run_dir, criteria=["coherence"], backend=coherence_backend())
    assert again["to_score"] == 0
    backend = LogprobBackend({"coherence": {"1": 1.0}})
    forced = await judge_run(run_dir, criteria=["coherence"], backend=backend, force=True)
    assert forced["scored"] == 3 and len(backend.calls) == 3
    assert next(iter_jsonl(run_dir / "dialogues.jsonl"))["scores"] == {"coherence": 1.0}
    assert math.isclose(json.loads((run_dir / "stats.json").read_text())["judge"]["criteria"]["coherence"]["mean"], 1)


async def test_refuses_a_run_still_being_written_and_bad_overrides(tmp_path: Path) -> None:
    running = write_run(tmp_path / "running", manifest={"status": "running"})
    with pytest.raises(InputError, match="was killed while running"):  # its status says running, no one holds it
        await judge_run(running, backend=coherence_backend())
    with RunDirLock(running), pytest.raises(InputError, match=f"in use by process {os.getpid()}"):
        await judge_run(running, backend=coherence_backend())
    run_dir = write_run(tmp_path / "run")
    with pytest.raises(InputError, match="concurrency"):
        await judge_run(run_dir, overrides=["concurrency=0"], backend=coherence_backend())


def test_cli_rejects_what_is_not_a_run(tmp_path: Path) -> None:
    result = run_cli("judge", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path}: holds no manifest.json: not a sparring run directory"
