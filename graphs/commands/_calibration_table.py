"""The terminal table of ``sparring calibrate``: per principle, per category and overall, one column
group per critic, and the two critics' agreement."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _cells(f: dict[str, Any]) -> list[str]:
    return [f"{f['caught']}/{f['violating']} {_pct(f['recall'])}", _pct(f["precision"]),
            f"{f['false_flags']}/{f['near_misses']}", f"{f['near_misses_flagged_any']}/{f['near_misses']}"]


def _agree(a: dict[str, Any] | None) -> list[str]:
    if a is None:
        return ["-", "-"]
    kappa = "-" if a["kappa"] is None else f"{a['kappa']:.2f}"
    return [_pct(a["raw"]), kappa]


def print_calibration(document: dict[str, Any]) -> None:
    """Print the figures of ``document`` (a calibration.json) as a table, then one line per critic."""
    from rich.console import Console
    from rich.table import Table

    from sparring.terminal import visible_data

    document = visible_data(document, markup=True)  # names, models and principle ids are shown, not obeyed
    critics = document["critics"]
    agreement = document.get("agreement")
    table = Table(title="Critic calibration on labelled turns", show_lines=False, pad_edge=False)
    table.add_column("principle")
    for c in critics:
        for head in ("recall", "precision", "near misses flagged", "flagged (any)"):
            table.add_column(f"{head}\n{c['name']}" if len(critics) > 1 else head, justify="right")
    if agreement is not None:
        table.add_column("agree", justify="right")
        table.add_column("kappa", justify="right")
    categories: dict[str, str] = document["scope"]["categories"]
    by_category: dict[str, list[str]] = {}
    for pid in document["scope"]["principles"]:
        by_category.setdefault(categories.get(pid, "(none)"), []).append(pid)

    def row(label: str, key: str, name: str, style: str = "") -> None:
        cells = [cell for c in critics for cell in _cells(c["figures"][key][name] if key else c["figures"][name])]
        if agreement is not None:
            cells += _agree(agreement[key].get(name) if key else agreement[name])
        table.add_row(label, *cells, style=style)

    for category, pids in by_category.items():
        for pid in pids:
            row(pid, "principles", pid)
        row(f"{category} (all)", "categories", category, "bold")
        table.add_section()
    row("overall", "", "overall", "bold")
    console = Console()
    console.print(table)
    console.print("recall: violating turns flagged for their principle; precision: share of flags that were "
                  "right (on a set with as many near misses as violations); near misses flagged: for their "
                  "principle / for any principle.", style="dim")
    for c in critics:
        f, b = c["figures"]["overall"], c["backend"]
        errors = f" ({f['errors']} failed, left out)" if f["errors"] else ""
        console.print(f"critic {c['name']}: {b.get('model')} ({b.get('kind')}), recall {_pct(f['recall'])}, "
                      f"precision {_pct(f['precision'])} on {f['violating'] + f['near_misses']} turns{errors}, "
                      f"{c['wall_s']} s")
    if agreement is not None:
        a = agreement["overall"]
        kappa = "-" if a["kappa"] is None else f"{a['kappa']:.2f}"
        console.print(f"agreement on the flag decision: {_pct(a['raw'])} raw, Cohen's kappa {kappa} "
                      f"({a['items']} turns; both flag {a['both_flag']}, only the first {a['first_only']}, "
                      f"only the second {a['second_only']}, neither {a['neither']})")
