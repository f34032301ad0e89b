"""``sparring run CONFIG`` and ``sparring resume RUN_DIR``.

Exit status: 0 every dialogue written; 3 finished, but some dialogues failed
(they are in dialogues.jsonl with their error; the last line names the commonest
cause); 1 stopped by --max-failures, a worker's or the engine's death or a full disk; 2 bad input,
a backend that cannot work (found before anything is written) or a run directory
another process is writing; 130 interrupted (resume continues it).
"""

from __future__ import annotations

import asyncio
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ._common import fail, say, set_option, user_errors

if TYPE_CHECKING:
    from sparring.graphs.runtime.manifest_parts import Counts
    from sparring.graphs.runtime.run_request import RunRequest

EXIT_FAILURES = 3
EXIT_STOPPED = 1
EXIT_INTERRUPTED = 130

verbose_option = click.option(
    "-v", "--verbose", is_flag=True,
    help="Show the engine's and libraries' output live (it always goes to RUN_DIR/engine.log).")


@click.command()
@click.argument("config", type=click.Path(path_type=Path))
@set_option
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Run directory (default: runs/<name>).")
@click.option("--shard", metavar="K/N", help="Run only shard K (0 to N-1) of N: the dialogues whose id hashes to K.")
@click.option("--max-dialogues", type=click.IntRange(min=1), help="Simulate at most N dialogues.")
@click.option("--max-failures", type=click.IntRange(min=0), help="Stop cleanly once more than N dialogues failed.")
@click.option("--dry-run", is_flag=True, help="Print what the config will produce; call no model, write nothing.")
@click.option("--force", is_flag=True, help="Continue a run directory made by a different config.")
@click.option("--behaviours", type=click.Path(path_type=Path), metavar="FILE",
              help="Redteam goals from a behaviour list (HarmBench CSV, JailbreakBench CSV, one per line).")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@verbose_option
@user_errors
def run(config: Path, overrides: tuple[str, ...], out: Path | None, shard: str | None, max_dialogues: int | None,
        max_failures: int | None, dry_run: bool, force: bool, behaviours: Path | None, quiet: bool,
        verbose: bool) -> None:
    """Simulate the dialogues CONFIG describes and write them, their preference pairs and traces.

    CONFIG is a config file, or a plan directory written by `sparring plan`. Running again into
    an existing run directory continues it (see `sparring resume`)."""
    from sparring.graphs.runtime.run_request import request_for_run

    if behaviours is not None:  # as --set dialogue.behaviours=FILE, the file named from here
        overrides = (*overrides, f"dialogue.behaviours={behaviours.resolve()}")
    request = request_for_run(config, overrides, shard=shard, out=out, max_dialogues=max_dialogues,
                              max_failures=max_failures, force=force)
    if dry_run:
        from sparring.graphs.runtime.run_request import describe_request

        say(describe_request(request))
        return
    _execute(request, quiet, verbose)


@click.command()
@click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--max-failures", type=click.IntRange(min=0), help="Stop cleanly once more than N dialogues failed.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@verbose_option
@user_errors
def resume(run_dir: Path, max_failures: int | None, quiet: bool, verbose: bool) -> None:
    """Continue a run that was interrupted or killed: written records stay, unfinished
    dialogues continue from their last checkpoint, failed ones are retried."""
    from sparring.graphs.runtime.run_request import request_from_run_dir

    _execute(request_from_run_dir(run_dir, max_failures=max_failures), quiet, verbose)


