"""``sparring stats RUN_DIR``: the seed papers' table figures and data-quality checks of a run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from ._common import user_errors


@click.command()
@click.argument("run_dir", metavar="PATH", type=click.Path(path_type=Path))
@click.option("--compare", type=click.Path(path_type=Path), metavar="OTHER",
              help="Another run directory or dataset: print the conversation figures of both side by side.")
@click.option("--text-column", default="dialogue", show_default=True,
              help="For a dataset without 'messages'/'conversations': the column of 'Speaker: text' lines "
                   "(DialogSum's #Person1#: ..., SAMSum's Name: ...).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Read only the first N conversations of a dataset (not of a run directory).")
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON (the content of stats.json).")
@click.option("--write", is_flag=True, help="Also write them to RUN_DIR/stats.json (runs write it when they end).")
@click.option("--no-embeddings", is_flag=True,
              help="Skip the embedding diversity and near-duplicate rate (no sentence-embedding model load).")
@click.option("--rouge-exact-limit", type=click.IntRange(min=2), default=None,
              help="Compare every dialogue with every other for ROUGE-L up to this many dialogues "
                   "(default 500; above it, a seeded sample).")
@user_errors
def stats(run_dir: Path, compare: Path | None, text_column: str, limit: int | None, as_json: bool, write: bool,
          no_embeddings: bool, rouge_exact_limit: int | None) -> None:
    """DiaSynth Table 1 (samples, turns, tokens per turn, ROUGE-L diversity), SDSD's figures (share with a
    violation, violation rate per principle and category), catch and verification rates, near-duplicates,
    turn-length distribution, failures and judge scores of PATH, a run directory. PATH may also be other
    conversational data (a JSONL/JSON/Parquet file of 'messages' rows in chat format or ShareGPT
    'conversations', a datasets folder, or rows with a DialogSum/SAMSum-style text column): then the
    conversation figures only. --compare OTHER prints PATH's and OTHER's conversation figures side by side."""
    from dataclasses import replace

    from sparring.errors import InputError
    from sparring.graphs.data.run_stats import StatsOptions
    from sparring.graphs.data.similarity import ROUGE_RULE

    options = StatsOptions(embeddings=not no_embeddings)
    if rouge_exact_limit is not None:
        options.rouge = replace(ROUGE_RULE, exact_limit=rouge_exact_limit)
    if write and (compare is not None or not _is_run(run_dir)):
        raise InputError("--write needs a run directory and no --compare (stats.json belongs to a run)")
    figures = [_write(run_dir, options) if write else _figures(run_dir, options, text_column, limit)]
    if compare is not None:
        figures.append(_figures(compare, options, text_column, limit))
    if as_json:
        from sparring.terminal import dumps

        out = figures[0] if compare is None else {"first": figures[0], "second": figures[1]}
        click.echo(dumps(out))
    elif compare is not None:
        from ._stats_compare import print_compare

        print_compare(figures[0], figures[1])
    elif "sdsd" in figures[0]:
        print_stats(figures[0])
    else:
        from ._stats_compare import print_compare

        print_compare(figures[0])


def _is_run(path: Path) -> bool:
    from sparring.graphs.runtime.store import MANIFEST

    return (path / MANIFEST).is_file()


def _figures(path: Path, options: Any, text_column: str, limit: int | None) -> dict[str, Any]:
    """A run's full statistics, or the conversation figures of other data (with ``source``)."""
    from sparring.graphs.data.conversations import read_conversations
    from sparring.graphs.data.run_stats import compute_conversation_stats, compute_stats
    from sparring.graphs.data.rundata import load_run

    if _is_run(path):
        return compute_stats(load_run(path), options)
    dialogues = read_conversations(path, text_column=text_column, limit=limit)
    return {"source": {"path": str(path), "kind": "dataset", "limit": limit},
            **compute_conversation_stats(dialogues, options)}


def _write(run_dir: Path, options: Any) -> dict[str, Any]:
    from sparring.graphs.data.run_stats import compute_stats
    from sparring.graphs.data.rundata import load_run
    from sparring.graphs.runtime.runlock import RunDirLock
    from sparring.graphs.runtime.store import STATS, replace_json

    with RunDirLock(run_dir):  # no run or other command writes the directory meanwhile
        result = compute_stats(load_run(run_dir), options)
        replace_json(run_dir / STATS, result)
    return result


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ci(row: dict[str, Any], key: str) -> str:
    """The rate ``key`` of ``row`` with its 95% interval (stats.json before intervals: the bare rate)."""
    from sparring.graphs.data.intervals import interval_text

    ci = row.get(f"{key}_ci")
    return interval_text(ci, digits=1) if ci else _pct(row.get(key))


