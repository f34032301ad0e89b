"""The browsable dialogue list of the HTML report: one collapsible entry per dialogue.

Violating turns are highlighted with the critic's verdict under them, each
revision stands beside the original with the changed words marked, and each
entry ends with its trace: the agent steps with tokens and latency.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from .diffmark import word_diff


def _attr(value: Any) -> str:
    return escape(str(value), quote=True)


def _ids(values: Sequence[str] | None) -> str:
    return ", ".join(values) if values else "none"


def dialogue_entry(record: dict[str, Any], steps: Sequence[dict[str, Any]], *, run_dir: str) -> str:
    """One ``<details>`` element; ``steps`` are the trace's agent steps (see report.collect_span_stats)."""
    did = record["id"]
    scenario = record.get("scenario") or {}
    personas = list(scenario.get("personas") or [])
    if record.get("swapped"):  # side A spoke as the second persona: list them in side order
        personas.reverse()
    failed = record.get("status") == "failed"
    violated = record.get("violated_principles") or []
    revisions = record.get("revisions") or []
    topic = scenario.get("topic", "") + (f" / {scenario['subtopic']}" if scenario.get("subtopic") else "")
    search = " ".join([did, topic, *(p.get("name", "") for p in personas), *record.get("target_principles", []),
                       *violated]).lower()
    badges = []
    if failed:
        badges.append('<span class="badge fail">failed</span>')
    if violated:
        badges.append(f'<span class="badge viol">violated: {escape(_ids(violated))}</span>')
    if revisions:
        verified = sum(1 for r in revisions if r.get("verified"))
        badges.append(f'<span class="badge pairs">{len(revisions)} pair(s), {verified} verified</span>')
    badges.append(f'<span class="badge">{escape(str(record.get("stop_reason", "")))}</span>')
    summary = (f'<summary><code>{escape(did)}</code> {escape(topic)} '
               f'<span class="who">{escape(" & ".join(p.get("name", "?") for p in personas))}</span> '
               f'{" ".join(badges)} <span class="muted">{record.get("turns", 0)} turns</span> '
               f'<a href="#t-{_attr(did)}">trace</a></summary>')
    body = [
        f'<p class="meta">Goal: {escape(record.get("goal") or "-")}<br>'
        f'Briefed side {escape(str(record.get("briefed_side", "?")))} to break: '
        f'<b>{escape(_ids(record.get("target_principles")))}</b>; critic found: <b>{escape(_ids(violated))}</b></p>']
    if failed:
        body.append(f'<p class="error">Error: {escape(record.get("error") or "failed")}</p>')
    body.append(_turns(record.get("messages") or [], record.get("verdicts") or [], record.get("revisions") or []))
    branch = record.get("branch")
    if branch:
        start = branch.get("from_turn", 0)
        body.append(f'<h4>Branch: the dialogue continued from the verified revision of turn {start}; its pairs and '
                    f'SFT row come from here</h4>')
        body.append(_turns(branch.get("messages") or [], branch.get("verdicts") or [], branch.get("revisions") or [],
                           start=start))
    body.append(_trace(record, steps, run_dir))
    return (f'<details class="dlg" id="d-{_attr(did)}" data-status="{_attr(record.get("status", "ok"))}" '
            f'data-violation="{int(bool(violated))}" data-pairs="{len(revisions)}" data-search="{_attr(search)}">'
            f'{summary}<div class="body">{"".join(body)}</div></details>')


def _turns(messages: Sequence[dict[str, Any]], verdicts_: Sequence[dict[str, Any]],
           revisions_: Sequence[dict[str, Any]], *, start: int = 0) -> str:
    """The turns from ``start`` on, each flagged one with its verdict and its revision beside it."""
    verdicts = {v["turn_index"]: v for v in verdicts_}
    revisions = {r["turn_index"]: r for r in revisions_}
    items = []
    for i, m in enumerate(messages):
        if i < start:
            continue
        verdict = verdicts.get(i)
        violating = bool(verdict and verdict.get("violated"))
        cls = f"turn side-{escape(m.get('speaker', '?'))}" + (" violating" if violating else "")
        parts = [f'<li class="{cls}" value="{i}"><span class="who">{escape(m.get("name", "?"))} '
                 f'({escape(m.get("speaker", "?"))})</span>']
        rev = revisions.get(i)
        if rev is None:
            parts.append(f'<div class="text">{escape(m.get("content", ""))}</div>')
        if verdict is not None:
            parts.append(_verdict(verdict))
        if rev is not None:
            parts.append(_pair(rev))
        parts.append("</li>")
        items.append("".join(parts))
    return f'<ol class="turns" start="{start}">{"".join(items)}</ol>' if items else '<p class="muted">No turns.</p>'


def _verdict(verdict: dict[str, Any]) -> str:
    findings = verdict.get("findings") or []
    if not findings:
        return f'<div class="critique clean">Critic: no violation. <i>{escape(verdict.get("reasoning", ""))}</i></div>'
    rows = "".join(f'<li><b>{escape(f.get("principle_id", ""))}</b> ({escape(f.get("severity", ""))}): '
                   f'&ldquo;{escape(f.get("evidence", ""))}&rdquo;</li>' for f in findings)
    return (f'<div class="critique">Critic: <i>{escape(verdict.get("reasoning", ""))}</i>'
            f'<ul>{rows}</ul></div>')


def _pair(rev: dict[str, Any]) -> str:
    rejected, chosen = word_diff(rev.get("original", ""), rev.get("revised", ""))
    status = "verified" if rev.get("verified") else "not verified" + (
        f": still {escape(_ids(rev.get('remaining')))}" if rev.get("remaining") else "")
    if rev.get("answered"):
        status += "; the conversation went on from it"
    return (f'<div class="pair"><div class="rejected"><h4>rejected (original)</h4><p>{rejected}</p></div>'
            f'<div class="chosen"><h4>chosen (revision, {status})</h4><p>{chosen}</p></div></div>')


def _trace(record: dict[str, Any], steps: Sequence[dict[str, Any]], run_dir: str) -> str:
    did = record["id"]
    head = (f'<section class="trace" id="t-{_attr(did)}"><h4>Trace <code>{escape(record.get("trace_id") or "-")}'
            f'</code></h4><p class="muted">Prompts and replies of every step: '
            f'<code>sparring trace {escape(run_dir)} {escape(did)}</code> '
            f'(<code>--replay</code> re-runs it without a model)</p>')
    if not steps:
        return head + '<p class="muted">No spans recorded for this trace.</p></section>'
    rows = []
    for s in steps:
        cls = ' class="error"' if s["error"] else ""
        rows.append(f'<tr{cls}><td>{escape(s["agent"])}</td><td>{"" if s["turn"] is None else s["turn"]}</td>'
                    f'<td>{s["input_tokens"]}</td><td>{s["output_tokens"]}</td><td>{s["seconds"]:.2f}</td>'
                    f'<td>{s["retries"] or ""}</td><td>{escape(s["error"] or "")}</td></tr>')
    return (head + '<table class="steps"><thead><tr><th>step</th><th>turn</th><th>in tok</th><th>out tok</th>'
            '<th>seconds</th><th>retries</th><th>error</th></tr></thead><tbody>' + "".join(rows)
            + "</tbody></table></section>")