def _execute(request: RunRequest, quiet: bool, verbose: bool) -> None:
    from sparring.errors import DiskFull, EngineDied, InputError, WorkerError
    from sparring.graphs.runtime.pipeline import execute
    from sparring.graphs.runtime.progress import Progress
    from sparring.graphs.runtime.store import MANIFEST
    from sparring.redaction import scrub

    run_dir = request.run_dir
    try:
        result = asyncio.run(execute(request, progress=Progress(enabled=not quiet), engine_log=True,
                                     verbose=verbose))
    except (WorkerError, EngineDied, DiskFull) as exc:  # an OOM kill, a full disk: the manifest says; resume continues
        fail(f"{exc}; resume with: sparring resume {run_dir}", EXIT_STOPPED)
    except KeyboardInterrupt:  # a signal outside the dialogues (start-up, expansion, the end)
        resumable = (run_dir / MANIFEST).is_file()
        fail("interrupted" + (f"; resume with: sparring resume {run_dir}" if resumable
                              else " before anything was written"), EXIT_INTERRUPTED)
    except InputError:
        raise
    except Exception as exc:  # the engine did not start, or a crash: one line here, the traceback in the log
        fail(f"{_one_line(exc)}{_logged(run_dir, exc)}", EXIT_STOPPED)
    counts = result.counts
    say(
        f"{result.status}: {counts.dialogues} dialogues ({counts.failed} failed), "
        f"{counts.pairs} preference pairs ({counts.verified_pairs} verified), "
        f"{counts.violation_rate:.0%} flagged by the critic, average {counts.avg_turns} turns "
        f"-> {result.run_dir}")
    left_out = left_out_line(result.manifest.counts)
    if left_out:
        click.echo(f"sparring: {left_out}", err=True)
    causes = result.manifest.runs[-1].failure_causes or []
    if causes:
        top = causes[0]
        say(f"failed dialogues: {top['dialogues']} of {counts.failed} with {scrub(top['example'])}"
                   + (f" (and {len(causes) - 1} other cause(s): sparring trace {result.run_dir} --failed)"
                      if len(causes) > 1 else ""), err=True)
    if result.status == "interrupted":
        say(f"resume with: sparring resume {result.run_dir}", err=True)
        sys.exit(EXIT_INTERRUPTED)
    if result.status == "failed":
        sys.exit(EXIT_STOPPED)
    if counts.failed:
        sys.exit(EXIT_FAILURES)


_DROPPED = {"unverified": "unverified", "flagged_prompt": "a flagged turn in the prompt",
            "after_branch": "replaced by the branch", "revision_failed": "the reviser failed",
            "verify_failed": "the verifier failed", "unjudged_prompt": "an unjudged turn in the prompt",
            "cut_turn": "cut at the token limit",
            "revision_flagged": "a revision that broke something new",
            "revised_prompt": "an earlier revision in the prompt (nobody answered it)"}
_SFT_CUT = {"unfixed": "an unfixed turn", "cut_turn": "a turn cut at the token limit",
            "planted": "an unflagged planted turn", "after_revision": "a revision nobody answered",
            "no_turn": "no turn of the judged side"}


def left_out_line(counts: Counts) -> str:
    """What the training rows left out and why, and the steps that failed, from a manifest's counts;
    "" when nothing was. A newcomer reading "0 preference pairs" sees the reason here."""
    parts = []
    dropped = {k: n for k, n in counts.dropped_pairs.items() if n}
    if dropped:
        parts.append("pairs dropped: " + ", ".join(f"{n} {_DROPPED.get(k, k)}" for k, n in dropped.items()))
    sft = counts.sft_rows
    if sft.get("cut") or sft.get("dropped"):
        why = {k: n for k, n in counts.sft_cut_by_reason.items() if n}
        at = (", ".join(f"{n} at {_SFT_CUT.get(k, k)}" for k, n in why.items()) if why
              else "at an unfixed turn")
        parts.append(f"SFT rows: {sft.get('cut', 0)} cut, {sft.get('dropped', 0)} dropped ({at})")
    steps = {k: n for k, n in counts.failed_steps.items() if n}
    if steps:
        parts.append("calls failed for good (their turns left out): "
                     + ", ".join(f"{n} {k}" for k, n in steps.items()))
    if counts.ungrounded_findings:
        parts.append(f"{counts.ungrounded_findings} critic findings dropped (the evidence they quoted "
                     "is not in the judged turn)")
    return "; ".join(parts) + ("" if not parts else " (sparring stats RUN_DIR has the details)")


def _one_line(exc: BaseException) -> str:
    first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _logged(run_dir: Path, exc: BaseException) -> str:
    """The traceback appended to RUN_DIR/engine.log (beside what the engine printed); where to look."""
    from sparring.graphs.runtime.store import ENGINE_LOG

    log = run_dir / ENGINE_LOG
    if not log.parent.is_dir():
        return ""
    with log.open("a", encoding="utf-8") as fh:
        fh.write("".join(traceback.format_exception(exc)))
    return f" (the engine's output and the traceback are in {log})"
