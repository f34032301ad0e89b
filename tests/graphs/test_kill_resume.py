"""A run killed at any moment (SIGKILL included) and resumed loses no written record, writes
none twice and leaves no torn line; SIGINT/SIGTERM stop cleanly and resume picks up.

The CLI runs as a subprocess against the loopback server (in this process, so the test can
watch how many requests the run has made and kill it at a chosen point). A run that completes
spends most of its time on the end-of-run statistics (an embedding model), hence the timeouts."""

from __future__ import annotations

import json
import signal

import pytest

from tests.cli import run_cli
from tests.graphs.loopback_run import (
    canned_server,
    check_complete,
    expected_ids,
    read_lines,
    start_cli,
    wait_for_requests,
    write_config,
)

DIALOGUES = 16  # 6 calls each: 96 calls; at 4 in flight and 40 ms a call, ~1 s of model time


def test_sigkill_at_several_points_then_resume(tmp_path):
    with canned_server(delay_s=0.04) as server:
        config = write_config(tmp_path, server.base_url, dialogues=DIALOGUES, concurrency=4)
        run_dir = tmp_path / "run"
        expected = expected_ids(config)
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        # Kill points: mid-first-turns, then a few dialogues in, then late in the run.
        for n, command in ((10, None), (35, "resume"), (70, "resume")):
            if command is not None:
                proc = start_cli(command, str(run_dir), "-q", cwd=tmp_path)
            wait_for_requests(proc, server, n)
            proc.kill()  # SIGKILL: no handler runs, nothing is flushed
            proc.wait(10)
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


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_cleanly_and_resume_finishes(tmp_path, sig):
    with canned_server(delay_s=0.04) as server:
        config = write_config(tmp_path, server.base_url, dialogues=DIALOGUES, concurrency=4)
        run_dir = tmp_path / "run"
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        wait_for_requests(proc, server, 30)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == 130, err
        assert "sparring resume" in err
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "interrupted" and manifest["runs"][0]["status"] == "interrupted"
        for name in ("dialogues.jsonl", "preferences.jsonl", "sft.jsonl", "traces.jsonl"):
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
