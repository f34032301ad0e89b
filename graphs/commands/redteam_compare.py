"""``sparring redteam-compare RUN_DIR...``: the attack figures of runs that differ only in their
target, or of a run with several targets, side by side (graphs/data/target_comparison.py)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ._common import user_errors


def comparison_table(columns: Sequence[dict[str, Any]], title: str) -> Any:
    """The comparison as a rich table: one column per target (``target_comparison.comparison_rows``)."""
    from rich.table import Table

    from sparring.graphs.data.target_comparison import column_label, comparison_rows

    table = Table(title=title, title_justify="left")
    table.add_column("")
    for column in columns:
        table.add_column(column_label(column), justify="right")
    for label, cells in comparison_rows(columns):
        table.add_row(label, *cells)
    return table


@click.command("redteam-compare")
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path(file_okay=False, path_type=Path))
@user_errors
def redteam_compare(run_dirs: tuple[Path, ...]) -> None:
    """Compare redteam runs of one config on different targets (or the targets of one run with several):
    success rate with its 95% interval, per category and per tactic, turns to first violation, tokens per
    success, over-refusal rate."""
    from rich.console import Console

    from sparring.graphs.data.target_comparison import compare_runs

    result = compare_runs(run_dirs)
    runs = result["runs"]
    title = "Attacks per target" + ("" if result["same_attacks"] else
                                    f" (the attacks differ: {result['common_attacks']} in common)")
    Console(width=max(120, 40 + 34 * len(runs))).print(comparison_table(runs, title))
