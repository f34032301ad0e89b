"""What branching costs in model calls, and what it keeps: the generated cases of
tests/graphs/test_branch_every_revision.py (scripted runs of 2 dialogues with several flagged turns), each run
with branching off and on (its ``branch_turns``, or 2), every run checked by that test's properties.

    python benchmarks/branching_calls.py [--cases 40]

Prints the extra calls per dialogue with branching on (the branch's turns, their critique, revisions and
checks), whether the trunk's calls were the same in number as without branching (the conversation going on
from a revision adds none), and the fate of each targeted pair (the planted turn's) in both settings. The cases
are drawn deterministically, so the figures repeat.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.* (sparring is installed)

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.graphs.test_branch_every_revision import cases, check_run  # noqa: E402


def measure(n: int) -> dict[str, Any]:
    """Run ``n`` generated cases with branching off and on; the figures."""
    extra: list[int] = []
    fates = {"on": Counter[str](), "off": Counter[str]()}
    same = []

    @settings(max_examples=n, deadline=None, suppress_health_check=list(HealthCheck), database=None,
              derandomize=True)
    @given(cases())
    def run(case: dict[str, Any]) -> None:
        turns = case["dialogue"]["branch_turns"] or 2
        on = check_run({**case, "dialogue": {**case["dialogue"], "branch_turns": turns}})
        off = check_run({**case, "dialogue": {**case["dialogue"], "branch_turns": 0}})
        extra.extend(on["extra_calls"].values())
        fates["on"].update(on["fates"])
        fates["off"].update(off["fates"])
        same.append({d: c - on["extra_calls"][d] for d, c in on["calls"].items()} == off["calls"])

    run()
    return {"dialogues": len(extra), "extra_median": statistics.median(extra),
            "extra_mean": round(statistics.mean(extra), 2), "extra_range": (min(extra), max(extra)),
            "extra_by_count": dict(sorted(Counter(extra).items())), "trunk_same": (sum(same), len(same)),
            "targeted_on": dict(fates["on"]), "targeted_off": dict(fates["off"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=40)
    figures = measure(parser.parse_args().cases)
    print(f"{figures['dialogues']} dialogues; extra calls per dialogue with branching on: median "
          f"{figures['extra_median']}, mean {figures['extra_mean']}, range {figures['extra_range']}, "
          f"by count {figures['extra_by_count']}")
    print(f"trunk calls the same in number as without branching: {figures['trunk_same'][0]} of "
          f"{figures['trunk_same'][1]} runs")
    print(f"targeted pairs, branching on: {figures['targeted_on']}; off: {figures['targeted_off']}")


if __name__ == "__main__":
    main()
