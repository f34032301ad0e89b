"""vllm-router in front of loopback servers, each in its own process: what the router test
(tests/graphs/test_router.py) and benchmarks/router_overhead.py share.

The servers log every chat request's headers (``--log``), so the checks read where each
dialogue's calls landed from the servers' own logs; a server can be SIGKILLed mid-run.
The router is the ``vllm-router`` wheel from PyPI (``scripts/install.sh dev`` puts it in
``.venv-router``; ``SPARRING_VLLM_ROUTER`` names another executable).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SESSION_HEADER = "x-session-id"
ROUTER_FLAGS = (
    # Find a dead worker within a second and stop sending to it at its first failure; the
    # defaults let a client see a few HTTP 500s ("Request failed: ...") before the breaker opens.
    "--worker-startup-check-interval", "1", "--worker-startup-timeout-secs", "60",
    "--cb-failure-threshold", "1", "--cb-timeout-duration-secs", "3",
    "--health-check-interval-secs", "1", "--health-failure-threshold", "1", "--health-success-threshold", "1",
)


def router_executable() -> str | None:
    """The vllm-router executable: $SPARRING_VLLM_ROUTER, .venv-router's, or one on PATH."""
    for candidate in (os.environ.get("SPARRING_VLLM_ROUTER"), str(REPO / ".venv-router" / "bin" / "vllm-router"),
                      shutil.which("vllm-router")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a running process, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A loopback server in its own process."""

    proc: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@contextmanager
def loopback_servers(folder: Path, count: int = 2, delay_s: float = 0.0) -> Iterator[list[Server]]:
    """``count`` canned loopback servers (benchmarks.loopback), each logging its chat requests."""
    servers: list[Server] = []
    try:
        for index in range(count):
            log = folder / f"server{index}.jsonl"
            proc = subprocess.Popen([sys.executable, "-m", "benchmarks.loopback", "--canned", "--delay", str(delay_s),
                                     "--log", str(log)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    text=True)
            line = proc.stdout.readline() if proc.stdout else ""
            if not line.startswith("port "):
                proc.kill()
                raise RuntimeError(f"a loopback server did not start: {line!r}")
            servers.append(Server(proc, int(line.split()[1]), log))
        yield servers
    finally:
        for server in servers:
            if server.proc.poll() is None:
                if server.proc.stdin:
                    server.proc.stdin.close()  # it exits when its stdin closes
                try:
                    server.proc.wait(10)
                except subprocess.TimeoutExpired:
                    server.kill()


@dataclass
class Router:
    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@contextmanager
def vllm_router(executable: str, workers: list[str], log: Path, *, policy: str = "sticky_least_loaded",
                timeout_s: float = 120.0) -> Iterator[Router]:
    """vllm-router in front of ``workers`` (URLs without /v1), ready to route when yielded."""
    port = free_port()
    command = [executable, "--host", "127.0.0.1", "--port", str(port), "--prometheus-port", str(free_port()),
               "--worker-urls", *workers, "--policy", policy, *ROUTER_FLAGS]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "RUST_LOG": "warn"})
    router = Router(proc, port)
    try:
        deadline = time.monotonic() + timeout_s
        while not _ready(router):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"vllm-router did not become ready (status {proc.poll()}); see {log}")
            time.sleep(0.2)
        yield router
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _ready(router: Router) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{router.port}/readiness", timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def requests_by_session(servers: list[Server]) -> dict[str, Counter[int]]:
    """Session header -> chat requests per server index, read from the servers' logs."""
    out: dict[str, Counter[int]] = {}
    for index, server in enumerate(servers):
        if not server.log.exists():
            continue
        for line in server.log.read_text(encoding="utf-8").splitlines():
            session = json.loads(line)["headers"].get(SESSION_HEADER, "")
            out.setdefault(session, Counter())[index] += 1
    return out


def affinity(by_session: dict[str, Counter[int]]) -> dict[str, Any]:
    """Share of each session's calls on its main server (worst and mean), and the split of calls
    and of sessions between the servers."""
    shares = [max(c.values()) / sum(c.values()) for c in by_session.values()]
    calls: Counter[int] = Counter()
    homes: Counter[int] = Counter()
    for counts in by_session.values():
        calls.update(counts)
        homes[counts.most_common(1)[0][0]] += 1
    total = sum(calls.values())
    return {"sessions": len(by_session), "calls": total, "worst_share": min(shares, default=0.0),
            "mean_share": sum(shares) / len(shares) if shares else 0.0,
            "call_split": [calls[i] / total for i in sorted(calls)] if total else [],
            "session_split": [homes[i] for i in sorted(homes)]}
