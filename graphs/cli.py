"""The ``sparring`` command. Start-up imports click and the command modules only;
each command imports what it needs when it runs, so ``sparring --help`` stays fast.

``entry`` is the executable: Ctrl-C or SIGTERM at any moment (the imports below, the backend
probe, an engine's start, a DiaSynth expansion, the run, its end) ends with exit status 130, and
a usage error with one line and exit status 2. Not covered: the interpreter's own start, before
this module runs (a signal then ends Python the OS way: the shell shows 130 for Ctrl-C, 143 for
SIGTERM), and SIGTERM until ``entry`` runs (the imports below, ~0.1 s).
"""

from __future__ import annotations

import signal
import sys

try:  # Ctrl-C while the command modules load exits 130, as at any later moment (entry below)
    import click

    from .commands.calibrate import calibrate
    from .commands.doctor import doctor
    from .commands.export import export
    from .commands.filter import filter_run
    from .commands.judge import judge
    from .commands.merge import merge
    from .commands.plan import plan
    from .commands.principles import principles
    from .commands.redteam_compare import redteam_compare
    from .commands.redteam_replay import redteam_replay
    from .commands.report import report
    from .commands.run import resume, run
    from .commands.stats import stats
    from .commands.trace import trace
except KeyboardInterrupt:
    sys.exit(130)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sparring")
def main() -> None:
    """Multi-agent self-play: persona dialogues, constitutional critique-and-revision
    preference pairs for TRL, and a trace of every agent turn."""


main.add_command(run)
main.add_command(plan)
main.add_command(merge)
main.add_command(resume)
main.add_command(doctor)
main.add_command(principles)
main.add_command(trace)
main.add_command(report)
main.add_command(stats)
main.add_command(judge)
main.add_command(redteam_replay)
main.add_command(redteam_compare)
main.add_command(filter_run)
main.add_command(export)
main.add_command(calibrate)

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def entry(args: list[str] | None = None) -> None:
    """Run ``main`` as the ``sparring`` executable does (see the module docstring)."""
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # SIGTERM stops like Ctrl-C
    try:
        code = main.main(args=args, prog_name="sparring", standalone_mode=False)
    except (KeyboardInterrupt, click.Abort):
        _forget_interrupt()
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:  # usage errors: one line, not click's usage block
        where = f"{exc.ctx.command_path}: " if isinstance(exc, click.UsageError) and exc.ctx else ""
        from sparring.terminal import visible

        click.echo(f"error: {where}{' '.join(visible(exc.format_message()).split())}", err=True)
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


def _forget_interrupt() -> None:
    """Python remembers a KeyboardInterrupt that passed through ``exec`` of a string (dataclasses,
    namedtuples and pydantic build classes so, while modules import) and, under ``python -m``, ends
    the process with SIGINT after it exited 130. The interrupt was handled: any ``exec`` of a string
    resets that flag (CPython's run_eval_code_obj)."""
    exec("pass")


if __name__ == "__main__":
    entry()
