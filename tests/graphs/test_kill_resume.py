"""A run killed at any moment (SIGKILL included) and resumed loses no written record, writes
none twice and leaves no torn line; SIGINT/SIGTERM stop cleanly and resume picks up.

The CLI runs as a subprocess against the loopback server (in this process, so the test can
watch how many requests the run has made and kill it at a chosen point). A run that completes
spends most of its time on the end-of-run statistics (an embedding model), hence the timeouts."""

from __future__ import annotations

import json
import os
import signal

import pytest

from tests.cli import run_cli
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

DIALOGUES = 16  # 6 calls each: 96 calls; at 4 in flight and 40 ms a call, ~1 s of model time


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_sigkill_at_several_points_then_resume(tmp_path, workers):
    with canned_server(delay_s=0.04) as server:
        config = write_config(tmp_path, server.base_url, dialogues=DIALOGUES, concurrency=4, workers=workers)
        run_dir = tmp_path / "run"
        expected = expected_ids(config)
        # With workers, the second attempt shares the dialogues out among three: checkpoints
        # written by two workers must reach the three that continue them, then two again.
        second = ("run", str(config), "--out", str(run_dir), "--set", "workers=3") if workers > 1 else \
            ("resume", str(run_dir))
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        # Kill points: mid-first-turns, then a few dialogues in, then late in the run.
        for n, command in ((10, None), (35, second), (70, ("resume", str(run_dir)))):
            if command is not None:
                proc = start_cli(*command, "-q", cwd=tmp_path)
            wait_for_requests(proc, server, n)
            proc.kill()  # SIGKILL: no handler runs, nothing is flushed
            proc.wait(10)
            if workers > 1:  # the kernel takes the workers down with their parent
                assert_processes_gone(json.loads((run_dir / "manifest.json").read_text())["runs"][-1]["worker_pids"])
            if n == 10:
                # A write cut by the kill (the odds of hitting one are small, so make one).
                with (run_dir / "dialogues.jsonl").open("a") as fh:
                    fh.write('{"id": "torn-by-a-kill", "sta')
                with (run_dir / "preferences.jsonl").open("a") as fh:
                    fh.write(json.dumps({"id": "orphan", "dialogue_id": "never-written"}) + "\n")
        before = server.stats.chat_requests
        final = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert final.returncode == 0, final.stderr
        manifest = check_complete(run_dir, expected)
        runs = manifest["runs"]
        assert [r["status"] for r in runs] == ["killed", "killed", "killed", "completed"]
        assert runs[1]["repaired"] == {"dialogues.jsonl": 1, "preferences.jsonl": 1}
        assert manifest["counts"]["resumed"] >= 1, "no dialogue continued from its checkpoint"
        # Work done before the kills was kept: the last attempt made far fewer calls than a full run.
        assert server.stats.chat_requests - before < DIALOGUES * 6
        if workers > 1:
            assert [len(r["worker_pids"]) for r in runs] == [2, 3, 2, 2]
            assert not (run_dir / "state.2.sqlite").exists()  # the third worker's file, emptied into the others


@pytest.mark.parametrize(("sig", "workers"), [(signal.SIGINT, 1), (signal.SIGTERM, 1), (signal.SIGINT, 2)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-two-workers"])
def test_signal_stops_cleanly_and_resume_finishes(tmp_path, sig, workers):
    with canned_server(delay_s=0.04) as server:
        config = write_config(tmp_path, server.base_url, dialogues=DIALOGUES, concurrency=4, workers=workers)
        run_dir = tmp_path / "run"
        # Its own session, so that a signal can go to the whole group, as Ctrl-C in a terminal does.
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path, new_session=True)
        wait_for_requests(proc, server, 30)
        if workers > 1:
            os.killpg(proc.pid, sig)  # workers get it too, and leave the stopping to their parent
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "sparring resume" in err
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and manifest["runs"][0]["status"] == "interrupted"
        if workers > 1:
            assert_processes_gone(manifest["runs"][0]["worker_pids"])
        for name in ("dialogues.jsonl", "preferences.jsonl", "sft.jsonl", "traces.jsonl.zst"):
            read_lines(run_dir / name)  # whole lines only
        written = len(read_lines(run_dir / "dialogues.jsonl"))
        assert 0 < written < DIALOGUES
        final = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert final.returncode == 0, final.stderr
        manifest = check_complete(run_dir, expected_ids(config))
        assert manifest["runs"][1]["counts"]["skipped"] == written


def test_run_into_a_run_dir_of_another_config_is_refused(tmp_path):
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=2, concurrency=2)
        run_dir = tmp_path / "run"
        assert run_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path, timeout=600).returncode == 0
        again = run_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert again.returncode == 0  # same config: continues (nothing left to do)
        assert json.loads((run_dir / "manifest.json").read_text())["runs"][1]["counts"]["skipped"] == 2
        other = run_cli("run", str(config), "--out", str(run_dir), "--set", "seed=6", "-q", cwd=tmp_path,
                        timeout=600)
        assert other.returncode == 2
        assert "different config" in other.stderr and "--force" in other.stderr
        forced = run_cli("run", str(config), "--out", str(run_dir), "--set", "seed=6", "--force", "-q",
                         cwd=tmp_path, timeout=600)
        assert forced.returncode == 0, forced.stderr
