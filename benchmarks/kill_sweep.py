"""Kill anywhere, lose nothing, at a larger sweep than the suite's (issue 17).

    python benchmarks/kill_sweep.py [--kills 20] [--workers 1 2] [--dialogues 24] [--seed 7]

One run against the loopback server, SIGKILLed at ``--kills`` seeded random moments (its first
tenths of a second, before any manifest; just after an attempt's manifest entry; after some model
requests; while records are written; once the manifest says the attempt ended and statistics and
report are being written: ``tests.graphs.loopback_run.TRIGGERS``), each attempt followed by the next
(``resume``, or ``run`` when the kill came before the first manifest), then one to the end. The
checks are the suite's (tests/graphs/loopback_run.py): every dialogue exactly once, every line
whole and valid, no pair without its dialogue, no pair twice. Printed: the kills that landed, by
moment, and the attempts in the manifest.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.graphs.loopback_run import (  # noqa: E402
    canned_server,
    check_consistent,
    expected_ids,
    kill_and_resume,
    write_config,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--dialogues", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp, canned_server(delay_s=0.03) as server:
            folder = Path(tmp)
            config = write_config(folder, server.base_url, dialogues=args.dialogues, concurrency=4, workers=workers)
            run_dir = folder / "run"
            landed = kill_and_resume(config, run_dir, server, kills=args.kills, seed=args.seed + workers)
            check_consistent(run_dir, expected_ids(config))
            runs = json.loads((run_dir / "manifest.json").read_text())["runs"]
            statuses: dict[str, int] = {}
            for attempt in runs:
                statuses[attempt["status"]] = statuses.get(attempt["status"], 0) + 1
            print(f"workers {workers}: {sum(landed.values())}/{args.kills} kills landed {dict(landed)}; "
                  f"{len(runs)} attempts in the manifest {statuses}; every dialogue once, every line valid, "
                  f"no orphan or duplicate pair: ok")


if __name__ == "__main__":
    main()
