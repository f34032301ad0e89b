"""One writer per run directory: a second process is refused with one line naming the directory
and the PID that holds it; the lock dies with its process, forked children included."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from sparring.errors import InputError
from sparring.graphs.runtime.runlock import LOCK_FILE, RunDirLock
from tests.cli import REPO, run_cli
from tests.graphs.loopback_run import (
    canned_server,
    check_complete,
    expected_ids,
    start_cli,
    wait_for_requests,
    write_config,
)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_a_second_writer_is_refused_and_every_dialogue_is_written_once(tmp_path, workers):
    with canned_server(delay_s=0.02) as server:
        config = write_config(tmp_path, server.base_url, dialogues=16, concurrency=2, workers=workers)
        run_dir = tmp_path / "run"
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        wait_for_requests(proc, server, 8)
        server.reply_delay_s = 1.0  # the first run is surely still going while the others try
        before = server.stats.chat_requests
        # A resume in a second terminal, the same run again, and the commands that write a run.
        for command in (("resume", str(run_dir)), ("run", str(config), "--out", str(run_dir)),
                        ("stats", str(run_dir), "--write", "--no-embeddings"), ("report", str(run_dir)),
                        ("filter", str(run_dir), "--out", str(tmp_path / "copy"))):
            second = run_cli(*command, cwd=tmp_path)
            assert second.returncode == 2, (command, second.stdout, second.stderr)
            lines = second.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in second.stderr, second.stderr
            assert str(run_dir) in lines[0] and f"process {proc.pid}" in lines[0], lines[0]
        assert proc.poll() is None, "the first run was still running throughout"
        assert not (tmp_path / "copy").exists()
        server.reply_delay_s = 0.005
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert server.stats.chat_requests > before  # the first run went on
    manifest = check_complete(run_dir, expected_ids(config))
    assert [r["status"] for r in manifest["runs"]] == ["completed"]  # no second attempt, none "killed"
    assert not (run_dir / LOCK_FILE).exists()


def test_the_lock_dies_with_its_process_even_when_a_forked_child_lives_on(tmp_path):
    """A SIGKILLed holder leaves no stale lock, though a child it forked (as workers are) survives it."""
    run_dir = tmp_path / "run"
    script = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from sparring.graphs.runtime.runlock import RunDirLock
        lock = RunDirLock(Path({str(run_dir)!r}), create=True).acquire()
        child = os.fork()
        if child == 0:
            time.sleep(60)  # outlives its parent; it must not hold the lock
            os._exit(0)
        print(child, flush=True)
        time.sleep(60)
    """)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    child = int(holder.stdout.readline())  # type: ignore[union-attr]
    try:
        with pytest.raises(InputError, match=f"in use by process {holder.pid}"):
            RunDirLock(run_dir).acquire()
        holder.kill()
        holder.wait(10)
        os.kill(child, 0)  # the child is alive...
        with RunDirLock(run_dir):  # ...and the lock is free
            assert (run_dir / LOCK_FILE).read_text().strip() == str(os.getpid())
    finally:
        holder.kill()
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_lock_made_directory_is_removed_when_nothing_was_written(tmp_path):
    target = tmp_path / "a" / "b"
    with RunDirLock(target, create=True):
        assert (target / LOCK_FILE).is_file()
    assert not target.exists()
    with RunDirLock(target, create=True):
        (target / "kept.txt").write_text("x")
    assert sorted(p.name for p in target.iterdir()) == ["kept.txt"]


def test_lock_refusals_are_bad_input(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        RunDirLock(tmp_path / "file", create=True).acquire()
    with pytest.raises(InputError, match="a part of its path is a file"):
        RunDirLock(tmp_path / "file" / "below", create=True).acquire()
    with pytest.raises(InputError, match="no such directory"):
        RunDirLock(tmp_path / "missing").acquire()
    with RunDirLock(tmp_path / "held", create=True):
        with pytest.raises(InputError, match=f"in use by process {os.getpid()}"):
            RunDirLock(tmp_path / "held").acquire()


def test_a_run_killed_before_its_first_manifest_can_be_run_again(tmp_path):
    """What a run creates before its manifest (the lock, empty record files from older versions):
    a new run takes such a directory over instead of refusing it."""
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=2, concurrency=2)
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        for name in ("dialogues.jsonl", "preferences.jsonl", "sft.jsonl", "scenarios.jsonl", LOCK_FILE):
            (run_dir / name).write_bytes(b"")
        result = run_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path, timeout=300)
        assert result.returncode == 0, result.stderr
    check_complete(run_dir, expected_ids(config))
    assert json.loads((run_dir / "manifest.json").read_text())["runs"][0]["status"] == "completed"
