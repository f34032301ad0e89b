"""``sparring redteam-replay RUN_DIR --target FILE``: replay a redteam run's successful attacks against
another target (graphs/commands/attack_replay.py) and say which still succeed."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import click

from ._common import user_errors


@click.command("redteam-replay")
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--target", "target_file", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file with the new target's backend block (the keys of a backend: block).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write one result per attack (default: RUN_DIR/replay.jsonl).")
@click.option("--diverge-below", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="ROUGE-L F between a new reply and the recorded one below which the attacker stops replaying "
                   "its recorded turns and re-generates from the same plan (0: replay them all).")
@user_errors
def redteam_replay(run_dir: Path, target_file: Path, out: Path | None, diverge_below: float) -> None:
    """Send the attacker's recorded turns of RUN_DIR's successful attacks to the target of FILE, turn by
    turn, judge each reply with the run's critic, and go on from the same plan where the new target's
    reply diverges from the recorded one or the recorded turns run out; print which attacks still succeed."""
    from pydantic import ValidationError

    from sparring.agents.backends.backend_config import BackendConfig
    from sparring.graphs.commands.attack_replay import replay_attacks
    from sparring.principles.yamlfile import load_yaml, pydantic_error

    data, lines = load_yaml(target_file, what="target backend file")
    try:
        target = BackendConfig.model_validate(data)
    except ValidationError as exc:
        raise pydantic_error(exc, source=str(target_file), lines=lines) from None
    summary = asyncio.run(replay_attacks(run_dir, target, diverge_below=diverge_below))
    path = out or run_dir / "replay.jsonl"
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in summary["results"]), encoding="utf-8")
    tmp.replace(path)
    click.echo(f"{summary['still_succeed']}/{summary['attacks']} successful attacks still succeed against "
               f"{summary['target'].get('model', '?')} ({summary['verbatim_only']} on the recorded turns alone, "
               f"{summary['after_regeneration']} after re-generated turns) -> {path}")
    for tactic, row in summary["per_tactic"].items():
        click.echo(f"  {tactic}: {row['still_succeed']}/{row['replayed']}")
