"""vllm-router's cost and affinity in front of two loopback servers, and the same run sent
straight to one server, side by side.

    python benchmarks/router_overhead.py [--dialogues 200] [--concurrency 64] [--delay 0.05]
        [--policy sticky_least_loaded]

Each server (benchmarks.loopback, canned replies after --delay) and the router run in their own
processes; sparring's whole run path runs here. Figures: calls, the router's CPU per request
(its process, every thread), the share of each dialogue's calls on one server (worst and mean),
the split of calls and of dialogues between the servers, and this process's CPU per call and
wall time direct and through the router.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from benchmarks._harness import skip_post_run, write_config  # noqa: E402
from benchmarks._router import (  # noqa: E402
    affinity,
    loopback_servers,
    process_cpu_s,
    requests_by_session,
    router_executable,
    vllm_router,
)
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402


def run(folder: Path, base_url: str, args: argparse.Namespace, name: str) -> tuple[float, float, int]:
    """One run: (wall s, CPU s of this process, calls)."""
    config = write_config(folder, base_url, dialogues=args.dialogues, concurrency=args.concurrency,
                          max_in_flight=args.concurrency, max_turns=4)
    request = request_from_config(config, out=folder / name)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = asyncio.run(execute(request))
    if result.status != "completed":
        raise SystemExit(f"the {name} run ended {result.status}")
    return time.perf_counter() - wall0, time.process_time() - cpu0, result.manifest.usage.calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--delay", type=float, default=0.05, help="seconds per call (default 0.05)")
    parser.add_argument("--policy", default="sticky_least_loaded")
    args = parser.parse_args()
    executable = router_executable()
    if executable is None:
        raise SystemExit("vllm-router is not installed: scripts/install.sh dev puts it in .venv-router")
    skip_post_run()
    print(f"{args.dialogues} dialogues of 4 turns, concurrency {args.concurrency}, {args.delay * 1000:.0f} ms per "
          f"call, policy {args.policy}; load {os.getloadavg()[0]:.2f}", flush=True)
    with tempfile.TemporaryDirectory(prefix="sparring-router-") as tmp:
        folder = Path(tmp)
        (folder / "direct").mkdir()
        (folder / "routed").mkdir()
        with loopback_servers(folder / "direct", 1, args.delay) as servers:
            direct = run(folder / "direct", servers[0].url + "/v1", args, "run")
        with loopback_servers(folder / "routed", 2, args.delay) as servers:
            with vllm_router(executable, [s.url for s in servers], folder / "router.log", policy=args.policy) as r:
                cpu0 = process_cpu_s(r.proc.pid)
                routed = run(folder / "routed", r.base_url, args, "run")
                router_cpu = process_cpu_s(r.proc.pid) - cpu0
            fig = affinity(requests_by_session(servers))
    for name, (wall, cpu, calls) in (("direct", direct), ("routed", routed)):
        print(f"{name}:  wall {wall:.1f} s, sparring CPU {1000 * cpu / calls:.2f} ms per call ({calls} calls)")
    print(f"router:  CPU {1000 * router_cpu / max(fig['calls'], 1):.3f} ms per request over {fig['calls']} requests")
    print(f"affinity: worst {fig['worst_share']:.3f}, mean {fig['mean_share']:.4f} of a dialogue's calls on one "
          "server; "
          f"calls split {' / '.join(f'{x:.2f}' for x in fig['call_split'])}; "
          f"dialogues split {' / '.join(map(str, fig['session_split']))}")


if __name__ == "__main__":
    main()
