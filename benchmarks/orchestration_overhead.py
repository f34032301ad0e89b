"""Orchestration overhead: the orchestrator's CPU per agent turn, and how close the run comes
to the time the calls alone would take.

    python benchmarks/orchestration_overhead.py [--dialogues 1000] [--concurrency 256] [--delay 0.5]
        [--max-in-flight 256] [--max-turns 6] [--workers 1] [--repeat 1] [--split] [--profile out.html]

A loopback OpenAI-compatible server (``benchmarks.loopback``, in another
process) answers every call with a canned, schema-conformant reply after
``--delay`` seconds; the critic finds a violation in every original turn, so
every dialogue plans, speaks ``--max-turns`` turns, judges, revises and
verifies. The whole ``sparring run`` path runs in this process (graph steps,
checkpoints in state.sqlite, the OpenAI client, validation, spans, records),
and its CPU time is read with ``time.process_time`` plus, with ``--workers N``,
the CPU of the worker processes it forked (the server's CPU is not in it; a
warm-up run of 4 dialogues first keeps one-time imports out).

Figures:
- CPU ms per call (a model request) and per agent step (one planner, persona,
  critic, reviser or verifier step: a ``plan`` or ``invoke_agent`` span; with
  these canned replies every step is exactly one call).
- efficiency = ideal / measured wall time, ideal = max(longest dialogue's calls
  x delay, total calls x delay / concurrency).
- calls/s = calls / wall time, and calls per CPU second (1000 / ms per call): with a short
  ``--delay`` and a high ``--concurrency`` the server always has an answer ready, so these are
  the orchestrator's capacity at saturation (``sparring plan`` sizing: how many GPUs one host feeds).

``--split`` runs each repeat twice, side by side: every role on one backend, then the two persona
roles (``side_a``, ``side_b``) on a second backend, a second loopback server in its own process
(each backend with its own client and ``max_in_flight``), printed as ``one`` and ``split``.

The end-of-run statistics and report (an embedding model, ROUGE-L over every
dialogue) are timed apart ("post s") and left out of both CPU and wall time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from benchmarks._harness import loopback_server, run_figures, time_post_run, write_config  # noqa: E402
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402


def process_cpu() -> float:
    """CPU seconds of this process and of the children it has waited for (the run's workers;
    the loopback server is waited for only when the benchmark ends)."""
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


def warm_up(base_url: str, folder: Path, workers: int, personas_url: str | None) -> None:
    """A few dialogues first: lazy imports and first-call caches are start-up costs, not per-turn ones."""
    config = write_config(folder, base_url, dialogues=4, concurrency=4, max_in_flight=4, workers=workers,
                          personas_url=personas_url)
    asyncio.run(execute(request_from_config(config, out=folder / "warm-up")))


def measure(args: argparse.Namespace, base_url: str, folder: Path, post_run: list[float],
            personas_url: str | None = None) -> dict[str, float]:
    """One run; ``post_run`` is the accumulator of ``time_post_run``; ``personas_url``: the split variant."""
    warm_up(base_url, folder, args.workers, personas_url)
    config = write_config(folder, base_url, dialogues=args.dialogues, concurrency=args.concurrency,
                          max_in_flight=args.max_in_flight, max_turns=args.max_turns, workers=args.workers,
                          personas_url=personas_url)
    run_dir = folder / "run"
    request = request_from_config(config, out=run_dir)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(async_mode="disabled")
        profiler.start()
    cpu0, wall0, post0, post_wall0 = process_cpu(), time.perf_counter(), *post_run
    result = asyncio.run(execute(request))
    post, post_wall = post_run[0] - post0, post_run[1] - post_wall0
    cpu, wall = process_cpu() - cpu0 - post, time.perf_counter() - wall0 - post_wall
    if profiler is not None:
        profiler.stop()
        Path(args.profile).write_text(profiler.output_html(), encoding="utf-8")
    if result.status != "completed":
        raise SystemExit(f"the run ended {result.status}: {result.manifest.runs[-1].error}")
    f = run_figures(run_dir)
    ideal = max(f["longest_calls"] * args.delay, f["calls"] * args.delay / args.concurrency)
    return {**f, "cpu_s": cpu, "wall_s": wall, "post_s": post, "ideal_s": ideal, "efficiency": ideal / wall,
            "cpu_ms_call": 1000 * cpu / f["calls"], "cpu_ms_step": 1000 * cpu / f["agent_steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dialogues", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--max-in-flight", type=int, default=None, help="backend requests in flight "
                        "(default: --concurrency)")
    parser.add_argument("--delay", type=float, default=0.5, help="seconds per call (default 0.5)")
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1, help="the run's worker processes (config 'workers')")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--split", action="store_true", help="also run with the persona roles on a second "
                        "loopback server, side by side with the one-backend run")
    parser.add_argument("--profile", help="write a pyinstrument HTML profile of the run here")
    args = parser.parse_args()
    args.max_in_flight = args.max_in_flight or args.concurrency
    print(f"{args.dialogues} dialogues, concurrency {args.concurrency}, max_in_flight {args.max_in_flight}, "
          f"{args.workers} worker(s), "
          f"{args.delay * 1000:.0f} ms per call, {args.max_turns} turns; load {os.getloadavg()[0]:.2f}", flush=True)
    print(f"{'variant':>7} {'calls':>6} {'steps':>6} {'longest':>7} {'wall s':>7} {'ideal s':>7} {'effic.':>6} "
          f"{'cpu s':>6} {'ms/call':>7} {'ms/step':>7} {'post s':>6} {'calls/s':>7} {'calls/cpu-s':>11}", flush=True)
    post_run = time_post_run()
    with loopback_server(args.delay) as base_url, \
            (loopback_server(args.delay) if args.split else nullcontext(None)) as personas_url:
        for _ in range(args.repeat):
            for variant, url in (("one", None), ("split", personas_url)) if args.split else (("one", None),):
                with tempfile.TemporaryDirectory(prefix="sparring-bench-") as tmp:
                    m = measure(args, base_url, Path(tmp), post_run, url)
                print(f"{variant:>7} {m['calls']:>6} {m['agent_steps']:>6} {m['longest_calls']:>7} "
                      f"{m['wall_s']:>7.1f} {m['ideal_s']:>7.1f} {m['efficiency']:>6.3f} {m['cpu_s']:>6.1f} "
                      f"{m['cpu_ms_call']:>7.2f} {m['cpu_ms_step']:>7.2f} {m['post_s']:>6.1f} "
                      f"{m['calls'] / m['wall_s']:>7.0f} {m['calls'] / m['cpu_s']:>11.0f}", flush=True)


if __name__ == "__main__":
    main()
