"""Modules and lines per package, and the longest functions: the figures the architecture page quotes.

    python scripts/layout_figures.py [--top N]
"""

from __future__ import annotations

import argparse
import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("agents", "graphs", "principles", "diasynth_agents", "traces", "sparring")


def modules() -> list[Path]:
    """The package's own modules (sparring/'s links to the top-level folders not counted twice)."""
    out = []
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = path.relative_to(ROOT).parts
            if not (parts[0] == "sparring" and len(parts) > 2):
                out.append(path)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=10, help="how many of the longest functions to list")
    args = parser.parse_args()
    per_package: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    functions = []
    for path in modules():
        rel = path.relative_to(ROOT)
        text = path.read_text(encoding="utf-8")
        package = "/".join(rel.parts[:-1])
        per_package[package][0] += 1
        per_package[package][1] += len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                functions.append((node.end_lineno - node.lineno + 1, f"{rel}:{node.name}"))
    print(f"{'package':<28} {'modules':>7} {'lines':>7}")
    for package, (count, lines) in sorted(per_package.items()):
        print(f"{package:<28} {count:>7} {lines:>7}")
    total = [sum(v[0] for v in per_package.values()), sum(v[1] for v in per_package.values())]
    print(f"{'total':<28} {total[0]:>7} {total[1]:>7}")
    print("\nlongest functions (lines, whole definition):")
    for length, name in sorted(functions, reverse=True)[:args.top]:
        print(f"{length:>5}  {name}")


if __name__ == "__main__":
    main()
