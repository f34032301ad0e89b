"""The run report: one self-contained HTML file (inline CSS, SVG and a little JS; no network).

Every text from the run is HTML-escaped. As a second line of defence the page carries a
Content-Security-Policy (``content_security_policy``): no network of any kind, and only the
template's own inline ``<style>`` and ``<script>`` blocks, allowed by their SHA-256 hashes; any other
script, style attribute, image, frame, font or form is refused by the browser.

It takes plain data, so it does not depend on how it was written: the run's
facts (``RunFacts``, read from its manifest by graphs.runtime.reporting), the
rows of the dialogue and preference files as dicts, and the spans (streamed once; only aggregates and the agent
steps of the listed dialogues are kept).
"""

from __future__ import annotations

import base64
import hashlib
import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from string import Template
from typing import Any

from sparring.graphs.data.intervals import interval_text, rate

from . import charts
from .report_calibration import calibration_html
from .report_dialogues import dialogue_entry

AGENT_SPANS = ("plan", "invoke_agent")
MAX_LISTED = 500
"""Dialogues listed in full; a larger run lists the first ones (violating and failed ones first)."""


@dataclass(frozen=True)
class RunFacts:
    """What the report shows of the run's manifest."""

    name: str
    status: str
    backends: dict[str, dict[str, Any]]
    """Backend name -> its entry (model, provider, kind, roles)."""
    mode: str
    max_turns: int | str
    seed: int | str
    principles: int
    prompt_tokens: int
    completion_tokens: int
    calls: int
    wall_s: float
    updated_at: float | None


