"""Start-up cost of the entry points: ``import sparring``, ``sparring --help``, and (for scale) the first
use of an API name, each in a fresh interpreter, side by side in one run.

    python benchmarks/import_time.py [--repeat 7]

Prints, per variant, the median and best wall time of the statement (interpreter start excluded),
the whole process's wall time and CPU time (user + system; on a loaded machine the wall time waits for
a core, the CPU time does not), and which heavy libraries it imported (torch, vLLM, transformers,
sentence-transformers, LangGraph, datasets: none may load for the first two).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

VARIANTS = {
    "import sparring": "import sparring",
    "sparring --help": "from sparring.graphs.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
    "sparring.RunConfig (first API use)": "import sparring\nsparring.RunConfig",
    "sparring.run (the run's modules)": "import sparring\nsparring.run",
}
HEAVY = ("torch", "vllm", "transformers", "sentence_transformers", "langgraph", "datasets")
PROBE = """
import io, sys, time, contextlib
t0 = time.perf_counter()
with contextlib.redirect_stdout(io.StringIO()):
{body}
t = time.perf_counter() - t0
print(t, ",".join(m for m in {heavy!r} if m in sys.modules) or "-")
"""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(statement: str, repeat: int) -> tuple[list[float], list[float], list[float], str]:
    body = "\n".join("    " + line for line in statement.splitlines())
    code = PROBE.format(body=body, heavy=HEAVY)
    inner, whole, cpu, heavy = [], [], [], "-"
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), _children_cpu()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        whole.append(time.perf_counter() - t0)
        cpu.append(_children_cpu() - c0)
        seconds, heavy = out.split()
        inner.append(float(seconds))
    return inner, whole, cpu, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    print(f"{'variant':36} {'statement median':>16} {'best':>9} {'process wall':>13} {'process CPU':>12}  "
          "heavy libraries imported")
    for name, statement in VARIANTS.items():
        inner, whole, cpu, heavy = measure(statement, args.repeat)
        print(f"{name:36} {statistics.median(inner) * 1000:13.1f} ms {min(inner) * 1000:6.1f} ms "
              f"{statistics.median(whole) * 1000:10.1f} ms {statistics.median(cpu) * 1000:9.1f} ms  {heavy}")


if __name__ == "__main__":
    main()
