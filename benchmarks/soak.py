"""A long run under faults and kills (issue 26): every dialogue exactly once, memory and descriptors flat.

    flock /tmp/sparring-engine.lock python -m benchmarks.soak [--dialogues 10000] [--kills 5]

``sparring run`` (the CLI, a subprocess) against the loopback server serving fault_mix.py's mix of
faults (HTTP 500 and 429, timeouts, dropped connections, replies cut mid-JSON), SIGKILLed ``--kills``
times early in the run (at 4%, 8%, ... of the dialogues written), each kill followed by
``sparring resume``; the last attempt runs to the end, and once more if it left failed dialogues
(a resume retries them). Sampled every half second: the process's RSS and open descriptors, and
the dialogues written. Printed: exactly-once (ids against the config's jobs, pairs, traces), RSS of
the last tenth of the dialogues against the middle tenth (of the last attempt, which holds both),
descriptors, the time each resume took to write its first new dialogue, CPU per model call, the
end-of-run stats and report (time, size) and report.html's load time in Chromium.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psutil  # noqa: E402

from benchmarks.fault_mix import MIX, MIX_OPTIONS, config_for  # noqa: E402
from benchmarks.loopback import FakeOpenAIServer  # noqa: E402
from benchmarks.loopback.canned import agent_reply  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402

MIB = 1 << 20


@dataclass
class Attempt:
    """One process of the run: what was sampled while it ran."""

    command: str
    start_written: int
    samples: list[tuple[int, int, int]] = field(default_factory=list)
    """(dialogues written, RSS bytes, open descriptors)."""
    first_new_s: float | None = None
    """Seconds from the start to its first new dialogue written (for a resume: the resume time)."""
    exit: int | None = None
    wall_s: float = 0.0


class Written:
    """Counts the lines of dialogues.jsonl as it grows, reading only what was added."""

    def __init__(self, path: Path) -> None:
        self.path, self.offset, self.count = path, 0, 0

    def now(self) -> int:
        try:
            with self.path.open("rb") as fh:
                if fh.seek(0, os.SEEK_END) < self.offset:  # a repair rewrote it
                    self.offset = self.count = 0
                fh.seek(self.offset)
                chunk = fh.read()
        except FileNotFoundError:
            return 0
        whole = chunk[:chunk.rfind(b"\n") + 1]
        self.offset += len(whole)
        self.count += whole.count(b"\n")
        return self.count


def run_attempt(args: list[str], written: Written, kill_at: int | None) -> Attempt:
    attempt = Attempt(" ".join(args[:1]), written.now())
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "sparring.graphs.cli", *args, "-q"], cwd=REPO, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        count = written.now()
        if attempt.first_new_s is None and count > attempt.start_written:
            attempt.first_new_s = time.perf_counter() - t0
        try:
            attempt.samples.append((count, ps.memory_info().rss, ps.num_fds()))
        except psutil.Error:
            pass
        if kill_at is not None and count >= kill_at:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.5)
    _, err = proc.communicate()
    attempt.exit, attempt.wall_s = proc.returncode, time.perf_counter() - t0
    if attempt.exit not in (0, 3, -signal.SIGKILL):
        raise SystemExit(f"{args[0]} ended with {attempt.exit}: {err[-2000:]}")
    return attempt


def exactly_once(config: Path, run_dir: Path) -> dict[str, Any]:
    from sparring.graphs.runtime.run_request import iter_jobs, request_from_config

    expected = {job.id for job in iter_jobs(request_from_config(config))}
    rows = [json.loads(line) for line in (run_dir / "dialogues.jsonl").read_text().splitlines()]
    ids = Counter(r["id"] for r in rows)
    pairs = [json.loads(line) for line in (run_dir / "preferences.jsonl").read_text().splitlines()]
    twice = sum(1 for n in Counter((p["dialogue_id"], p["turn_index"]) for p in pairs).values() if n > 1)
    traced = {s["trace_id"] for s in iter_spans(run_dir) if s.get("parent_id") is None}
    return {"expected": len(expected), "written": len(rows), "distinct": len(ids),
            "twice": sum(1 for n in ids.values() if n > 1), "missing": len(expected - set(ids)),
            "extra": len(set(ids) - expected), "failed": sum(r["status"] != "ok" for r in rows),
            "pairs": len(pairs), "pairs_twice": twice,
            "orphan_pairs": sum(1 for p in pairs if p["dialogue_id"] not in ids),
            "untraced": sum(1 for r in rows if r.get("trace_id") not in traced)}


def band(samples: list[tuple[int, int, int]], total: int, lo: float, hi: float) -> list[tuple[int, int, int]]:
    return [s for s in samples if lo * total <= s[0] < hi * total]


def timed_cli(*args: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "sparring.graphs.cli", *args], cwd=REPO,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {proc.stderr}")
    return time.perf_counter() - t0


def chromium_load_s(report: Path) -> float | None:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    from tests.traces.test_report_browser import ARGS, CHROMIUM

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            t0 = time.perf_counter()
            page.goto(report.as_uri(), wait_until="load")
            return time.perf_counter() - t0
        finally:
            browser.close()


def soak(folder: Path, dialogues: int, kills: int, concurrency: int, seed: int) -> None:
    with FakeOpenAIServer(responder=agent_reply, record_requests=False) as server:
        server.fail_mix(MIX, seed=seed, options=cast(dict[str, dict[str, Any]], MIX_OPTIONS))
        config = config_for(folder, server.base_url, dialogues, concurrency, 1)
        run_dir = folder / "run"
        written = Written(run_dir / "dialogues.jsonl")
        usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        attempts = [run_attempt(["run", str(config), "--out", str(run_dir)], written,
                                kill_at=dialogues * 4 // 100 if kills else None)]
        for k in range(1, kills + 1):
            attempts.append(run_attempt(["resume", str(run_dir)], written,
                                        kill_at=dialogues * 4 * (k + 1) // 100 if k < kills else None))
        if attempts[-1].exit == 3:  # failed dialogues: a resume retries them
            attempts.append(run_attempt(["resume", str(run_dir)], written, kill_at=None))
        wall = time.perf_counter() - t0
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = usage.ru_utime - usage0.ru_utime + usage.ru_stime - usage0.ru_stime
        requests = server.stats.chat_requests
    once = exactly_once(config, run_dir)
    longest = max(attempts, key=lambda a: len(a.samples))
    middle, last = band(longest.samples, dialogues, 0.45, 0.55), band(longest.samples, dialogues, 0.9, 1.0)
    stats_s = timed_cli("stats", str(run_dir), "--no-embeddings", "--write")
    report_s = timed_cli("report", str(run_dir))
    report = run_dir / "report.html"
    load_s = chromium_load_s(report)
    size = sum(p.stat().st_size for p in run_dir.iterdir() if p.is_file())

    print(f"{dialogues} dialogues, fault mix {MIX}, concurrency {concurrency}, {kills} SIGKILLs then resume")
    print(f"exactly once: {once}")
    print("attempts: " + "; ".join(f"{a.command} exit {a.exit} {a.wall_s:.0f} s" for a in attempts))
    resumes = [a.first_new_s for a in attempts[1:] if a.first_new_s is not None]
    if resumes:
        print(f"resume to its first new dialogue: median {statistics.median(resumes):.1f} s, max {max(resumes):.1f} s")
    if middle and last:
        mid_rss, last_rss = statistics.median(s[1] for s in middle), statistics.median(s[1] for s in last)
        print(f"RSS (the attempt {longest.command} from {longest.start_written} dialogues): middle tenth "
              f"{mid_rss / MIB:.0f} MiB, last tenth {last_rss / MIB:.0f} MiB ({last_rss / mid_rss - 1:+.1%}); "
              f"max {max(s[1] for s in longest.samples) / MIB:.0f} MiB")
        print(f"open descriptors: middle tenth {sorted({s[2] for s in middle})}, last tenth "
              f"{sorted({s[2] for s in last})}, over the attempt {min(s[2] for s in longest.samples)}-"
              f"{max(s[2] for s in longest.samples)}")
    print(f"wall {wall:.0f} s; {requests} model requests; CPU of the sparring processes {cpu:.0f} s "
          f"({cpu / max(requests, 1) * 1000:.2f} ms per request)")
    print(f"stats --write {stats_s:.1f} s; report {report_s:.1f} s, report.html {report.stat().st_size / MIB:.1f} MiB"
          + (f", loads in Chromium in {load_s:.2f} s" if load_s is not None else "")
          + f"; run directory {size / MIB:.0f} MiB ({size / dialogues / 1024:.1f} KB per dialogue)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialogues", type=int, default=10_000)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=128)
    parser.add_argument("--seed", type=int, default=26)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sparring-soak-") as tmp:
        soak(Path(tmp), args.dialogues, args.kills, args.concurrency, args.seed)


if __name__ == "__main__":
    main()