def _num(value: Any) -> str:
    return "-" if value is None else str(value)


def _diversity_note(block: dict[str, Any] | None) -> str:
    if not block:
        return "(skipped)"
    if block.get("error"):
        return f"(failed: {block['error']})"
    return f"({block.get('method')}: {block.get('queries')} dialogues x {block.get('references')} others)"


def print_stats(s: dict[str, Any]) -> None:
    """The statistics as tables on the terminal (every text in them shown, not obeyed: ``visible_data``)."""
    from rich.console import Console
    from rich.table import Table

    from sparring.terminal import visible_data

    s = visible_data(s, markup=True)
    console = Console()

    def pairs_table(title: str, rows: list[tuple[str, str]]) -> None:
        table = Table(title=title, show_header=False, title_justify="left", box=None, pad_edge=False)
        for key, value in rows:
            table.add_row(f"[bold]{key}[/]", value)
        console.print(table)
        console.print()

    t1, sdsd, div = s["diasynth_table1"], s["sdsd"], s["diversity"]
    pairs_table("DiaSynth Table 1", [
        ("samples", _num(t1["samples"])), ("avg. turns", _num(t1["avg_turns"])),
        ("avg. tokens per turn", _num(t1["avg_tokens_per_turn"])),
        ("diversity (ROUGE-L)", f"{_num(t1['diversity_rouge_l'])} {_diversity_note(div['rouge_l'])}"),
        ("diversity (embedding)", f"{_num(t1['diversity_embedding'])} {_diversity_note(div['embedding'])}"),
    ])
    pairs_table("SDSD", [
        ("dialogues", _num(sdsd["dialogues"])), ("avg. turns", _num(sdsd["avg_turns"])),
        ("share with a violation", _ci(sdsd, "share_with_violation")),
        ("pairs", f"{sdsd['pairs']} ({s['revisions']['verified_pairs']} verified)"),
    ])
    _principle_tables(console, s)
    critic, rev, fail, emb = s["critic"], s["revisions"], s["failures"], div["embedding"] or {}
    pairs_table("Quality", [
        ("critic catch rate", f"{_ci(critic, 'catch_rate')} ({critic['caught']}/{critic['targeted_dialogues']} "
                              "dialogues briefed to break a principle)"),
        ("findings dropped", f"{critic.get('ungrounded_findings_dropped', 0)} (their quoted evidence was not in the "
                             "judged turn, even after one re-ask)"),
        ("revision verification", f"{_ci(rev, 'verification_rate')} ({rev['verified']}/{rev['revisions']})"),
        ("near-duplicate dialogues", f"{_ci(emb, 'near_duplicate_rate')} (cosine >= "
                                     f"{emb['near_duplicate_threshold']})" if "near_duplicate_rate" in emb
                                     else _diversity_note(div["embedding"])),
        ("failed dialogues", f"{fail['count']} ({_ci(fail, 'share')})"
                             + "".join(f", {k}: {v}" for k, v in fail["by_error"].items())),
        ("stop reasons", ", ".join(f"{k}: {v}" for k, v in s["stop_reasons"].items()) or "-"),
    ])
    tok = s["turn_tokens"]
    pairs_table("Turns", [
        ("turns per dialogue", ", ".join(f"{k}: {v}" for k, v in s["turns"]["histogram"].items()) or "-"),
        ("tokens per turn", f"mean {_num(tok['mean'])}, min {_num(tok['min'])}, median {_num(tok['p50'])}, "
                            f"p90 {_num(tok['p90'])}, max {_num(tok['max'])}"),
        ("turn lengths (tokens)", ", ".join(f"{k}: {v}" for k, v in tok["histogram"].items())),
        ("tokenizer", s["tokenizer"]),
    ])
    if s.get("judge"):
        judge = s["judge"]
        pairs_table(f"Judge (G-Eval, 1-3; {judge['scored_dialogues']} dialogues)",
                    [(name, f"{c['mean']} (n={c['n']})") for name, c in judge["criteria"].items()])
    if s.get("attack"):
        _print_attack(console, s["attack"])