@dataclass
class SpanStats:
    """What the report needs of traces.jsonl."""

    latency: dict[str, list[float]] = field(default_factory=dict)
    """Agent role -> seconds of each of its steps."""
    turn_tokens: list[int] = field(default_factory=list)
    """Generated tokens of each persona turn."""
    steps: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Trace id -> agent steps, for the listed dialogues only."""
    content_recorded: bool = False


def collect_span_stats(spans: Iterable[dict[str, Any]], listed_traces: set[str]) -> SpanStats:
    stats = SpanStats()
    for s in spans:
        a = s.get("attributes") or {}
        if s["name"] == "chat":
            stats.content_recorded = stats.content_recorded or "gen_ai.input.messages" in a
            continue
        if s["name"] not in AGENT_SPANS or s.get("end_time") is None:
            continue
        role = a.get("gen_ai.agent.name", s["name"])
        seconds = s["end_time"] - s["start_time"]
        stats.latency.setdefault(role, []).append(seconds)
        if (role.startswith("persona_") or role == "target") and s.get("status") == "ok":
            stats.turn_tokens.append(int(a.get("gen_ai.usage.output_tokens", 0)))
        if s["trace_id"] in listed_traces:
            stats.steps.setdefault(s["trace_id"], []).append({
                "agent": role, "turn": a.get("app.turn_index"), "start": s["start_time"], "seconds": seconds,
                "input_tokens": a.get("gen_ai.usage.input_tokens", 0),
                "output_tokens": a.get("gen_ai.usage.output_tokens", 0), "retries": a.get("app.retries", 0),
                "error": s.get("error") if s.get("status") == "error" else None})
    for steps in stats.steps.values():
        steps.sort(key=lambda st: st["start"])
    return stats


def catch_and_flag_rows(rates: dict[str, dict[str, Any]]) -> list[tuple[str, float, str]]:
    """Two bars per principle (or category) from its stats row: the critic's catch rate among the
    dialogues briefed to break it, then its flag rate among the dialogues judged against it."""
    rows: list[tuple[str, float, str]] = []
    for key, r in sorted(rates.items()):
        if r.get("catch_rate") is not None:
            rows.append((f"{key}: caught", r["catch_rate"],
                         f"({r['caught']}/{r['targeted']} briefed{_ci(r.get('catch_rate_ci'))})"))
        if r.get("near_miss_flag_rate") is not None:
            rows.append((f"{key}: near misses flagged", r["near_miss_flag_rate"],
                         f"({r['near_miss_flagged']}/{r['near_miss_controls']} near-miss controls"
                         f"{_ci(r.get('near_miss_flag_rate_ci'))})"))
        if r.get("flag_rate") is not None:
            rows.append((f"{key}: flagged", r["flag_rate"],
                         f"({r['flagged']}/{r['judged']} judged{_ci(r.get('flag_rate_ci'))})"))
    return rows


def _ci(ci: dict[str, Any] | None) -> str:
    """``; 95% CI 12-40%`` from a ``rate`` record (nothing for an old stats row without one)."""
    if not ci or ci.get("rate") is None:
        return ""
    return f"; 95% CI {ci['low']:.0%}-{ci['high']:.0%}"


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency_rows(latency: dict[str, list[float]]) -> list[tuple[str, float, str]]:
    return [(role, statistics.fmean(v), f"s mean; p50 {_percentile(v, 0.5):.2f}s, p95 {_percentile(v, 0.95):.2f}s, "
             f"n={len(v)}") for role, v in sorted(latency.items())]


def summary_html(run: RunFacts, dialogues: Sequence[dict[str, Any]],
                 preferences: Sequence[dict[str, Any]], attack: dict[str, Any] | None = None) -> str:
    ok = [d for d in dialogues if d.get("status") == "ok"]
    failed = len(dialogues) - len(ok)
    violating = sum(1 for d in ok if d.get("is_violation"))
    targeted = [d for d in ok if d.get("target_principles")]
    caught = sum(1 for d in targeted if d.get("targeted_violated"))
    controls = [d for d in ok if not d.get("target_principles")]
    verified = sum(1 for p in preferences if p.get("verified"))
    backends = run.backends
    turns = [d.get("turns", 0) for d in ok]
    stats = [
        ("stat-dialogues", len(ok), "dialogues"),
        ("stat-failed", failed, "failed"),
        ("stat-violation", interval_text(rate(violating, len(ok))), "flagged by the critic (95% CI)"),
        ("stat-caught", interval_text(rate(caught, len(targeted))), "planted violations caught (95% CI)"),
        ("stat-pairs", len(preferences), f"preference pairs ({verified} verified)"),
        ("stat-turns", f"{statistics.fmean(turns):.1f}" if turns else "-", "turns on average"),
    ]
    refusal = (attack or {}).get("over_refusal") or {}
    if refusal.get("probes"):
        stats.insert(2, ("stat-over-refusal", f"{refusal['rate']:.0%}",
                         f"over-refusal ({refusal['refused']}/{refusal['probes']} probes, 95% CI "
                         f"{refusal['interval'][0]:.0%}-{refusal['interval'][1]:.0%})"))
    if attack:
        success = attack["success_rate"]
        ci = attack.get("success_interval")
        stats.insert(2, ("stat-attack", "-" if success is None else f"{success:.0%}",
                         f"attacks succeeded ({attack['successes']}/{attack['attacks']}, "
                         f"{attack.get('access', 'white-box')}"
                         + (f", 95% CI {ci[0]:.0%}-{ci[1]:.0%})" if ci else ")")))
    cost = (attack or {}).get("cost") or {}
    per_success = (cost.get("per_success") or {}).get("total") or {}
    if per_success.get("prompt_tokens") is not None:
        stats.insert(3, ("stat-attack-cost", f"{per_success['prompt_tokens'] + per_success['completion_tokens']:,.0f}",
                         "tokens per successful attack (all roles, failures included)"))
    cards = "".join(f'<div class="stat" id="{sid}"><b>{escape(str(value))}</b><span>{escape(label)}</span></div>'
                    for sid, value, label in stats)
    facts = [
        ("run", run.name), ("status", run.status),
        *((f"backend {name}" if len(backends) > 1 else "model",
           f"{b.get('model', '?')} ({b.get('provider', '?')}, {b.get('kind', '?')})"
           + (f": {', '.join(b['roles'])}" if len(backends) > 1 and b.get("roles") else ""))
          for name, b in backends.items()),
        ("mode", f"{run.mode}, up to {run.max_turns} turns"),
        ("seed", run.seed),
        ("principles", run.principles),
        ("controls", f"{len(controls)} dialogues without a planted violation, "
                     f"{sum(1 for d in controls if d.get('is_violation'))} flagged by the critic"),
        ("tokens", f"{run.prompt_tokens:,} prompt + {run.completion_tokens:,} generated in {run.calls:,} calls"),
        ("wall time", f"{run.wall_s} s"),
    ]
    rows = "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in facts)
    return f'<div class="stats">{cards}</div><table class="facts">{rows}</table>' + target_table(attack)


def target_table(attack: dict[str, Any] | None) -> str:
    """Several targets in one run: the comparison table (``graphs.data.target_comparison``), one column
    per target; nothing otherwise."""
    from sparring.graphs.data.target_comparison import column_label, comparison_rows

    targets = (attack or {}).get("targets")
    if not targets:
        return ""
    columns = targets["columns"]
    head = "".join(f"<th>{escape(column_label(c))}</th>" for c in columns)
    body = "".join(f"<tr><th>{escape(label)}</th>{''.join(f'<td>{escape(cell)}</td>' for cell in cells)}</tr>"
                   for label, cells in comparison_rows(columns))
    note = "every attack was planned once and played against each target" if targets["same_attacks"] else \
        f"the targets' attacks differ: {targets['common_attacks']} in common"
    return (f'<h3 id="targets">Attacks per target</h3><p class="muted">Success rate with its 95% interval '
            f"(successes/attacks), per category and tactic; {escape(note)}.</p>"
            f'<table class="steps" id="target-comparison"><tr><th></th>{head}</tr>{body}</table>')


def attack_charts(attack: dict[str, Any]) -> list[str]:
    """The redteam figures (``graphs.data.attack``): success rate per principle, category, target model
    and strategy, turns to the first violation, and the critic's flag rate on controls."""
    def rows(table: dict[str, dict[str, Any]]) -> list[tuple[str, float, str]]:
        return [(k, v["success_rate"] or 0.0, f"({v['successes']}/{v['attacks']}{_ci(v.get('success_rate_ci'))})")
                for k, v in table.items()]

    controls = attack["controls"]
    note = (f"Share of {attack.get('access', 'white-box')} attacks in which the target broke a targeted principle "
            "and the critic caught it.")
    control_rows = [
        ("dialogues flagged", controls["flag_rate"] or 0.0,
         f"({controls['flagged']}/{controls['dialogues']}{_ci(controls.get('flag_rate_ci'))})"),
        ("turns flagged", controls["turn_flag_rate"] or 0.0,
         f"({controls['turns_flagged']}/{controls['turns_judged']}{_ci(controls.get('turn_flag_rate_ci'))})"),
    ] if controls["dialogues"] else []
    turns = [int(k) for k, n in attack["turns_to_first_violation"]["histogram"].items() for _ in range(n)]
    return [
        charts.bar_chart(f"Attack success rate per {what}", rows(attack[key]), max_value=1.0, percent=True,
                         caption=note) for what, key in (("principle", "per_principle"), ("category", "per_category"),
                                                         ("target model", "per_target_model"),
                                                         ("tactic", "per_strategy"))
    ] + [charts.histogram("Turns to first violation", turns, x_label="turns (both sides)",
                          caption="Turns up to and including the target's first violating one, in successful attacks."),
         charts.bar_chart("Critic flag rate on controls", control_rows, max_value=1.0, percent=True,
                          caption="Redteam dialogues with an ordinary user: what the critic flags there is "
                                  "a false positive."),
         charts.bar_chart("Over-refusal rate per probe category", [
             (k, v["rate"] or 0.0, f"({v['refused']}/{v['probes']})")
             for k, v in ((attack.get("over_refusal") or {}).get("per_category") or {}).items()],
             max_value=1.0, percent=True, caption="Harmless questions that sound risky: the share the target "
                                                  "refused needlessly, as the critic judged it.")]


