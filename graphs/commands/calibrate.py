"""``sparring calibrate [CONFIG]``: how far to trust the configured critic, measured on labelled turns.

Exit status: 0 every item judged; 3 some items failed for good (left out of the
figures, listed with their error in calibration.json); 2 bad input (nothing
judged, nothing written); 130 interrupted (nothing written).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import click

from ._common import say, set_option, user_errors

EXIT_FAILURES = 3
EXIT_INTERRUPTED = 130


@click.command()
@click.argument("config", required=False, type=click.Path(dir_okay=False, path_type=Path))
@set_option
@click.option("--compare", type=click.Path(dir_okay=False, path_type=Path),
              help="A second config whose critic judges the same items against the same principles "
                   "(CONFIG's); prints both critics' figures and their agreement.")
@click.option("--compare-set", "compare_overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a key for the second critic: of --compare's config, or of CONFIG (with its --set) "
                   "when --compare is not given, e.g. --compare-set backend.model=other. Repeatable.")
@click.option("--items", "items_files", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Your own labelled items file instead of the built-in ones (format: "
                   "principles/calibration/*.yaml). Repeatable.")
@click.option("--labelled", type=click.Choice(["all", "rubric", "transfer"]), default="all", show_default=True,
              help="Which shipped set: 'rubric' (written from the checking guidance's examples), 'transfer' "
                   "(written apart from it: other situations, longer contexts, subtle and two-principle cases) or "
                   "both, with the gap between them.")
@click.option("--principle", "only", multiple=True, metavar="ID",
              help="Only items of this principle (id or '*' pattern). Repeatable.")
@click.option("--per-label", type=click.IntRange(1, 1000),
              help="At most N items of each label (violates, near-miss) per principle: a quicker, rougher figure.")
@click.option("--out", type=click.Path(path_type=Path),
              help="Write calibration.json here (default: the config's run directory, runs/<name>); in a run "
                   "directory its report.html is rewritten to show it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress output.")
@user_errors
def calibrate(config: Path | None, overrides: tuple[str, ...], compare: Path | None,
              compare_overrides: tuple[str, ...], items_files: tuple[Path, ...], labelled: str, only: tuple[str, ...],
              per_label: int | None, out: Path | None, quiet: bool) -> None:
    """Run the critic of CONFIG (the embedded model when no CONFIG) on labelled turns shipped with
    sparring, for each principle of the config's set turns that break it and near misses that do not,
    and print its precision and recall per principle, per category and overall. Each turn is judged
    as a run judges it: against every principle of the set; the critic flags it when it names the
    turn's principle among the violations. Turns are judged concurrently, up to the backend's
    max_in_flight."""
    from sparring.graphs.commands.critic_calibration import calibrate_specs, critic_spec, probe_specs, select_items
    from sparring.graphs.run_config import load_config, load_config_with_lines
    from sparring.graphs.runtime.engine_log import EngineLog
    from sparring.graphs.runtime.runlock import RunDirLock
    from sparring.graphs.runtime.store import ENGINE_LOG
    from sparring.principles.labelled import BUILTIN_SETS, builtin_items, check_principle_ids, load_items_file
    from sparring.principles.loader import builtin_constitution

    cfg, lines = load_config_with_lines(config, overrides)
    source = str(config) if config is not None else None
    principles = list(cfg.principles.resolve(config.parent if config else None, source=source, lines=lines))
    if items_files:
        items = [item for path in items_files for item in load_items_file(path)]
        check_principle_ids(items, [*builtin_constitution().ids, *(p.id for p in principles)])
    else:
        chosen = BUILTIN_SETS if labelled == "all" else (labelled,)
        items = [item for which in chosen for item in builtin_items(which)]
    selected, skipped = select_items(items, principles, only=only, per_label=per_label)
    names = _names(config, compare, bool(compare_overrides))
    specs = [critic_spec(cfg, name=names[0], source=source)]
    if compare is not None or compare_overrides:
        second = load_config(compare or config, [*(() if compare else overrides), *compare_overrides])
        specs.append(critic_spec(second, name=names[1], source=str(compare or config) if compare or config else None))
    target = out if out is not None else cfg.run_dir()
    asyncio.run(probe_specs(specs))  # as a run probes: an unusable backend is refused before anything starts
    bar = _Progress(len(selected), [s.name for s in specs], enabled=not quiet)
    # One writer per directory: a run writing it refuses us now, not after the last turn is judged.
    with RunDirLock(target, create=True):
        try:
            # What the engine and its libraries print goes to TARGET/engine.log, as in a run.
            with EngineLog(target / ENGINE_LOG) as log:
                bar.stream = log.terminal
                with bar:
                    document = asyncio.run(calibrate_specs(
                        specs, selected, principles, on_done=bar.advance, skipped=skipped,
                        sources=[str(p) for p in items_files] or [f"built-in ({labelled})"]))
        except KeyboardInterrupt:
            say("interrupted: nothing written", err=True)
            sys.exit(EXIT_INTERRUPTED)
        path = _write(document, target)
    from ._calibration_table import print_calibration

    print_calibration(document)
    say(f"-> {path}")
    if any(c["figures"]["overall"]["errors"] for c in document["critics"]):
        sys.exit(EXIT_FAILURES)


def _names(config: Path | None, compare: Path | None, overridden: bool) -> list[str]:
    first = config.stem if config is not None else "defaults"
    second = compare.stem if compare is not None else first
    if second == first:
        return [f"{first} (1)", f"{second} (2)"] if compare is not None or overridden else [first, second]
    return [first, second]


def _write(document: dict[str, Any], target: Path) -> Path:
    from sparring.graphs.commands.critic_calibration import write_calibration
    from sparring.graphs.runtime.reporting import write_report_quietly
    from sparring.graphs.runtime.store import MANIFEST

    path = write_calibration(document, target)
    if (target / MANIFEST).is_file():  # a run directory: its report shows the calibration from now on
        write_report_quietly(target)
    return path


class _Progress:
    """A bar per critic on a terminal; a line every 10% otherwise; nothing when disabled."""

    def __init__(self, total: int, names: list[str], *, enabled: bool) -> None:
        from sparring.terminal import visible_data

        self.total, self.names, self.enabled = total, visible_data(names), enabled
        self.done = [0] * len(names)
        self.stream: Any = sys.stderr
        """Where the bar and lines go: the terminal kept by ``EngineLog`` while the engine's output is logged."""
        self._bar: Any = None
        self._tasks: list[Any] = []

    def _line(self, text: str) -> None:
        from sparring.terminal import visible

        click.echo(visible(text), file=self.stream)

    def __enter__(self) -> _Progress:
        if not self.enabled:
            return self
        if self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), console=Console(file=self.stream))
            from rich.markup import escape

            self._tasks = [self._bar.add_task(f"critic {escape(name)}", total=self.total) for name in self.names]
            self._bar.start()
        else:
            self._line(f"sparring: judging {self.total} labelled turns with {len(self.names)} critic(s)")
        return self

    def advance(self, index: int) -> None:
        self.done[index] += 1
        if self._bar is not None:
            self._bar.advance(self._tasks[index])
        elif self.enabled and self.done[index] * 10 // self.total != (self.done[index] - 1) * 10 // self.total:
            self._line(f"sparring: critic {self.names[index]}: {self.done[index]}/{self.total} judged")

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