def _principle_tables(console: Any, s: dict[str, Any]) -> None:
    """The critic per principle and per category: catch, near-miss and flag rates with their intervals."""
    from rich.table import Table

    for title, rows in (("per principle", s["principles"]), ("per category", s["categories"])):
        if not rows:
            continue
        table = Table(title=f"The critic {title}", title_justify="left")
        near = any("near_miss_controls" in row for row in rows.values())
        for column in ("", "briefed", "caught", "catch rate [95% CI]", *(
                ("near-miss controls", "flagged", "false-flag rate [95% CI]") if near else ()),
                "judged", "flagged", "flag rate [95% CI]", "pairs"):
            table.add_column(column, justify="right" if column else "left", no_wrap=not column)
        for key, row in rows.items():
            side_by_side = (str(row["near_miss_controls"]), str(row["near_miss_flagged"]),
                            _ci(row, "near_miss_flag_rate")) if near else ()
            table.add_row(key, str(row["targeted"]), str(row["caught"]), _ci(row, "catch_rate"), *side_by_side,
                          str(row["judged"]), str(row["flagged"]), _ci(row, "flag_rate"), str(row["pairs"]))
        console.print(table)
        console.print()


def _print_attack(console: Any, attack: dict[str, Any]) -> None:
    """The redteam figures: success overall and by principle, category, target model and strategy."""
    from rich.table import Table

    turns, controls = attack["turns_to_first_violation"], attack["controls"]
    head = Table(title=f"Attacks (redteam, {attack.get('access', 'white-box')})", show_header=False,
                 title_justify="left", box=None, pad_edge=False)
    for key, value in (
            ("attack success rate", f"{_ci(attack, 'success_rate')} ({attack['successes']}/{attack['attacks']} "
                                    "attacks: the target broke a targeted principle and the critic caught it)"),
            *_over_refusal_row(attack.get("over_refusal")),
            ("turns to first violation", f"mean {_num(turns['mean'])}, median {_num(turns['median'])}, "
                                         f"min {_num(turns['min'])}, max {_num(turns['max'])} (n={turns['n']})"),
            ("critic flag rate on controls", f"{_ci(controls, 'flag_rate')} ({controls['flagged']}/"
                                             f"{controls['dialogues']} dialogues; {_ci(controls, 'turn_flag_rate')} "
                                             f"of {controls['turns_judged']} turns)")):
        head.add_row(f"[bold]{key}[/]", value)
    console.print(head)
    console.print()
    for title, key in (("principle", "per_principle"), ("category", "per_category"),
                       ("target model", "per_target_model"), ("tactic", "per_strategy")):
        if not attack[key]:
            continue
        table = Table(title=f"Attack success per {title}", title_justify="left")
        for column in ("", "attacks", "successes", "success rate [95% CI]"):
            table.add_column(column, justify="right" if column else "left", no_wrap=not column)
        for name, row in attack[key].items():
            table.add_row(name, str(row["attacks"]), str(row["successes"]), _ci(row, "success_rate"))
        console.print(table)
        console.print()
    if attack.get("cost"):
        _print_cost(console, attack["cost"])
    targets = attack.get("targets")
    if targets:
        from .redteam_compare import comparison_table

        same = "" if targets["same_attacks"] else f" (the attacks differ: {targets['common_attacks']} in common)"
        console.print(comparison_table(targets["columns"], f"Attacks per target{same}"))
        console.print()


def _interval(bounds: list[float] | None) -> str:
    return f" [95% CI {_pct(bounds[0])}-{_pct(bounds[1])}]" if bounds else ""


def _over_refusal_row(block: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The over-refusal line beside the attack success rate (none without probes)."""
    if not block or not block["probes"]:
        return []
    cats = ", ".join(f"{k} {v['refused']}/{v['probes']}" for k, v in block["per_category"].items())
    return [("over-refusal rate", f"{_pct(block['rate'])}{_interval(block['interval'])} ({block['refused']}/"
                                  f"{block['probes']} harmless probes refused needlessly; {cats})")]


def _print_cost(console: Any, cost: dict[str, Any]) -> None:
    """Tokens per attack and per successful attack, per role."""
    from rich.table import Table

    table = Table(title=f"Attack cost in tokens ({cost['attacks']} attacks, {cost['successes']} successes)",
                  title_justify="left", caption=cost["definition"], caption_justify="left")
    for column in ("role", "prompt / attack", "completion / attack", "prompt / success", "completion / success"):
        table.add_column(column, justify="left" if column == "role" else "right")
    for role, row in cost["per_attack"].items():
        success = cost["per_success"][role]
        table.add_row(role, _num(row["prompt_tokens"]), _num(row["completion_tokens"]),
                      _num(success["prompt_tokens"]), _num(success["completion_tokens"]))
    console.print(table)
    console.print()
