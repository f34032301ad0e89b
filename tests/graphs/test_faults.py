"""Faults over real HTTP: a share of the calls fail (500, 429 + retry-after, timeouts, malformed
JSON, dropped connections, a permanent 400). A fault that outlasts the retries fails only its
dialogue, which is recorded with its error and trace id; the run goes on, reports the failures
(exit status 3, manifest), loses nothing, and a resume retries the failed dialogues."""

from __future__ import annotations

import json

import pytest

from sparring.traces.read import iter_spans
from tests.cli import run_cli
from tests.graphs.loopback_run import canned_server, check_complete, expected_ids, read_lines, write_config

MIX = {"http_500": 0.07, "http_429": 0.07, "slow": 0.04, "garbage": 0.04, "drop": 0.04, "status": 0.02}
MIX_OPTIONS = {"http_429": {"retry_after_ms": 20}, "slow": {"delay_s": 1.5}, "status": {"status": 400}}
# Two tries per request: with ~28% of calls faulted, ~8% of requests fail for good, so of 24
# dialogues of 6 calls each some fail (P(none) < 1e-4) and most succeed.
RETRY = {"attempts": 2, "initial_wait_s": 0.01, "max_wait_s": 0.05, "timeout_s": 0.4}


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_faults_fail_only_their_dialogue_and_resume_retries_them(tmp_path, workers):
    with canned_server(delay_s=0.01) as server:
        server.fail_mix(MIX, seed=11, options=MIX_OPTIONS)
        config = write_config(tmp_path, server.base_url, dialogues=24, concurrency=6, retry=RETRY, workers=workers)
        run_dir = tmp_path / "run"
        expected = expected_ids(config)
        first = run_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        faults = server.stats.faults
        assert set(faults) == set(MIX), f"every fault kind was served: {faults}"

        assert first.returncode == 3, first.stderr  # finished, some dialogues failed
        rows = read_lines(run_dir / "dialogues.jsonl")
        assert sorted(r["id"] for r in rows) == sorted(expected)  # every dialogue written once
        failed = [r for r in rows if r["status"] == "failed"]
        assert 0 < len(failed) < len(rows)
        trace_ids = {span["trace_id"] for span in iter_spans(run_dir)}
        for row in failed:
            assert row["error"] and row["stop_reason"] == "error"
            assert row["trace_id"] in trace_ids  # the failure can be looked up turn by turn
        assert any("gave up after 2 attempts" in r["error"] or "HTTP 400" in r["error"] for r in failed)
        ok = {r["id"] for r in rows if r["status"] == "ok"}
        paired = {p["dialogue_id"] for p in read_lines(run_dir / "preferences.jsonl")}
        assert paired <= ok  # none from a failure
        for row in rows:  # an ok dialogue without its pair had a critic, reviser or verifier call fail for good
            if row["id"] in ok - paired:
                assert [e for e in (*(v["error"] for v in row["verdicts"]), *(r["error"] for r in row["revisions"]))
                        if e], row["id"]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "completed"
        assert manifest["counts"]["failed"] == len(failed) and manifest["counts"]["dialogues"] == len(ok)
        assert f"({len(failed)} failed)" in first.stdout

        server.reset()  # the server recovers; failed dialogues are retried, written ones kept
        second = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert second.returncode == 0, second.stderr
        manifest = check_complete(run_dir, expected)
        assert manifest["runs"][1]["counts"]["skipped"] == len(ok)
        assert manifest["runs"][1]["counts"]["done"] == len(failed)


@pytest.mark.parametrize("workers", [1, 2], ids=["one-process", "two-workers"])
def test_max_failures_stops_the_run_cleanly(tmp_path, workers):
    with canned_server(delay_s=0.01) as server:
        server.fail_share("http_500", 1.0)  # the server is down for good
        config = write_config(tmp_path, server.base_url, dialogues=20, concurrency=2, retry=RETRY, workers=workers)
        run_dir = tmp_path / "run"
        stopped = run_cli("run", str(config), "--out", str(run_dir), "--max-failures", "2", "-q", cwd=tmp_path,
                          timeout=600)
        assert stopped.returncode == 1, stopped.stderr
        manifest = json.loads((run_dir / "manifest.json").read_text())
        assert manifest["status"] == "failed" and "--max-failures 2" in manifest["runs"][0]["error"]
        rows = read_lines(run_dir / "dialogues.jsonl")
        # Stopped after the third failure; the other dialogue in flight may finish (fail) too. A
        # worker's failures reach the parent in batches (graphs/_worker_process.FLUSH_INTERVAL_S), and a
        # dialogue fails here in ~40 ms, so each worker may fail two more before it hears the stop.
        most = 4 if workers == 1 else 3 + 2 * workers
        assert 3 <= len(rows) <= most and {r["status"] for r in rows} == {"failed"}
        # One call (two tries) per dialogue written or cancelled in flight, then nothing.
        assert server.stats.chat_requests <= (most if workers == 1 else most + workers) * 2

        server.reset()
        resumed = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert resumed.returncode == 0, resumed.stderr
        check_complete(run_dir, expected_ids(config))
