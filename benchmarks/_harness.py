"""What the orchestration benchmarks share: the loopback server in its own process, a run
config pointed at it, and the figures read back from the run directory."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def loopback_server(delay_s: float) -> Iterator[str]:
    """Start ``python -m benchmarks.loopback --canned`` in another process; yields its base URL."""
    proc = subprocess.Popen([sys.executable, "-m", "benchmarks.loopback", "--canned", "--delay", str(delay_s)],
                            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("port "):
            raise RuntimeError(f"the loopback server did not start: {line!r}")
        yield f"http://127.0.0.1:{int(line.split()[1])}/v1"
    finally:
        if proc.stdin:
            proc.stdin.close()  # the server exits when its stdin closes
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def server_stats(base_url: str) -> dict[str, Any]:
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/_stats", timeout=10) as resp:
        return json.loads(resp.read())


SPLIT_ROLES = ("side_a", "side_b")
"""With a second server (``personas_url``), the roles it serves; the first serves the others."""


def write_config(folder: Path, base_url: str, *, dialogues: int, concurrency: int, max_in_flight: int,
                 max_turns: int = 6, record_content: bool = True, workers: int = 1,
                 personas_url: str | None = None) -> Path:
    """A run of ``dialogues`` assistant-mode dialogues over 10 scenarios, every turn to ``max_turns``.
    ``personas_url``: the two persona roles on a second backend there (``SPLIT_ROLES``)."""
    scenarios = 10 if dialogues >= 10 else 1
    backend = {"kind": "openai_compat", "base_url": base_url, "model": "fake-model", "max_in_flight": max_in_flight,
               "retry": {"timeout_s": 3600}}
    backends: dict[str, Any] = {"backend": backend} if personas_url is None else {
        "backends": {"default": backend, "personas": {**backend, "base_url": personas_url}},
        "roles": {role: "personas" for role in SPLIT_ROLES}}
    config = {
        "name": "bench", "seed": 1, "concurrency": concurrency, "workers": workers, **backends,
        "principles": {"sets": ["quickstart"]},
        "dialogue": {"mode": "assistant", "max_turns": max_turns},
        "jobs": {"dialogues_per_scenario": -(-dialogues // scenarios), "max_dialogues": dialogues},
        "tracing": {"record_content": record_content},
        "scenarios": [{"topic": f"topic {i}", "subtopic": f"a question about thing {i}",
                       "personas": [f"Person {i}: a curious customer", "an adviser: knows the subject"]}
                      for i in range(scenarios)],
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def rows(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            yield json.loads(line)


def run_figures(run_dir: Path) -> dict[str, Any]:
    """Calls, agent steps and dialogues as written: what the per-turn figures divide by."""
    dialogues = list(rows(run_dir / "dialogues.jsonl"))
    from sparring.traces.read import iter_spans

    agent_steps = sum(1 for span in iter_spans(run_dir) if span["name"] in ("plan", "invoke_agent"))
    calls = [d["usage"]["calls"] for d in dialogues]
    return {"dialogues": len(dialogues), "failed": sum(d["status"] != "ok" for d in dialogues),
            "calls": sum(calls), "longest_calls": max(calls, default=0), "agent_steps": agent_steps,
            "turns": sum(d["turns"] for d in dialogues)}


def time_post_run() -> list[float]:
    """Time (process CPU) the end-of-run statistics and report apart: they are a report on the
    data (an embedding model, ROUGE-L over every dialogue), not orchestration. Returns the
    accumulator: [CPU seconds, wall seconds]."""
    import time

    from sparring.graphs.runtime import pipeline

    spent = [0.0, 0.0]

    def timed(fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            t0, w0 = time.process_time(), time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[0] += time.process_time() - t0
                spent[1] += time.perf_counter() - w0
        return wrapper

    pipeline._write_stats = timed(pipeline._write_stats)
    pipeline.write_report_quietly = timed(pipeline.write_report_quietly)
    return spent


def skip_post_run() -> None:
    """No end-of-run statistics and report (their embedding model would dominate a memory figure)."""
    from sparring.graphs.runtime import pipeline

    pipeline._write_stats = lambda *args, **kwargs: None
    pipeline.write_report_quietly = lambda *args, **kwargs: None
