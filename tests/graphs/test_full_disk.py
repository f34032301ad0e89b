"""A full disk, for real: the run directory on a small tmpfs, so every write past its size fails
with ENOSPC exactly as on a full disk (partial writes included: the kernel writes what fits and
fails the rest). RLIMIT_FSIZE would raise SIGXFSZ/EFBIG instead, and an injected error would not
show what the kernel does mid-line. Mounting needs root (this project's CI and machines run as
root); elsewhere the test is skipped.

The run ends with one line and exit 1, its manifest says the disk was full, and once there is
space a resume finishes it with every dialogue exactly once."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import run_cli
from tests.graphs.loopback_run import canned_server, check_consistent, expected_ids, write_config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "small"
    mount.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1200k,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({made.stderr.strip() or 'not root'})")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_stops_the_run_with_one_line_and_resume_finishes(tmp_path, small_fs):
    with canned_server(delay_s=0.005) as server:
        config = write_config(tmp_path, server.base_url, dialogues=60, concurrency=4)
        run_dir = small_fs / "run"
        full = run_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert full.returncode == 1, (full.stdout, full.stderr)
        lines = full.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in full.stderr, full.stderr
        assert "no space left" in lines[0] and f"sparring resume {run_dir}" in lines[0]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "no space left" in manifest["runs"][0]["error"]
        assert not (run_dir / ".reserve").exists()

        # Space is freed (the file system grows), and the run goes on where it stopped.
        subprocess.run(["mount", "-o", "remount,size=64m", str(small_fs)], check=True)
        again = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert again.returncode == 0, again.stderr
    check_consistent(run_dir, expected_ids(config))
    assert os.statvfs(small_fs).f_bfree > 0