def charts_html(dialogues: Sequence[dict[str, Any]], rates: dict[str, Any] | None, stats: SpanStats,
                attack: dict[str, Any] | None = None) -> str:
    rates = rates or {}
    note = ("Caught: of the dialogues briefed to break it, the share in which the critic found it (catch rate). "
            "Flagged: of all the dialogues judged against it, briefed or not, the share in which the critic "
            "found it (flag rate; SDSD's violation rate). A catch rate well above the flag rate means the "
            "critic tells planted violations apart.")
    figures = [
        charts.bar_chart("Catch rate and flag rate per principle", catch_and_flag_rows(rates.get("principles") or {}),
                         max_value=1.0, percent=True, caption=note),
        charts.bar_chart("Catch rate and flag rate per category", catch_and_flag_rows(rates.get("categories") or {}),
                         max_value=1.0, percent=True, caption=note),
        charts.histogram("Turns per dialogue", [d.get("turns", 0) for d in dialogues if d.get("status") == "ok"],
                         x_label="turns"),
        charts.histogram("Tokens per turn", stats.turn_tokens, x_label="generated tokens per persona turn"),
        charts.bar_chart("Latency per agent role", latency_rows(stats.latency),
                         caption="Seconds per step (all model calls of the step, retries included)."),
    ]
    if attack:
        figures = [*attack_charts(attack), *figures]
    return "".join(figures)


