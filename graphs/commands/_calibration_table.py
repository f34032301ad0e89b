"""The terminal table of ``sparring calibrate``: per principle, per category and overall, one column
group per critic, and the two critics' agreement."""

from __future__ import annotations

from typing import Any

from sparring.graphs.data.intervals import interval_text, kappa_text


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _ci(f: dict[str, Any], key: str) -> str:
    """The rate with its 95% interval (a calibration.json written before intervals: bare)."""
    ci = f.get(f"{key}_ci")
    return interval_text(ci) if ci else _pct(f.get(key))


def _cells(f: dict[str, Any]) -> list[str]:
    return [f"{f['caught']}/{f['violating']} {_ci(f, 'recall')}", _ci(f, "precision"),
            f"{f['false_flags']}/{f['near_misses']}", f"{f['near_misses_flagged_any']}/{f['near_misses']}"]


def _agree(a: dict[str, Any] | None) -> list[str]:
    if a is None:
        return ["-", "-"]
    return [_ci(a, "raw"), kappa_text(a)]


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
        table.add_column("kappa [95% CI]", justify="right")
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
                  "principle / for any principle. Brackets: 95% intervals (Wilson; kappa: normal, Cohen's "
                  "standard error).", style="dim")
    for c in critics:
        f, b = c["figures"]["overall"], c["backend"]
        errors = f" ({f['errors']} failed, left out)" if f["errors"] else ""
        console.print(f"critic {c['name']}: {b.get('model')} ({b.get('kind')}), recall {_ci(f, 'recall')}, "
                      f"precision {_ci(f, 'precision')} on {f['violating'] + f['near_misses']} turns{errors}, "
                      f"{c['wall_s']} s")
    for c in critics:
        _print_sets(console, c)
        console.print(f"  {verifier_line(c)}")
    if agreement is not None:
        a = agreement["overall"]
        console.print(f"agreement on the flag decision: {_ci(a, 'raw')} raw, Cohen's kappa {kappa_text(a)} "
                      f"({a['items']} turns; both flag {a['both_flag']}, only the first {a['first_only']}, "
                      f"only the second {a['second_only']}, neither {a['neither']})")


def _print_sets(console: Any, critic: dict[str, Any]) -> None:
    """Per item set (rubric, transfer, a file): recall, precision and false flags, then the gap."""
    sets = critic["figures"].get("sets") or {}
    if len(sets) < 2:
        return
    for name, f in sets.items():
        console.print(f"  {critic['name']} on the {name} set ({f['violating'] + f['near_misses']} turns): recall "
                      f"{_ci(f, 'recall')}, precision {_ci(f, 'precision')}, near misses flagged "
                      f"{_ci(f, 'false_flag_rate')}")
    gap = critic.get("gap")
    if gap:
        parts = ", ".join(f"{k.replace('_', ' ')} {v:+.0%}" for k, v in gap.items() if isinstance(v, float))
        console.print(f"  gap ({gap['of']} minus {gap['minus']}): {parts or '-'}")


def verifier_line(critic: dict[str, Any]) -> str:
    """The verifier's figures on labelled revisions, or why it was not measured, and the critic's scope."""
    scope = critic.get("critic_scope", "set")
    head = f"critic scope {scope}" + (" (each turn judged against its own principle alone)"
                                      if scope == "targeted" else "")
    v = critic.get("verifier") or {}
    if "figures" not in v:
        return f"{head}; verifier not measured: {v.get('skipped') or 'no verifier results'}"
    f = v["figures"]
    failed = f", {f['errors']} failed" if f["errors"] else ""
    return (f"{head}; verifier on labelled revisions: passed {f['passed']}/{f['fixes']} good ones "
            f"{interval_text(f['pass_rate_ci'])}, stopped {f['stopped']}/{f['still_breaks']} bad ones "
            f"{interval_text(f['stop_rate_ci'])}{failed}")
