"""The ``sparring`` command. Start-up imports click and the command modules only;
each command imports what it needs when it runs, so ``sparring --help`` stays fast."""

from __future__ import annotations

import click

from .commands.doctor import doctor
from .commands.export import export
from .commands.filter import filter_run
from .commands.judge import judge
from .commands.principles import principles
from .commands.report import report
from .commands.run import resume, run
from .commands.stats import stats
from .commands.trace import trace


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="sparring")
def main() -> None:
    """Multi-agent self-play: persona dialogues, constitutional critique-and-revision
    preference pairs for TRL, and a trace of every agent turn."""


main.add_command(run)
main.add_command(resume)
main.add_command(doctor)
main.add_command(principles)
main.add_command(trace)
main.add_command(report)
main.add_command(stats)
main.add_command(judge)
main.add_command(filter_run)
main.add_command(export)

if __name__ == "__main__":
    main()
