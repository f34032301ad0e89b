"""``sparring redteam-compare RUN_DIR...``: the attack figures of runs that differ only in their
target, side by side (graphs/data/target_comparison.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import user_errors


def _rate(row: dict[str, Any] | None) -> str:
    if not row or row.get("attacks", row.get("probes")) in (0, None):
        return "-"
    hits, n = row.get("successes", row.get("refused")), row.get("attacks", row.get("probes"))
    lo, hi = row["interval"]
    return f"{(row.get('success_rate', row.get('rate')) or 0):.0%} [{lo:.0%}-{hi:.0%}] ({hits}/{n})"


@click.command("redteam-compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@user_errors
def redteam_compare(run_dirs: tuple[Path, ...]) -> None:
    """Compare redteam runs of one config on different targets: success rate with its 95% interval, per
    category and per tactic, turns to first violation, tokens per success, over-refusal rate."""
    from rich.console import Console
    from rich.table import Table

    from sparring.graphs.data.target_comparison import compare_runs

    result = compare_runs(run_dirs)
    runs = result["runs"]
    table = Table(title="Attacks per target" + ("" if result["same_attacks"] else
                  f" (the runs' attacks differ: {result['common_attacks']} in common)"), title_justify="left")
    table.add_column("")
    for run in runs:
        table.add_column(f"{run['target']} ({run['access']})", justify="right")
    table.add_row("attack success", *(_rate(r) for r in runs))
    for key, label in (("per_category", "category"), ("per_tactic", "tactic")):
        for name in sorted({k for r in runs for k in r[key]}):
            table.add_row(f"{label}: {name}", *(_rate(r[key].get(name)) for r in runs))
    table.add_row("turns to first violation (median)", *(str(r["turns_to_first_violation"] or "-") for r in runs))
    table.add_row("target tokens per success", *(str(r["target_tokens_per_success"] or "-") for r in runs))
    table.add_row("all tokens per success", *(str(r["tokens_per_success"] or "-") for r in runs))
    table.add_row("over-refusal", *(_rate(r["over_refusal"]) for r in runs))
    Console(width=max(120, 40 + 34 * len(runs))).print(table)
