"""Memory: the orchestrator's peak memory with many dialogues in flight at once.

    python benchmarks/memory.py [--in-flight 1000] [--delay 5] [--max-turns 6] [--workers 1]

The loopback server (another process) answers every call after ``--delay`` seconds,
long enough that all ``--in-flight`` dialogues (concurrency = max_in_flight =
``--in-flight``, that many dialogues in the run) are in flight together. The
memory of this process, plus with ``--workers N`` the worker processes it forks,
is sampled every 50 ms: before the run (interpreter, imports, a warm-up run) and
at its peak. One process: its RSS. With workers: the sum of every process's PSS
(a page the workers still share with the parent after fork counts once, split
among them; summed RSS would count it in each). Per in-flight dialogue = (peak -
before) / N; the extrapolation to 10,000 in flight is before + 10,000 x that.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from benchmarks._harness import loopback_server, run_figures, server_stats, skip_post_run, write_config  # noqa: E402
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402

MIB = 1024 * 1024


class PeakMemory:
    """Samples memory in a thread (the event loop is busy; a thread still gets the GIL)."""

    def __init__(self, workers: int) -> None:
        self.proc = psutil.Process()
        self.workers = workers
        self._cmdline = self.proc.cmdline()  # forked workers run this same command line
        self.before = 0
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def now(self) -> int:
        if self.workers == 1:
            return self.proc.memory_info().rss
        total = 0
        for proc in [self.proc, *self.proc.children()]:
            try:  # the loopback server is a child too, with another command line
                if proc is self.proc or proc.cmdline() == self._cmdline:
                    total += proc.memory_full_info().pss
            except psutil.NoSuchProcess:  # a worker that just ended
                pass
        return total

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.now())

    def __enter__(self) -> PeakMemory:
        self.before = self.peak = self.now()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--in-flight", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=5.0, help="seconds per call (default 5)")
    parser.add_argument("--max-turns", type=int, default=6)
    parser.add_argument("--workers", type=int, default=1, help="the run's worker processes (config 'workers')")
    args = parser.parse_args()
    n = args.in_flight
    skip_post_run()  # the statistics' embedding model would be the peak, not the dialogues in flight
    with loopback_server(args.delay) as base_url, tempfile.TemporaryDirectory(prefix="sparring-mem-") as tmp:
        folder = Path(tmp)
        warm = write_config(folder, base_url, dialogues=4, concurrency=4, max_in_flight=4, max_turns=args.max_turns)
        asyncio.run(execute(request_from_config(warm, out=folder / "warm-up")))
        config = write_config(folder, base_url, dialogues=n, concurrency=n, max_in_flight=n,
                              max_turns=args.max_turns, workers=args.workers)
        request = request_from_config(config, out=folder / "run")
        with PeakMemory(args.workers) as rss:
            result = asyncio.run(execute(request))
        figures = run_figures(folder / "run")
        stats = server_stats(base_url)
    before = rss.before
    per = (rss.peak - before) / n
    print(f"{n} dialogues in flight ({figures['dialogues']} written, {figures['failed']} failed, status "
          f"{result.status}); the server saw up to {stats['max_concurrent']} requests at once")
    what = "RSS" if args.workers == 1 else f"PSS of this process and its {args.workers} workers"
    print(f"{what}: before the run {before / MIB:.0f} MiB, peak {rss.peak / MIB:.0f} MiB: "
          f"{per / 1024:.1f} KiB per in-flight dialogue")
    print(f"extrapolated to 10,000 in flight: {(before + 10_000 * per) / MIB / 1024:.2f} GiB")


if __name__ == "__main__":
    main()
