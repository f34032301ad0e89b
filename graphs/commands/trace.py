"""``sparring trace RUN_DIR [DIALOGUE_ID]``: list dialogues, show one's span tree, or replay it.

Exit status: 0 shown (or replay reproduced the records); 1 replay differs;
2 bad input (no such run directory or dialogue, replay without recorded content).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from ._common import say, user_errors


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.argument("dialogue_id", required=False)
@click.option("--failed", is_flag=True, help="List only the dialogues that failed, with their errors.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (the span tree as nested JSON).")
@click.option("--full", is_flag=True, help="Show prompts and replies in full (default: cut to one line each).")
@click.option("--color/--no-color", default=None, help="Colors (default: on when writing to a terminal).")
@click.option("--replay", is_flag=True,
              help="Re-run the dialogue's graph on the replies recorded in its trace (no model) and "
                   "print what differs from the records written by the run.")
@click.option("--strict", is_flag=True, help="With --replay: fail a call whose prompt differs from the recorded one "
                                             "(default: serve the recorded reply and report the difference).")
@user_errors
def trace(run_dir: Path, dialogue_id: str | None, failed: bool, as_json: bool, full: bool, color: bool | None,
          replay: bool, strict: bool) -> None:
    """Show the trace of a run: without DIALOGUE_ID the list of dialogues; with it (an id, a unique
    prefix of one, or a trace id), who spoke, what each agent was shown and said, the critic's
    verdicts, the revisions, tokens and latency per step, errors highlighted."""
    from sparring.errors import InputError
    from sparring.graphs.runtime.store import DIALOGUES, iter_jsonl
    from sparring.terminal import visible_data
    from sparring.traces import viewer
    from sparring.traces.read import iter_spans

    if not (run_dir / DIALOGUES).is_file():
        raise InputError("holds no dialogues.jsonl: not a sparring run directory (or nothing finished yet)",
                         source=str(run_dir))
    use_color = sys.stdout.isatty() if color is None else color
    records = list(iter_jsonl(run_dir / DIALOGUES)) if dialogue_id is None else []
    if dialogue_id is None:
        if replay:
            raise InputError("--replay needs a DIALOGUE_ID")
        if failed:
            records = [r for r in records if r.get("status") == "failed"]
        click.echo(viewer.dumps([viewer.dialogue_row(r) for r in records]) if as_json
                   else viewer.render_list(visible_data(records), color=use_color), nl=False)
        return
    try:
        record = find_dialogue(run_dir / DIALOGUES, dialogue_id)
    except InputError:
        # Not a dialogue: maybe another trace of the run (the DiaSynth expansion), by its full id.
        other = list(iter_spans(run_dir, {dialogue_id})) if not replay else []
        if not other:
            raise
        click.echo(viewer.dumps(viewer.tree_json(other)) if as_json
                   else viewer.render_dialogue(None, visible_data(other), color=use_color, limit=None if full else 160),
                   nl=False)
        return
    if replay:
        _replay(run_dir, record, strict=strict, as_json=as_json)
        return
    spans = list(iter_spans(run_dir, {record["trace_id"]})) if record.get("trace_id") else []
    if as_json:
        click.echo(viewer.dumps({"dialogue": viewer.dialogue_row(record), "trace_id": record.get("trace_id"),
                                 "spans": viewer.tree_json(spans)}), nl=False)
    else:
        click.echo(viewer.render_dialogue(visible_data(record), visible_data(spans), color=use_color,
                                          limit=None if full else 160), nl=False)


def find_dialogue(path: Path, key: str) -> dict[str, Any]:
    """The dialogue whose id (or trace id) is ``key`` or starts with it; InputError if none or several."""
    from sparring.errors import InputError
    from sparring.graphs.runtime.store import iter_jsonl

    matches = []
    for row in iter_jsonl(path):
        if row["id"] == key or row.get("trace_id") == key:
            return row
        if row["id"].startswith(key) or (row.get("trace_id") or "").startswith(key):
            matches.append(row)
    if not matches:
        raise InputError(f"no dialogue or trace {key!r} in it", source=str(path))
    if len(matches) > 1:
        raise InputError(f"{key!r} is the start of {len(matches)} dialogue ids; give more of it", source=str(path))
    return matches[0]


def _replay(run_dir: Path, record: dict[str, Any], *, strict: bool, as_json: bool) -> None:
    import asyncio

    from sparring.graphs.runtime.dialogue_replay import replay_dialogue
    from sparring.traces import viewer

    outcome = asyncio.run(replay_dialogue(run_dir, record, strict=strict))
    if as_json:
        click.echo(viewer.dumps(outcome.as_dict()), nl=False)
    else:
        say(outcome.describe())
    if not outcome.reproduced:
        sys.exit(1)
