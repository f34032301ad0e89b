"""The real engines the integration tests drive: each started once per session, never two at once.

- ``embedded``: the in-process vLLM engine on the embedded model, as users get
  it from ``create_backend(BackendConfig())`` (tests marked ``engine``).
- ``server``: vLLM's OpenAI-compatible HTTP server on the same model folder,
  in a subprocess on a free loopback port (tests marked ``server``).

Two vLLM engines on a 2-core machine would each get half the cores and twice
the memory pressure, so starting one first stops the other; ``conftest``
orders the tests (engine, then the rest, then server) so each starts once.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from sparring.agents.backends import Backend, BackendConfig, create_backend
from sparring.agents.backends.embedded import MODEL_NAME, ensure_model
from sparring.agents.backends.vllm_engine import prepare_cpu_environment

SEED_OFFSET = int(os.environ.get("SPARRING_TEST_SEED", "0"))
"""Added to every seed the engine and server tests give the model: ``SPARRING_TEST_SEED=1 pytest -m
"engine or server"`` runs them on other samples. They assert mechanics (structure, files, spans, exit
status, counts that do not depend on the text), so they must pass whatever the tiny model writes."""


def seeded(seed: int) -> int:
    """``seed`` moved by ``SPARRING_TEST_SEED`` (see ``SEED_OFFSET``)."""
    return seed + SEED_OFFSET


SERVER_START_TIMEOUT_S = 900.0
"""Generous: a cold start on a busy 2-core machine has been seen past 5 minutes."""


def stop_group(proc: subprocess.Popen[Any], grace_s: float = 30) -> None:
    """Stop a process started with ``start_new_session=True`` and every process of its group: SIGTERM,
    then SIGKILL after ``grace_s``."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def free_port() -> int:
    """A loopback port nobody listens on right now (and, once closed, nobody will soon)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EmbeddedEngine:
    """Holds the one started embedded backend of the session."""

    def __init__(self) -> None:
        self.backend: Backend | None = None
        self.failure: BaseException | None = None

    async def get(self) -> Backend:
        if self.failure is not None:  # one failed start is reported by every test, not retried by each
            raise RuntimeError(f"the embedded engine failed to start earlier: {self.failure}")
        if self.backend is None:
            server.stop()
            backend = create_backend(BackendConfig())
            try:
                await backend.start()
            except BaseException as exc:
                self.failure = exc
                raise
            self.backend = backend
        return self.backend

    async def close(self) -> None:
        backend, self.backend = self.backend, None
        if backend is not None:
            await backend.aclose()


class VLLMServer:
    """``python -m vllm.entrypoints.openai.api_server`` on the embedded model, in its own process group."""

    def __init__(self, served_name: str = MODEL_NAME) -> None:
        self.model = served_name
        self.port: int | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_dir: Path | None = None
        self.startup_s: float | None = None
        self.failure: str | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def log_path(self) -> Path | None:
        return self._log_dir / "server.log" if self._log_dir else None

    def requests(self) -> list[dict[str, Any]]:
        """The server's own log of the chat requests it received (headers and body; tests/request_log.py)."""
        path = self._log_dir / "requests.jsonl" if self._log_dir else None
        if path is None or not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]

    def ensure_started(self) -> VLLMServer:
        if self.failure is not None:  # one failed start is reported by every test, not retried by each
            raise RuntimeError(f"the vLLM server failed to start earlier: {self.failure}")
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.stop()
        model_dir = ensure_model()
        prepare_cpu_environment()  # the same core binding the in-process engine uses
        self.port = free_port()
        self._log_dir = Path(tempfile.mkdtemp(prefix="sparring-vllm-server-"))
        cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model_dir),
               "--served-model-name", self.model, "--host", "127.0.0.1", "--port", str(self.port),
               # CPU: fp32 (no bf16 units here), no torch.compile, a fixed KV cache (as VLLMBackend does).
               "--dtype", "float32", "--enforce-eager", "--kv-cache-memory-bytes", str(2 << 30),
               "--max-num-seqs", "64", "--disable-log-stats", "--uvicorn-log-level", "warning",
               "--middleware", "tests.request_log.RequestLog"]
        env = {**os.environ, "SPARRING_REQUEST_LOG": str(self._log_dir / "requests.jsonl"),
               "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[1]),
                                                         os.environ.get("PYTHONPATH")) if p)}
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:  # type: ignore[arg-type]
            # Own session: stop() signals the API server and its engine-core child together.
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env=env, start_new_session=True)
        try:
            self._wait_ready(SERVER_START_TIMEOUT_S)
        except RuntimeError as exc:
            self.failure = str(exc)
            raise
        self.startup_s = time.perf_counter() - t0
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc is not None
            status = self.proc.poll()
            if status is not None:
                log = self.log_tail()
                self.stop()
                raise RuntimeError(f"the vLLM server exited with status {status} while starting; "
                                   f"its log ends:\n{log}")
            with contextlib.suppress(OSError, ValueError):
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=5) as resp:
                    served = [m["id"] for m in json.load(resp)["data"]]
                    if self.model in served:
                        return
            time.sleep(1.0)
        log = self.log_tail()
        self.stop()
        raise RuntimeError(f"the vLLM server did not answer /v1/models within {timeout_s:.0f} s; its log ends:\n{log}")

    def log_tail(self, lines: int = 60) -> str:
        path = self.log_path
        if path is None or not path.is_file():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_group(proc)
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None


embedded = EmbeddedEngine()
server = VLLMServer()
atexit.register(server.stop)  # also after Ctrl-C or an internal pytest error: leave no server behind
