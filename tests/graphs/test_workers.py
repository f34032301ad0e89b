"""``workers: N``: dialogues shared out among forked processes, over real HTTP and real LangGraph.
The parent writes every record once; each worker keeps its own checkpoint file, and a resume
moves checkpoints to whichever worker now runs their dialogue."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sqlite3

import pytest
from langgraph.checkpoint.base import empty_checkpoint

from sparring.errors import WorkerError
from sparring.graphs.runtime.checkpoints import InlineSqliteSaver, checkpoint_path, place_checkpoints
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import request_from_config, request_from_run_dir
from sparring.graphs.runtime.workers import assign_workers, share
from tests.graphs.loopback_run import (
    assert_processes_gone,
    canned_server,
    check_complete,
    expected_ids,
    read_lines,
    start_cli,
    wait_for_requests,
    write_config,
)


def test_shares_add_up_and_differ_by_at_most_one():
    for total in (2, 3, 7, 256):
        for workers in (1, 2, 3):
            parts = [share(total, workers, i) for i in range(workers)]
            assert sum(parts) == total and max(parts) - min(parts) <= 1


def test_dialogues_left_are_dealt_round_robin():
    class Job:
        def __init__(self, id):
            self.id = self.attack_id = id  # one target: each dialogue is its own attack

    jobs = [Job(f"d{i}") for i in range(7)]
    worker_of, skipped = assign_workers(jobs, {"d1": "ok", "d2": "failed"}, 2)
    assert skipped == 1  # d2 failed: it runs again
    assert worker_of == {"d0": 0, "d2": 1, "d3": 0, "d4": 1, "d5": 0, "d6": 1}


def _save(path, threads):
    saver = InlineSqliteSaver.open(path)
    for thread in threads:
        config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        saved = saver.put(config, empty_checkpoint(), {"step": 1}, {})
        saver.put_writes(saved, [("messages", thread)], task_id="t1")
    saver.close()


def _threads(path):
    if not path.exists():
        return set()
    conn = sqlite3.connect(path)
    try:
        checkpoints = {r[0] for r in conn.execute("SELECT thread_id FROM checkpoints")}
        writes = {r[0] for r in conn.execute("SELECT thread_id FROM writes")}
    finally:
        conn.close()
    assert checkpoints == writes  # a thread's steps and writes move together
    return checkpoints


def test_checkpoints_move_to_the_file_of_the_worker_that_runs_their_dialogue(tmp_path):
    _save(checkpoint_path(tmp_path, 0), ["a", "b", "c", "done"])
    _save(checkpoint_path(tmp_path, 2), ["d"])
    moved = place_checkpoints(tmp_path, {"a": 0, "b": 1, "c": 2, "d": 1}, 3)
    assert moved == {"state.1.sqlite": 2, "state.2.sqlite": 1}
    # "done" is not in the map (its dialogue is written): it stays in worker 0's file.
    assert [_threads(checkpoint_path(tmp_path, i)) for i in range(3)] == [{"a", "done"}, {"b", "d"}, {"c"}]
    # The saver reads them back where they landed.
    saver = InlineSqliteSaver.open(checkpoint_path(tmp_path, 1))
    assert saver.get_tuple({"configurable": {"thread_id": "d", "checkpoint_ns": ""}}).pending_writes
    saver.close()

    # Back to one process: everything returns to state.sqlite and the other files go.
    place_checkpoints(tmp_path, {}, 1)
    assert _threads(checkpoint_path(tmp_path, 0)) == {"a", "b", "c", "d", "done"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.sqlite"]


def test_placement_with_one_file_and_one_process_touches_nothing(tmp_path):
    _save(checkpoint_path(tmp_path, 0), ["a"])
    before = checkpoint_path(tmp_path, 0).stat().st_mtime_ns
    assert place_checkpoints(tmp_path, {"a": 0}, 1) == {}
    assert checkpoint_path(tmp_path, 0).stat().st_mtime_ns == before


async def test_two_workers_share_the_dialogues_and_the_parent_writes_each_record_once(tmp_path):
    with canned_server(delay_s=0.05) as server:
        config = write_config(tmp_path, server.base_url, dialogues=12, concurrency=6, max_in_flight=3,
                              max_turns=6, workers=2)
        result = await execute(request_from_config(config, out=tmp_path / "run"))
        assert result.status == "completed"
        # max_in_flight 3 over two workers (2 + 1): the server never sees more, while the
        # critic's parallel calls would go past it if a worker's share were not its own bound.
        assert server.stats.max_concurrent == 3
        manifest = check_complete(tmp_path / "run", expected_ids(config))  # one pair: later prompts hold a revision
    attempt = manifest["runs"][0]
    assert len(attempt["worker_pids"]) == 2 and os.getpid() not in attempt["worker_pids"]
    assert_processes_gone(attempt["worker_pids"])
    spans = read_lines(tmp_path / "run" / "traces.jsonl.zst")
    roots = [s for s in spans if s["name"] == "invoke_workflow"]
    assert sorted(r["attributes"]["app.worker"] for r in roots) == [0] * 6 + [1] * 6
    dialogues = read_lines(tmp_path / "run" / "dialogues.jsonl")
    assert {d["trace_id"] for d in dialogues} == {r["trace_id"] for r in roots}
    # Usage counted in the workers reaches the parent's totals.
    calls = sum(d["usage"]["calls"] for d in dialogues)
    assert attempt["usage"]["calls"] == attempt["counts"]["calls"] == calls == server.stats.chat_requests
    assert attempt["counts"]["done"] == attempt["counts"]["planned"] == 12


async def test_a_worker_that_dies_stops_the_run_and_a_resume_finishes_it(tmp_path):
    with canned_server(delay_s=0.05) as server:
        config = write_config(tmp_path, server.base_url, dialogues=16, concurrency=4, workers=2)
        run_dir = tmp_path / "run"
        run = asyncio.create_task(execute(request_from_config(config, out=run_dir)))
        while server.stats.chat_requests < 20:
            assert not run.done()
            await asyncio.sleep(0.01)
        pids = json.loads((run_dir / "manifest.json").read_text())["runs"][0]["worker_pids"]
        os.kill(pids[1], signal.SIGKILL)  # an OOM kill, say
        with pytest.raises(WorkerError, match=r"worker 1 .* ended before its dialogues did \(killed by SIGKILL\)"):
            await run
        assert_processes_gone(pids)  # the other worker was stopped, not left running
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "crashed" and "worker 1" in manifest["runs"][0]["error"]
        written = len(read_lines(run_dir / "dialogues.jsonl"))
        assert written < 16
        result = await execute(request_from_run_dir(run_dir))
        assert result.status == "completed"
        manifest = check_complete(run_dir, expected_ids(config))
        assert manifest["runs"][1]["counts"]["skipped"] == written


def test_the_cli_names_a_dead_worker_in_one_line_and_how_to_resume(tmp_path):
    with canned_server(delay_s=0.05) as server:
        config = write_config(tmp_path, server.base_url, dialogues=16, concurrency=4, workers=2)
        run_dir = tmp_path / "run"
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        wait_for_requests(proc, server, 20)
        pids = json.loads((run_dir / "manifest.json").read_text())["runs"][0]["worker_pids"]
        os.kill(pids[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 1, err
        assert "Traceback" not in err
        assert f"error: worker 0 (pid {pids[0]}) ended before its dialogues did (killed by SIGKILL)" in err
        assert f"resume with: sparring resume {run_dir}" in err
        assert_processes_gone(pids)