def listed(dialogues: Sequence[dict[str, Any]], limit: int = MAX_LISTED) -> list[dict[str, Any]]:
    """The dialogues listed in full: all of a small run; of a large one, the failed and violating first."""
    if len(dialogues) <= limit:
        return list(dialogues)
    rank = sorted(range(len(dialogues)), key=lambda i: (dialogues[i].get("status") == "ok",
                                                        not dialogues[i].get("is_violation"), i))
    return [dialogues[i] for i in sorted(rank[:limit])]


def render_report(run: RunFacts, dialogues: Sequence[dict[str, Any]],
                  preferences: Sequence[dict[str, Any]], spans: Iterable[dict[str, Any]], *,
                  run_dir: str, max_listed: int = MAX_LISTED, rates: dict[str, Any] | None = None,
                  calibration: dict[str, Any] | None = None, attack: dict[str, Any] | None = None,
                  corrected: dict[str, Any] | None = None) -> str:
    """The whole HTML page. ``rates``: the run's per-principle and per-category figures as
    ``sparring stats`` computes them (``{"principles": ..., "categories": ...}``); ``calibration``: the run
    directory's calibration.json, if any; ``attack``: a redteam run's attack figures (graphs.data.attack),
    charted first; ``corrected``: the rates corrected by that calibration (graphs.data.correction)."""
    shown = listed(dialogues, max_listed)
    stats = collect_span_stats(spans, {d["trace_id"] for d in shown if d.get("trace_id")})
    entries = "".join(dialogue_entry(d, stats.steps.get(d.get("trace_id") or "", []), run_dir=run_dir)
                      for d in shown)
    note = "" if len(shown) == len(dialogues) else (
        f'<p class="muted">Listing {len(shown)} of {len(dialogues)} dialogues (failed and violating ones first).</p>')
    if not stats.content_recorded:
        note += '<p class="muted">Prompts and replies were not recorded (tracing.record_content: false).</p>'
    html = resources.files("sparring.traces").joinpath("templates/report.html").read_text(encoding="utf-8")
    updated = run.updated_at
    return Template(html).substitute(
        csp=content_security_policy(html),
        title=escape(f"sparring report: {run.name or 'run'}"),
        run_dir=escape(run_dir), updated=escape(_utc(updated)),
        summary=summary_html(run, dialogues, preferences, attack),
        charts=charts_html(dialogues, rates, stats, attack), calibration=calibration_html(calibration, corrected),
        note=note,
        dialogues=entries, total=len(shown))


_INLINE = re.compile(r"<(script|style)>(.*?)</\1>", re.S)


def content_security_policy(template: str) -> str:
    """The policy of a page made from ``template``: nothing from the network or any other origin
    (``default-src 'none'``), no base URL, no form target, and as script and style only the
    template's own inline blocks, by the SHA-256 of their text (they hold no placeholder, so the
    page has them byte for byte)."""
    hashes: dict[str, list[str]] = {"script": [], "style": []}
    for kind, body in _INLINE.findall(template):
        digest = base64.b64encode(hashlib.sha256(body.encode("utf-8")).digest()).decode("ascii")
        hashes[kind].append(f"'sha256-{digest}'")
    allowed = {kind: " ".join(found) or "'none'" for kind, found in hashes.items()}
    return (f"default-src 'none'; base-uri 'none'; form-action 'none'; script-src {allowed['script']}; "
            f"style-src {allowed['style']}")


def _utc(timestamp: float | None) -> str:
    if not timestamp:
        return "-"
    import datetime

    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
