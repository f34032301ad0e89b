"""The trace viewer: a dialogue's span tree as terminal text, or as nested JSON for tools.

Input is plain data (span dicts from traces.jsonl, dialogue dicts from
dialogues.jsonl), output is a string: the ``sparring trace`` command does the
loading and printing. With ``color=False`` the text is the same byte for
byte on every machine (the golden test relies on it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from .read import children_of

_ANSI = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "dim": "2",
         "bold": "1"}


class Painter:
    """Wraps text in ANSI colors, or leaves it alone."""

    def __init__(self, color: bool) -> None:
        self.color = color

    def __call__(self, text: str, *styles: str) -> str:
        if not self.color or not styles:
            return text
        codes = ";".join(_ANSI[s] for s in styles)
        return f"\x1b[{codes}m{text}\x1b[0m"


def one_line(text: str, limit: int | None) -> str:
    """Whitespace collapsed to single spaces; cut at ``limit`` characters with an ellipsis."""
    flat = " ".join(str(text).split())
    if limit is not None and len(flat) > limit:
        return flat[: max(limit - 3, 1)] + "..."
    return flat


def _seconds(span: dict[str, Any]) -> float | None:
    end = span.get("end_time")
    return None if end is None else end - span["start_time"]


def _tokens(attrs: dict[str, Any]) -> str:
    tin, tout = attrs.get("gen_ai.usage.input_tokens"), attrs.get("gen_ai.usage.output_tokens")
    return "" if tin is None and tout is None else f"{tin or 0}->{tout or 0} tok"


def _ids(values: Sequence[str] | None) -> str:
    return ", ".join(values) if values else "-"


def span_label(span: dict[str, Any], paint: Painter) -> str:
    """What one span was, in words: the agent, the turn, the verdict."""
    a = span.get("attributes") or {}
    name, agent = span["name"], a.get("gen_ai.agent.name", "")
    turn = f" turn {a['app.turn_index']}" if "app.turn_index" in a else ""
    if name == "invoke_workflow":
        if a.get("app.workflow"):
            return paint(f"workflow {a['app.workflow']}", "bold")
        outcome = ""
        if "app.stop_reason" in a:
            found = paint(f"violated {_ids(a.get('app.violated_principles'))}", "yellow") \
                if a.get("app.is_violation") else "no violation"
            outcome = f" stop={a['app.stop_reason']} turns={a.get('app.turns', 0)} {found}"
        return paint(f"dialogue {a.get('app.dialogue_id', a.get('gen_ai.conversation.id', '?'))}", "bold") + outcome
    if name == "chat":
        backend = f" on {a['app.backend']}" if a.get("app.backend") else ""  # the config's name for the backend
        bits = [f"chat {a.get('gen_ai.request.model', '?')}{backend}", a.get("app.structured_mode", "none")]
        if a.get("app.retry_attempt"):
            bits.append(f"retry {a['app.retry_attempt']}")
        if a.get("app.reask"):
            bits.append(f"re-ask {a['app.reask']}")
        reasons = a.get("gen_ai.response.finish_reasons")
        if reasons:
            bits.append(f"finish={','.join(str(r) for r in reasons)}")
        return paint(bits[0], "dim") + " " + " ".join(bits[1:])
    label = paint(agent or name, "bold", "cyan") + turn
    if a.get("app.side"):
        label += f" ({a['app.side']})"
    if agent in ("critic", "verifier") and "app.violated" in a:
        violated = a.get("app.violated") or []
        if violated:
            severity = f" ({a['app.severity']})" if a.get("app.severity") else ""
            word = "still violated" if agent == "verifier" else "violated"
            label += " " + paint(f"{word}: {_ids(violated)}{severity}", "yellow")
        else:
            label += " " + paint("clean", "green")
    elif agent == "reviser":
        label += f" fixing {_ids(a.get('app.principle_ids'))}"
    elif agent.startswith("persona_"):
        if a.get("app.principle_ids"):
            label += f" briefed to break {_ids(a['app.principle_ids'])}"
        if a.get("app.done_signal"):
            label += " " + paint("<done>", "green")
    return label


def span_metrics(span: dict[str, Any]) -> str:
    """Latency, tokens and retries of one span."""
    a = span.get("attributes") or {}
    seconds = _seconds(span)
    parts = ["running" if seconds is None else f"{seconds:.2f}s"]
    tokens = _tokens(a)
    if tokens:
        parts.append(tokens)
    if a.get("app.retries"):
        parts.append(f"{a['app.retries']} retries")
    return "  ".join(parts)


def content_lines(span: dict[str, Any], limit: int | None, paint: Painter) -> list[str]:
    """What a ``chat`` span was shown and what it said."""
    a = span.get("attributes") or {}
    shown, said = a.get("gen_ai.input.messages"), a.get("gen_ai.output.messages")
    if shown is None and said is None:
        return [paint("(content not recorded)", "dim")] if span.get("status") != "error" else []
    lines = []
    for m in shown or []:
        lines.append(paint(f"shown [{m.get('role', '?')}] ", "dim") + _text(m.get("content", ""), limit))
    for m in said or []:
        lines.append(paint("said: ", "magenta") + _text(m.get("content", ""), limit))
    return lines


def _text(text: str, limit: int | None) -> str:
    return one_line(text, limit) if limit is not None else str(text)


def render_tree(spans: Sequence[dict[str, Any]], *, color: bool = False, limit: int | None = 160) -> str:
    """The span tree of one trace; ``limit`` cuts each shown message (None: full text)."""
    paint = Painter(color)
    roots, kids = children_of(list(spans))
    out: list[str] = []

    def walk(span: dict[str, Any], lead: str, branch: str) -> None:
        failed = span.get("status") == "error"
        line = f"{lead}{branch}{span_label(span, paint)}  {paint(span_metrics(span), 'dim')}"
        out.append(line)
        below = lead + ("   " if branch.startswith("└") else "│  " if branch else "")
        children = kids.get(span["span_id"], [])
        bar = "│  " if children else "   "
        if failed:
            out.append(f"{below}{bar}" + paint(f"ERROR {span.get('error') or 'failed'}", "bold", "red"))
        if span["name"] == "chat":
            for text in content_lines(span, limit, paint):
                for i, piece in enumerate(text.split("\n")):
                    out.append(f"{below}{bar}{'  ' if i else ''}{piece}")
        for i, child in enumerate(children):
            walk(child, below, "└─ " if i == len(children) - 1 else "├─ ")

    for root in roots:
        walk(root, "", "")
    return "\n".join(out)


def dialogue_header(record: dict[str, Any]) -> str:
    """Who talked about what, and how it ended, from the dialogue record."""
    scenario = record.get("scenario") or {}
    personas = list(scenario.get("personas", []))
    if record.get("swapped"):  # side A spoke as the second persona
        personas.reverse()
    names = " / ".join(p.get("name", "?") for p in personas)
    usage = record.get("usage") or {}
    sides = "attacker A, target B judged" if record.get("mode") == "redteam" else \
        f"side {record.get('briefed_side', '?')}"
    lines = [
        f"dialogue {record['id']}  [{record.get('status', '?')}]  mode {record.get('mode', '?')}  "
        f"trace {record.get('trace_id') or '-'}",
        f"topic: {scenario.get('topic', '?')}" + (f" / {scenario['subtopic']}" if scenario.get("subtopic") else "")
        + f"  speakers: {names}",
        f"targets: {_ids(record.get('target_principles'))} ({sides})  "
        f"found: {_ids(record.get('violated_principles'))}  stop: {record.get('stop_reason', '?')}  "
        f"turns: {record.get('turns', 0)}  tokens: {usage.get('prompt_tokens', 0)}->"
        f"{usage.get('completion_tokens', 0)} in {usage.get('calls', 0)} calls  {record.get('duration_s', 0):.2f}s",
    ]
    branch = record.get("branch")
    if branch:
        lines.append(f"branch: continued from the verified revision of turn {branch.get('from_turn')} for "
                     f"{len(branch.get('messages') or []) - branch.get('from_turn', 0) - 1} turns (its steps follow "
                     f"the verifier's; its pairs and SFT row come from it)")
    if record.get("models"):
        by_model: dict[str, list[str]] = {}
        for role, model in record["models"].items():
            by_model.setdefault(model, []).append(role)
        lines.append("models: " + "; ".join(f"{model} ({', '.join(roles)})" for model, roles in by_model.items())
                     + (f"  strategy: {record['strategy']}" if record.get("strategy") else ""))
    if record.get("error"):
        lines.append(f"error: {record['error']}")
    return "\n".join(lines)


def render_dialogue(record: dict[str, Any] | None, spans: Sequence[dict[str, Any]], *, color: bool = False,
                    limit: int | None = 160) -> str:
    """Header (when the dialogue record is known), then the span tree."""
    paint = Painter(color)
    parts = []
    if record is not None:
        header = dialogue_header(record)
        parts.append(paint(header, "red") if record.get("status") == "failed" else header)
    parts.append(render_tree(spans, color=color, limit=limit) if spans else "(no spans recorded for this trace)")
    return "\n\n".join(parts) + "\n"


# -- the list of dialogues -------------------------------------------------------------

LIST_COLUMNS = ("id", "status", "turns", "stop_reason", "violated", "tokens", "seconds", "trace_id")


def dialogue_row(record: dict[str, Any]) -> dict[str, Any]:
    usage = record.get("usage") or {}
    return {"id": record["id"], "status": record.get("status", "ok"), "turns": record.get("turns", 0),
            "stop_reason": record.get("stop_reason", ""), "violated": _ids(record.get("violated_principles")),
            "tokens": usage.get("prompt_tokens", 0) + usage.get("completion_tokens", 0),
            "seconds": round(record.get("duration_s", 0.0), 2), "trace_id": record.get("trace_id") or "-",
            "error": record.get("error")}


def render_list(records: Iterable[dict[str, Any]], *, color: bool = False) -> str:
    """A fixed-width table of dialogues; failed ones in red with their error under them."""
    paint = Painter(color)
    rows = [dialogue_row(r) for r in records]
    if not rows:
        return "(no dialogues)\n"
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in LIST_COLUMNS}
    lines = ["  ".join(c.ljust(widths[c]) for c in LIST_COLUMNS).rstrip()]
    for r in rows:
        line = "  ".join(str(r[c]).ljust(widths[c]) for c in LIST_COLUMNS).rstrip()
        lines.append(paint(line, "red") if r["status"] == "failed" else line)
        if r["error"]:
            lines.append(paint(f"    error: {r['error']}", "red"))
    return "\n".join(lines) + "\n"


# -- JSON for tools ----------------------------------------------------------------------

def tree_json(spans: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The span tree as nested dicts (each span dict plus ``children``)."""
    roots, kids = children_of(list(spans))

    def nest(span: dict[str, Any]) -> dict[str, Any]:
        return {**span, "children": [nest(c) for c in kids.get(span["span_id"], [])]}

    return [nest(r) for r in roots]


def dumps(data: Any) -> str:
    """``data`` as indented JSON for the terminal, the exact text kept (``sparring.terminal.dumps``)."""
    from sparring.terminal import dumps as terminal_dumps

    return terminal_dumps(data) + "\n"
