"""How long ``sparring run`` takes to refuse a backend that cannot work (issue 17).

    python benchmarks/time_to_fail.py

Whole process, from start to exit (Python start-up and imports included), for: nothing
listening on the port; a server answering 401 to every request (wrong key); a server that does
not serve the configured model; and a server that accepts connections and never answers (the
probe waits ``min(10 s, backend.retry.timeout_s)``; the default timeout, 120 s, is used). Each
line: exit status, wall seconds, CPU seconds of the process (wall time follows the machine's
load; CPU time much less), the one line printed; first, the same command with ``--dry-run``
(start-up and config checks, no backend), the floor under every figure. Before issue 17 each of these ran every
dialogue through its retries and ended "completed ... (N failed)" with exit 3, or (the silent
server) sat at 0 done.
"""

from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loopback import FakeOpenAIServer  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def run(folder: Path, name: str, base_url: str, *flags: str, **backend: object) -> None:
    config = {"name": name, "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model",
                                        **backend},
              "principles": {"sets": ["quickstart"]}, "report": {"embeddings": False},
              "scenarios": [{"topic": "travel", "personas": ["Ana: a traveller", "an agent: books trips"]}],
              "jobs": {"dialogues_per_scenario": 40}}
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "BENCH_KEY": "a-wrong-key"}
    t0, cpu0 = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "sparring.graphs.cli", "run", str(path), "--out",
                           str(folder / name), "-q", *flags], cwd=REPO, capture_output=True, text=True, env=env)
    seconds, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
    last = (proc.stderr.strip().splitlines() or [""])[-1]
    print(f"{name:16s} exit {proc.returncode}  wall {seconds:5.2f} s  CPU {cpu:5.2f} s  "
          f"written: {(folder / name).exists()}  {last[:150]}")


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes: what the machine's load does not inflate."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            dead = f"http://127.0.0.1:{sock.getsockname()[1]}/v1"
        # The same command with --dry-run: start-up and config checks alone, no backend.
        run(folder, "dry-run", dead, "--dry-run")
        run(folder, "nothing-there", dead)
        with FakeOpenAIServer(api_key="the-right-key") as server:
            run(folder, "wrong-key-401", server.base_url, api_key_env="BENCH_KEY")
        with FakeOpenAIServer() as server:
            run(folder, "unknown-model", server.base_url, model="no-such-model")
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(16)
            run(folder, "never-answers", f"http://127.0.0.1:{silent.getsockname()[1]}/v1")


if __name__ == "__main__":
    main()
