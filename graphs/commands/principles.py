"""``sparring principles list|show|sets``: browse the built-in constitution and your own principle files."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from sparring.terminal import dumps, visible

from ._common import user_errors

if TYPE_CHECKING:
    from sparring.principles.model import Constitution

set_choice = click.option(
    "--set", "sets", multiple=True, metavar="NAME_OR_PATH",
    help="A built-in set (see 'sparring principles sets'; 'all' = every one) or a path to your own "
         "YAML file. Repeatable. Default: all.")
json_flag = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")


@click.group()
def principles() -> None:
    """Browse principle sets (constitutions): the built-in ones and your own YAML files."""


@principles.command("list")
@set_choice
@click.option("--category", "categories", multiple=True, metavar="CATEGORY",
              help="Only principles of this category, e.g. privacy. Repeatable.")
@json_flag
@user_errors
def list_principles(sets: tuple[str, ...], categories: tuple[str, ...], as_json: bool) -> None:
    """One row per principle: id, category and text."""
    constitution = _selected(sets)
    if categories:
        constitution = constitution.in_categories(categories)
    if as_json:
        _print_json(constitution)
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(expand=True)
    table.add_column("id", no_wrap=True, style="bold")
    table.add_column("category", no_wrap=True)
    table.add_column("text", ratio=1)
    for principle in constitution:
        table.add_row(Text(visible(principle.id)), Text(visible(principle.category)), Text(visible(principle.text)))
    Console().print(table)


@principles.command("show")
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@set_choice
@json_flag
@user_errors
def show_principles(ids: tuple[str, ...], sets: tuple[str, ...], as_json: bool) -> None:
    """Full text, critique and revision guidance of principles by id ('privacy.*' patterns allowed)."""
    constitution = _selected(sets).select(ids)
    if as_json:
        _print_json(constitution)
        return
    from rich.console import Console
    from rich.padding import Padding
    from rich.text import Text

    console = Console()
    for n, principle in enumerate(constitution):
        if n:
            console.print()
        heading = Text(visible(principle.id), style="bold")
        heading.append(f"  {visible(principle.category)}", style="cyan")
        origin = constitution.origins.get(principle.id)
        if origin is not None:
            heading.append(f"  from {visible(str(origin))}", style="dim")
        console.print(heading)
        for label, body in (("Principle", principle.text), ("Critique guidance", principle.critique),
                            ("Revision guidance", principle.revision)):
            console.print(Text(label, style="underline"))
            console.print(Padding(Text(visible(body or "(none: judged against the principle text alone)")),
                                  (0, 0, 0, 2)))


@principles.command("sets")
@json_flag
@user_errors
def list_sets(as_json: bool) -> None:
    """The built-in sets: id, title, how many principles, what they cover."""
    from sparring.principles.loader import ALL_SETS, builtin_sets, get_builtin

    rows = [get_builtin(ALL_SETS), *builtin_sets()]
    if as_json:
        click.echo(dumps([{"id": s.id, "title": s.title, "description": s.description,
                           "principle_ids": [p.id for p in s.principles]} for s in rows]))
        return
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(expand=True)
    table.add_column("set", no_wrap=True, style="bold")
    table.add_column("principles", justify="right", no_wrap=True)
    table.add_column("title / description", ratio=1)
    for principle_set in rows:
        about = Text(principle_set.title, style="bold")
        about.append(f"\n{principle_set.description}", style="")
        table.add_row(principle_set.id, str(len(principle_set.principles)), about)
    Console().print(table)


def _selected(sets: tuple[str, ...]) -> Constitution:
    from sparring.principles.loader import ALL_SETS, resolve_principles

    # Relative paths given on the command line are read from the current directory.
    return resolve_principles(list(sets) or [ALL_SETS])


def _print_json(constitution: Constitution) -> None:
    rows: list[dict[str, Any]] = []
    for principle in constitution:
        row = principle.model_dump()
        origin = constitution.origins.get(principle.id)
        if origin is not None:
            row.update(set=origin.set_id, source=origin.source, line=origin.line)
        rows.append(row)
    click.echo(dumps(rows))
