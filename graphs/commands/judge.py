"""``sparring judge RUN_DIR``: LLM-as-judge scores (G-Eval) for the dialogues of a finished run."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click

from ._common import say, set_option, user_errors


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@set_option
@click.option("--criterion", "criteria", multiple=True,
              type=click.Choice(["engagingness", "naturalness", "coherence", "groundedness"]),
              help="Rate only this criterion. Repeatable. Default: the run's dialogue.judge criteria, else all four.")
@click.option("--samples", type=click.IntRange(1, 50), help="Sampled ratings per criterion when the backend "
                                                             "returns no log-probabilities (default 5).")
@click.option("--force", is_flag=True, help="Rescore dialogues that already have scores.")
@user_errors
def judge(run_dir: Path, overrides: tuple[str, ...], criteria: tuple[str, ...], samples: int | None,
          force: bool) -> None:
    """Score the dialogues of RUN_DIR that have no scores yet, on the run's own backend or another one
    (--set backend.kind=openai_compat --set backend.model=...). Scores go into dialogues.jsonl, and
    stats.json is rewritten."""
    from sparring.graphs.commands.judge_run import judge_run

    summary = asyncio.run(judge_run(run_dir, overrides=overrides, criteria=criteria, samples=samples, force=force))
    if not summary["to_score"]:
        say(f"nothing to score: every dialogue has {', '.join(summary['criteria'])} (--force rescores)")
        return
    methods = ", ".join(f"{k}: {v}" for k, v in summary["methods"].items()) or "-"
    say(f"scored {summary['scored']}/{summary['to_score']} dialogues ({methods}); "
               f"{summary['failed']} failed -> {run_dir}")
    if summary["failed"]:
        raise SystemExit(3)
