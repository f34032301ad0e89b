"""``sparring export RUN_DIR --format FORMAT --out PATH``: training-ready datasets with a dataset card.

Exit status: 0 written; 1 rows failed validation (each listed on stderr, nothing
written; ``--skip-invalid`` writes the valid ones instead); 2 bad input.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ._common import say, user_errors

EXIT_INVALID = 1
FORMAT_HELP = ("trl-dpo (prompt/chosen/rejected), trl-kto (prompt/completion/label), sft (messages), "
               "summarization (dialogue/summary), hf (datasets folder: preferences, sft, dialogues), "
               "parquet (the same three tables)")


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True,
              type=click.Choice(["trl-dpo", "trl-kto", "sft", "summarization", "hf", "parquet"]), help=FORMAT_HELP)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="A new folder for the data files and README.md (the dataset card).")
@click.option("--skip-invalid", is_flag=True, help="Write the valid rows when some fail validation (they are "
                                                   "still listed, and the card says how many were left out).")
@click.option("--include-unverified", is_flag=True, help="Also export pairs whose revision did not pass the "
                                                          "verifier (left out, and listed, by default).")
@click.option("--license", "license_id", default=None,
              help="Hub license id for the card (default: the run's `license` config key, apache-2.0 unless set; "
                   "the generating model's terms apply, see the card).")
@click.option("--push-to-hub", "repo", metavar="REPO", help="Also push to the Hugging Face Hub dataset REPO "
                                                            "(needs HF_TOKEN).")
@click.option("--private", is_flag=True, help="With --push-to-hub: create the Hub dataset as private.")
@user_errors
def export(run_dir: Path, fmt: str, out: Path | None, skip_invalid: bool, include_unverified: bool,
           license_id: str | None, repo: str | None, private: bool) -> None:
    """Export RUN_DIR as FORMAT, every row checked first against its trainer's expectations
    (one format throughout, alternating roles, prompt a prefix of its dialogue, chosen and
    rejected non-empty and different) and against the data rules: no pair or SFT row holds a flagged
    turn that was not replaced by its verified revision, and pairs are verified unless
    --include-unverified."""
    from sparring.errors import InputError, InvalidRows
    from sparring.graphs.data.writers import write_export

    if out is None and repo is None:
        raise InputError("give --out PATH, --push-to-hub REPO, or both")
    try:
        result = write_export(run_dir, fmt, out, skip_invalid=skip_invalid, license_id=license_id, push_to=repo,
                              private=private, include_unverified=include_unverified)
    except InvalidRows as exc:
        for problem in exc.problems:
            say(f"invalid: {problem}", err=True)
        say(f"export: {len(exc.problems)} row(s) failed validation; nothing written "
                   "(--skip-invalid writes the valid rows)", err=True)
        sys.exit(EXIT_INVALID)
    for problem in result.problems:
        say(f"skipped: {problem}", err=True)
    rows = ", ".join(f"{t.name}: {len(t.rows)}" for t in result.tables)
    where = " and ".join(x for x in (str(out) if out else "", f"hub:{result.pushed_to}" if result.pushed_to else "")
                         if x)
    say(f"exported {fmt} ({rows} rows; {len(result.problems)} skipped) -> {where}")
