"""Faults at realistic rates, end to end (issue 17): the share of dialogues that complete.

    python benchmarks/fault_mix.py [--dialogues 200] [--concurrency 32] [--workers 1 2] [--seed 17]

``sparring run`` (the CLI, a subprocess, default retry policy but a 2 s request timeout) against
the loopback server, which answers with canned agent replies, free text when no schema is sent,
and serves this mix of faults, drawn per request from a seeded generator:

    10% HTTP 500, 5% HTTP 429 (retry-after 0), 3% timeouts (a reply after 3 s), 2% dropped
    connections, 5% replies cut mid-JSON (HTTP 200)

Printed per worker count, side by side: dialogues completed / written, the exit status, whether
every failure is recorded with its error and a trace id found in traces.jsonl, the structured-
output mode the backend(s) ended on, the faults served, the wall time of the whole process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.loopback import FakeOpenAIServer  # noqa: E402
from benchmarks.loopback.canned import agent_reply  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402

MIX = {"http_500": 0.10, "http_429": 0.05, "slow": 0.03, "drop": 0.02, "bad_json": 0.05}
MIX_OPTIONS = {"slow": {"delay_s": 3.0}, "http_429": {"retry_after": 0}}
REPO = Path(__file__).resolve().parents[1]


def config_for(folder: Path, base_url: str, dialogues: int, concurrency: int, workers: int) -> Path:
    import yaml

    config = {
        "name": "fault-mix", "seed": 3, "concurrency": concurrency, "workers": workers,
        "backend": {"kind": "openai_compat", "base_url": base_url, "model": "fake-model", "max_in_flight": 64,
                    "retry": {"timeout_s": 2.0}},
        "principles": {"sets": ["quickstart"]},
        "dialogue": {"mode": "assistant", "max_turns": 4},
        "jobs": {"dialogues_per_scenario": -(-dialogues // 10), "max_dialogues": dialogues},
        "report": {"embeddings": False},
        "scenarios": [{"topic": f"topic {i}", "subtopic": f"a question about thing {i}",
                       "personas": [f"Person{i}: a curious customer", "an adviser: knows the subject"]}
                      for i in range(10)],
    }
    path = folder / f"fault-mix-{workers}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


def measure(dialogues: int, concurrency: int, workers: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, \
            FakeOpenAIServer(responder=agent_reply, record_requests=False, reply_delay_s=0.02) as server:
        folder = Path(tmp)
        server.fail_mix(MIX, seed=seed, options=MIX_OPTIONS)
        config = config_for(folder, server.base_url, dialogues, concurrency, workers)
        run_dir = folder / "run"
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "sparring.graphs.cli", "run", str(config), "--out", str(run_dir),
                               "-q"], cwd=REPO, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        rows = [json.loads(line) for line in (run_dir / "dialogues.jsonl").read_text().splitlines()]
        traces = {span["trace_id"] for span in iter_spans(run_dir)}
        failed = [r for r in rows if r["status"] == "failed"]
        manifest = json.loads((run_dir / "manifest.json").read_text())
        stats = server.stats
        return {
            "workers": workers, "written": len(rows), "completed": len(rows) - len(failed),
            "share": (len(rows) - len(failed)) / dialogues, "exit": proc.returncode,
            "failures_recorded": all(r.get("error") and r.get("trace_id") in traces for r in failed),
            "errors": sorted({str(r["error"])[:90] for r in failed}),
            "structured_output": manifest["backend"]["structured_output"],
            "requests": stats.chat_requests, "faults": dict(stats.faults), "wall_s": round(wall, 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    print(f"fault mix {MIX}, {args.dialogues} dialogues, concurrency {args.concurrency}")
    for workers in args.workers:
        r = measure(args.dialogues, args.concurrency, workers, args.seed)
        print(f"workers {workers}: {r['completed']}/{args.dialogues} completed ({r['share']:.1%}), "
              f"{r['written']} written, exit {r['exit']}, failures recorded with error and trace id: "
              f"{r['failures_recorded']}, structured output: {r['structured_output']}, "
              f"{r['requests']} requests, faults {r['faults']}, wall {r['wall_s']} s")
        for error in r["errors"]:  # type: ignore[attr-defined]
            print(f"  failed: {error}")


if __name__ == "__main__":
    main()
