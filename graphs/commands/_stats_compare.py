"""``sparring stats PATH --compare OTHER``: the conversation figures of two runs or datasets side by side
(those ``run_stats.compute_conversation_stats`` gives any list of conversations)."""

from __future__ import annotations

from typing import Any

from sparring.graphs.data.intervals import interval_text


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def name_of(figures: dict[str, Any]) -> str:
    """How a column is headed: the run's name, else the dataset's path."""
    run = figures.get("run") or {}
    if run.get("name"):
        return f"run {run['name']}"
    path = str((figures.get("source") or {}).get("path", "?"))
    return path if len(path) <= 40 else "..." + path[-37:]


def rows_of(s: dict[str, Any]) -> list[tuple[str, str]]:
    """(figure, value) of one side: DiaSynth Table 1, near-duplicates, turns and turn lengths."""
    t1, div, turns, tok = s["diasynth_table1"], s["diversity"], s["turns"], s["turn_tokens"]
    emb = div.get("embedding") or {}
    rouge = div.get("rouge_l") or {}
    near = (f"{interval_text(emb.get('near_duplicate_rate_ci'), digits=1)} ({emb.get('near_duplicates')} at "
            f"cosine >= {emb.get('near_duplicate_threshold')})" if "near_duplicate_rate" in emb
            else ("(skipped)" if not emb else f"(failed: {emb.get('error')})"))
    rows = [
        ("samples", _num(t1["samples"])), ("avg. turns", _num(t1["avg_turns"])),
        ("avg. tokens per turn", _num(t1["avg_tokens_per_turn"])),
        ("diversity (ROUGE-L, lower = more diverse)",
         f"{_num(t1['diversity_rouge_l'])} ({rouge.get('method')}, {rouge.get('queries')} dialogues)"),
        ("diversity (embedding cosine)", _num(t1["diversity_embedding"])),
        ("near-duplicate dialogues [95% CI]", near),
        ("turns per dialogue: min / max", f"{_num(turns['min'])} / {_num(turns['max'])}"),
        ("tokens per turn: median / p90 / max", f"{_num(tok['p50'])} / {_num(tok['p90'])} / {_num(tok['max'])}"),
    ]
    rows += [(f"turns of {bucket} tokens", f"{n} ({n / tok['turns']:.1%})" if tok["turns"] else "0")
             for bucket, n in tok["histogram"].items()]
    if len(tok["mean_by_side"]) <= 2:  # a run's sides A and B (a dataset's speakers are people, not sides)
        rows += [(f"tokens per turn, side {side}", _num(mean)) for side, mean in tok["mean_by_side"].items()]
    return rows


def print_compare(first: dict[str, Any], second: dict[str, Any] | None = None) -> None:
    """One table, a column per side; rows only one side has are shown with '-' on the other."""
    from rich.console import Console
    from rich.table import Table

    sides = [first] if second is None else [first, second]
    table = Table(title="Conversations" if second is None else "Side by side", title_justify="left")
    table.add_column("")
    for side in sides:
        table.add_column(name_of(side), justify="right")
    values = [dict(rows_of(side)) for side in sides]
    for key in dict.fromkeys(k for v in values for k in v):
        table.add_row(key, *(v.get(key, "-") for v in values))
    console = Console()
    console.print(table)
    console.print(f"tokens: {first['tokenizer']}; diversity over each side's own dialogues.", style="dim")
