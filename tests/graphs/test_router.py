"""A real router, tested: vllm-router (the PyPI wheel, policy sticky_least_loaded) in front of two
loopback servers, each in its own process, keyed on the session header sparring sends with every
request of a dialogue (``x-session-id``).

From the servers' own request logs: at least 99% of each dialogue's calls land on one server,
the calls split no worse than 60/40, and a server SIGKILLed in the middle of a run loses nothing
(its dialogues' calls go to the other after retries; every dialogue written exactly once)."""

from __future__ import annotations

import json
import time

import pytest

from benchmarks._router import (
    affinity,
    loopback_servers,
    process_cpu_s,
    requests_by_session,
    router_executable,
    vllm_router,
)
from sparring.graphs.runtime.manifest import session_id
from tests.cli import run_cli
from tests.graphs.loopback_run import check_complete, expected_ids, start_cli, write_config

DIALOGUES = 40  # max_turns 4: a dozen calls each (planner, 4 turns, critiques, revisions, verifications)
RETRY = {"attempts": 6, "initial_wait_s": 0.2, "max_wait_s": 2.0, "timeout_s": 10}


def logged(servers) -> int:
    return sum(len(s.log.read_text().splitlines()) for s in servers if s.log.exists())


def sessions_of(run_dir, ids) -> set[str]:
    run_id = json.loads((run_dir / "manifest.json").read_text())["run_id"]
    return {session_id(run_id, i) for i in ids}


def test_router_keeps_each_dialogue_on_one_server_and_fails_over(tmp_path):
    executable = router_executable()
    if executable is None:
        pytest.fail("vllm-router is not installed: scripts/install.sh dev puts it in .venv-router")
    with loopback_servers(tmp_path, 2, delay_s=0.02) as servers, \
            vllm_router(executable, [s.url for s in servers], tmp_path / "router.log") as router:
        config = write_config(tmp_path, router.base_url, dialogues=DIALOGUES, concurrency=10, max_turns=4, retry=RETRY)
        ids = expected_ids(config)
        cpu0 = process_cpu_s(router.proc.pid)
        first = run_cli("run", str(config), "--out", str(tmp_path / "a"), "-q", cwd=tmp_path, timeout=300)
        router_cpu = process_cpu_s(router.proc.pid) - cpu0
        assert first.returncode == 0, first.stderr
        check_complete(tmp_path / "a", ids)  # the first flagged turn: the later ones answer no revision
        by_session = requests_by_session(servers)
        assert set(by_session) == sessions_of(tmp_path / "a", ids), "a request without its dialogue's session header"
        figures = affinity(by_session)
        print(f"\nrouter: {figures}, CPU {1000 * router_cpu / figures['calls']:.3f} ms per request")
        assert figures["worst_share"] >= 0.99
        assert max(figures["call_split"]) <= 0.6

        # A second run; one server dies (SIGKILL) a third of the way through.
        before = logged(servers)
        proc = start_cli("run", str(config), "--out", str(tmp_path / "b"), "-q", cwd=tmp_path)
        deadline = time.monotonic() + 120
        while logged(servers) - before < figures["calls"] // 3:  # the first run's calls, a third of them
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.01)
        servers[1].kill()
        killed_at = time.time()
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        check_complete(tmp_path / "b", ids)  # every dialogue exactly once, all ok
        second = sessions_of(tmp_path / "b", ids)
        on_dead = {json.loads(line)["headers"]["x-session-id"] for line in servers[1].log.read_text().splitlines()}
        moved = second & on_dead
        assert moved, "no dialogue of the second run was on the server that died"
        survivors = [json.loads(line) for line in servers[0].log.read_text().splitlines()]
        after = {r["headers"]["x-session-id"] for r in survivors if r["t"] > killed_at}
        assert moved & after, "the dead server's dialogues did not continue on the other"
