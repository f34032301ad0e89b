"""The report's "Critic calibration" section, from a run directory's calibration.json
(``sparring calibrate --out RUN_DIR``): how far to trust the critic that labelled the run."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from sparring.graphs.data.intervals import interval_text, kappa_text

from . import charts

MAX_MISJUDGED = 300
"""Misjudged turns listed per critic."""


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _rate(f: dict[str, Any], key: str) -> str:
    """The rate with its 95% interval when the document has one (calibration.json before intervals: bare)."""
    ci = f.get(f"{key}_ci")
    return interval_text(ci) if ci else _pct(f.get(key))


def _facts(critics: Sequence[dict[str, Any]], agreement: dict[str, Any] | None) -> str:
    rows = []
    for c in critics:
        f, b, u = c["figures"]["overall"], c.get("backend") or {}, c.get("usage") or {}
        failed = f", {f['errors']} failed (left out)" if f["errors"] else ""
        rows.append((f"critic {c['name']}",
                     f"{b.get('model', '?')} ({b.get('kind', '?')}): recall {_rate(f, 'recall')} "
                     f"({f['caught']}/{f['violating']}), precision {_rate(f, 'precision')}, near misses flagged "
                     f"{f['false_flags']}/{f['near_misses']} for their principle and {f['near_misses_flagged_any']}"
                     f"/{f['near_misses']} for any{failed}; {c.get('wall_s', 0)} s, {u.get('calls', 0)} calls"))
        for name, s in (c["figures"].get("sets") or {}).items():
            rows.append((f"{c['name']}, {name} set", f"recall {_rate(s, 'recall')}, precision {_rate(s, 'precision')}, "
                                                     f"near misses flagged {_rate(s, 'false_flag_rate')}"))
        v = (c.get("verifier") or {}).get("figures")
        if v:
            rows.append((f"verifier of {c['name']}",
                         f"passed {v['passed']}/{v['fixes']} good revisions {interval_text(v['pass_rate_ci'])}, "
                         f"stopped {v['stopped']}/{v['still_breaks']} bad ones {interval_text(v['stop_rate_ci'])}"))
    if agreement is not None:
        a = agreement["overall"]
        rows.append(("agreement", f"{_rate(a, 'raw')} raw, Cohen's kappa {kappa_text(a)} on {a['items']} turns "
                                  f"(both flag "
                                  f"{a['both_flag']}, only the first {a['first_only']}, only the second "
                                  f"{a['second_only']}, neither {a['neither']})"))
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="facts">{body}</table>'


def _charts(critics: Sequence[dict[str, Any]], agreement: dict[str, Any] | None) -> str:
    categories = list(critics[0]["figures"]["categories"])
    kinds = ("recall", "precision", "near misses flagged")
    series = [f"{c['name']} {what}" if len(critics) > 1 else what for c in critics for what in kinds]
    # A colour per figure; the second critic's bars are the same colours, lighter.
    styles = [f"fill:{charts.SERIES_COLOURS[k]};fill-opacity:{1.0 if i == 0 else 0.45}"
              for i in range(len(critics)) for k in range(len(kinds))]

    def values(key: str, name: str) -> list[tuple[float | None, str]]:
        out: list[tuple[float | None, str]] = []
        for c in critics:
            f = c["figures"]["overall"] if not key else c["figures"][key].get(name)
            if f is None:
                out += [(None, "")] * len(kinds)
                continue
            out += [(f["recall"], f"({f['caught']}/{f['violating']})"),
                    (f["precision"], f"({f['caught']}/{f['caught'] + f['false_flags']})"),
                    (f["near_miss_any_rate"], f"({f['near_misses_flagged_any']}/{f['near_misses']})")]
        return out

    groups = [(c, values("categories", c)) for c in categories] + [("overall", values("", "overall"))]
    figures = [charts.grouped_bar_chart(
        "Critic recall, precision and false alarms per category", groups, series, styles=styles,
        caption="Recall: turns that break a principle, flagged for it. Precision: flags that were right, on a set "
                "with as many near misses as violations. Near misses flagged for any principle: turns a run would "
                "revise although they break nothing.")]
    if agreement is not None:
        rows = [(name, a["raw"] or 0.0, f"kappa {'-' if a['kappa'] is None else format(a['kappa'], '.2f')}")
                for name, a in [*agreement["categories"].items(), ("overall", agreement["overall"])]]
        figures.append(charts.bar_chart("Agreement of the two critics per category", rows, max_value=1.0,
                                        percent=True, caption="Same flag decision on a turn; Cohen's kappa "
                                                              "discounts the agreement their flag rates "
                                                              "alone would give."))
    return f'<div class="charts">{"".join(figures)}</div>'


def _principle_table(critics: Sequence[dict[str, Any]], principles: Sequence[str]) -> str:
    head = "".join(f"<th>recall {escape(c['name'])}</th><th>precision {escape(c['name'])}</th>" for c in critics)
    rows = []
    for pid in principles:
        cells = ""
        for c in critics:
            f = c["figures"]["principles"].get(pid)
            cells += ("<td>-</td><td>-</td>" if f is None else
                      f"<td>{f['caught']}/{f['violating']} {_rate(f, 'recall')}</td><td>{_rate(f, 'precision')}</td>")
        rows.append(f"<tr><td><code>{escape(pid)}</code></td>{cells}</tr>")
    return (f'<details><summary>Per principle</summary><table class="steps"><tr><th>principle</th>{head}</tr>'
            f'{"".join(rows)}</table></details>')


def _misjudged(critic: dict[str, Any]) -> str:
    wrong = [r for r in critic["verdicts"] if r.get("error") is None
             and bool(r["flagged"]) != (r["label"] == "violates")]
    if not wrong:
        return ""
    items = []
    for r in wrong[:MAX_MISJUDGED]:
        what = "missed" if r["label"] == "violates" else "flagged a near miss"
        found = ", ".join(r.get("violated") or []) or "nothing"
        items.append(f'<li><code>{escape(r["item"])}</code>, {what}: <span class="text">'
                     f'{escape(r.get("turn", ""))}</span><div class="critique">found: {escape(found)}. '
                     f'{escape(r.get("reasoning", ""))}</div></li>')
    more = f" (first {MAX_MISJUDGED})" if len(wrong) > MAX_MISJUDGED else ""
    return (f'<details><summary>Turns critic {escape(critic["name"])} got wrong: {len(wrong)}{more}</summary>'
            f'<ul>{"".join(items)}</ul></details>')


def corrected_html(corrected: dict[str, Any] | None) -> str:
    """The run's rates corrected by the calibration of its critic (``graphs.data.correction``), or why not."""
    if not corrected:
        return ""
    if corrected.get("critic") is None:
        return f'<p class="muted">No corrected rates: {escape(corrected.get("why") or "")}.</p>'

    def row(name: str, c: dict[str, Any]) -> str:
        shown = interval_text(c) if c.get("possible") else escape(c.get("why") or "")
        return (f"<tr><td><code>{escape(name)}</code></td><td>{interval_text(c.get('observed'))}</td>"
                f"<td>{shown}</td></tr>")

    rows = [row(f"attack success ({name})", c) for name, c in (("all attacks", corrected.get("attack")),) if c]
    for key in ("categories", "principles"):
        rows += [row(name, c) for name, c in corrected[key].items()]
    return (f'<h3>Rates corrected for critic {escape(str(corrected["critic"]))}</h3><p class="muted">'
            f'{escape(corrected["note"])}; observed and corrected with their 95% intervals.</p>'
            f'<table class="steps"><tr><th>rate</th><th>observed (flag rate)</th><th>corrected</th></tr>'
            f'{"".join(rows)}</table>')


def calibration_html(document: dict[str, Any] | None, corrected: dict[str, Any] | None = None) -> str:
    """The section, or an empty string when the run directory holds no calibration. ``corrected``: the
    run's rates corrected by it (``graphs.data.correction.correct_rates``)."""
    if not document or not document.get("critics"):
        return ""
    critics, agreement, items = document["critics"], document.get("agreement"), document.get("items") or {}
    scope = document.get("scope") or {}
    by_label = items.get("by_label") or {}
    intro = (f"{items.get('judged', 0)} labelled turns ({by_label.get('violates', 0)} that break their principle, "
             f"{by_label.get('near-miss', 0)} near misses that do not) for {len(scope.get('principles', []))} "
             f"principles, each judged as a run judges a turn: against all {len(scope.get('judged_against', []))} "
             "principles of the set. A critic flags a turn when it names the turn's principle among the violations.")
    return (f'<section id="calibration"><h2>Critic calibration</h2><p class="muted">{escape(intro)}</p>'
            f'{_facts(critics, agreement)}{corrected_html(corrected)}{_charts(critics, agreement)}'
            f'{_principle_table(critics, scope.get("principles", []))}'
            f'{"".join(_misjudged(c) for c in critics)}</section>')
