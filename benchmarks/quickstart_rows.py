"""What a config's run writes, row by row, for two variants side by side on one embedded engine.

    flock /tmp/sparring-engine.lock python benchmarks/quickstart_rows.py \
        [--config examples/quickstart.yaml] [--vs dialogue.reask_cut_turns=false] [--set KEY=VALUE ...]

Starts the embedded engine once (its start-up is printed on its own line), then runs the config as it is
(variant A) and with the ``--vs`` overrides (variant B), one after the other, each into a fresh directory,
on that same engine. Prints, per variant: the run's wall time (planning and end-of-run work included),
model calls and generated tokens, turns whole and cut at the token limit (after any re-ask), cut turns
asked again, the dialogues' flag share, preference pairs written and dropped by reason, and SFT rows
whole, cut and dropped by reason (the manifest's counts). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.* (sparring is installed)

from sparring.agents.backends import create_backend  # noqa: E402
from sparring.graphs.runtime.pipeline import execute  # noqa: E402
from sparring.graphs.runtime.run_request import request_from_config  # noqa: E402
from sparring.graphs.runtime.store import DIALOGUES, iter_jsonl  # noqa: E402
from sparring.traces.read import iter_spans  # noqa: E402


def figures(run_dir: Path, wall_s: float) -> dict[str, str]:
    """The rows of one run and what it took, as printable figures."""
    from sparring.graphs.runtime.manifest import load_manifest

    manifest = load_manifest(run_dir)
    counts, usage = manifest.counts, manifest.usage
    dialogues = list(iter_jsonl(run_dir / DIALOGUES))
    finish = Counter(m.get("finish_reason") for d in dialogues for m in d["messages"])
    reasked = sum(1 for s in iter_spans(run_dir) if s["attributes"].get("app.reasked_cut_turn"))
    flagged = sum(1 for d in dialogues if any(v["violated"] for v in d["verdicts"]))
    sft = counts.sft_rows

    def reasons(by: dict[str, int]) -> str:
        return ", ".join(f"{k} {n}" for k, n in sorted(by.items()) if n) or "none"

    return {
        "wall": f"{wall_s:.0f} s",
        "calls, generated tokens": f"{usage.calls}, {usage.completion_tokens}",
        "turns whole / cut": f"{finish.get('stop', 0)} / {finish.get('length', 0)}",
        "cut turns asked again": str(reasked),
        "dialogues flagged": f"{flagged} of {len(dialogues)}",
        "pairs written": str(counts.pairs),
        "pairs dropped": reasons(counts.dropped_pairs),
        "SFT rows whole / cut / dropped": f"{sft.get('whole', 0)} / {sft.get('cut', 0)} / {sft.get('dropped', 0)}",
        "SFT cut or dropped by reason": reasons(counts.sft_cut_by_reason),
    }


async def measure(args: argparse.Namespace, folder: Path) -> list[dict[str, str]]:
    variants = [tuple(args.set), (*args.set, *args.vs)]
    first = request_from_config(Path(args.config), variants[0], out=folder / "A")
    t0 = time.perf_counter()
    backend = create_backend(first.config.backend)
    await backend.start()
    print(f"engine start-up: {time.perf_counter() - t0:.0f} s", flush=True)
    results = []
    try:
        for name, overrides in zip("AB", variants):
            request = request_from_config(Path(args.config), overrides, out=folder / name)
            t1 = time.perf_counter()
            await execute(request, backend=backend)
            results.append(figures(folder / name, time.perf_counter() - t1))
            print(f"variant {name} done", flush=True)
    finally:
        await backend.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="examples/quickstart.yaml")
    parser.add_argument("--vs", action="append", default=None, metavar="KEY=VALUE",
                        help="variant B's overrides (default: dialogue.reask_cut_turns=false)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="both variants")
    args = parser.parse_args()
    args.vs = args.vs or ["dialogue.reask_cut_turns=false"]
    with tempfile.TemporaryDirectory(prefix="quickstart-rows-") as tmp:
        a, b = asyncio.run(measure(args, Path(tmp)))
    load = "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    print(f"\n{args.config}, {os.cpu_count()} CPUs, {load}; A: as configured, B: {' '.join(args.vs)}")
    width = max(len(k) for k in a)
    print(f"{'':{width}}  {'A':>22}  {'B':>22}")
    for key in a:
        print(f"{key:{width}}  {a[key]:>22}  {b[key]:>22}")


if __name__ == "__main__":
    main()
