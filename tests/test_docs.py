"""The documentation stays true to the code: the configuration reference lists every config field with its
docstring and bounds, no page names a path or a Python name that is gone, the strict site build fails
when one does, and CI runs exactly the README's test command."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

import sparring
from scripts.docs_reference import (
    MARKER,
    config_blocks,
    config_reference,
    place_new_pages,
    stale_references,
)

REPO = Path(__file__).resolve().parents[1]
PAGES = sorted((REPO / "docs").rglob("*.md"))


def _every_field(model: type[BaseModel], seen: dict[type[BaseModel], set[str]]) -> None:
    """An independent walk of the config models: each model with the names of its fields."""
    if model in seen:
        return
    seen[model] = set(model.model_fields)
    for info in model.model_fields.values():
        stack = [info.annotation]
        while stack:
            ann = stack.pop()
            if isinstance(ann, type) and issubclass(ann, BaseModel):
                _every_field(ann, seen)
            stack.extend(typing.get_args(ann))


def _sections(page: str) -> dict[str, str]:
    parts = re.split(r"^### (\w+) \{#[\w-]+\}$", page, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2]))


def test_the_configuration_reference_lists_every_field_of_every_block():
    seen: dict[type[BaseModel], set[str]] = {}
    _every_field(sparring.RunConfig, seen)
    sections = _sections(config_reference())
    assert set(sections) == {m.__name__ for m in seen}
    for model, names in seen.items():
        rows = re.findall(r"^\| `(\w+)` \|", sections[model.__name__], flags=re.M)
        assert rows == list(model.model_fields), model.__name__
        assert names == set(rows)
    assert (REPO / "docs" / "configuration.md").read_text().count(MARKER) == 1


def test_every_row_carries_the_fields_docstring_default_and_bounds():
    page = config_reference()
    row = next(line for line in page.splitlines() if line.startswith("| `concurrency` |"))
    assert "`16`" in row and "≥ 1, ≤ 100000" in row and "Dialogues in flight at once" in row
    for line in page.splitlines():
        if line.startswith("| `"):
            assert line.rstrip(" |").rsplit("|", 1)[1].strip(), f"a field without its docstring: {line}"
    blocks = config_blocks(sparring.RunConfig)
    assert {"backend", "backends.NAME"} <= {p for paths in blocks.values() for p in paths}


@pytest.mark.parametrize("page", [REPO / "README.md", *PAGES], ids=lambda p: str(p.relative_to(REPO)))
def test_no_page_names_a_path_or_a_name_that_is_gone(page: Path):
    assert stale_references(page.read_text(encoding="utf-8")) == []


def test_stale_paths_and_names_are_found():
    text = ("`graphs/runtime/runlock.py` `graphs/no_such.py` `sparring.graphs.runtime.manifest.CHANGED_DEFAULTS` "
            "`sparring.graphs.runtime.manifest.NO_SUCH` `agents/backends/_slots.py` `agents/prompts/*.txt` "
            "`agents/prompts/*.nope` `sparring.run` `sparring.gone` `RUN_DIR/engine.log` `traces.jsonl` "
            "`sparring.errors.InputError` `principles/calibration/` `graphs.no_module.name` "
            "`sparring.RunResult.status` `sparring run CONFIG` `graphs/run_config.RunConfig.seed`\n"
            "```python\nimport sparring\nsparring.load_run(d); sparring.load_runs(d)\n```\n"
            "python -m sparring.graphs.cli and image: registry.example/sparring.v2\n"
            "from sparring.errors import InputError, NoSuchError\n"
            "`traces.jsonl.zst` `agents/prompts/NAME.txt` `agents/prompts/NAME.nope` `examples/X.yaml`\n")
    assert stale_references(text) == ["graphs/no_such.py", "sparring.graphs.runtime.manifest.NO_SUCH",
                                      "agents/prompts/*.nope", "sparring.gone", "graphs.no_module.name",
                                      "agents/prompts/NAME.nope", "sparring.load_runs", "sparring.errors.NoSuchError"]


def test_pages_without_a_nav_entry_join_the_section_of_their_prefix():
    nav = [{"Home": "index.md"}, {"Guides": [{"Red-teaming": "redteam.md"}, "calibration.md"]}]
    placed = place_new_pages(nav, ["index.md", "redteam.md", "calibration.md", "redteam-scoring.md",
                                   "calibration-judges.md", "safety-and-storage.md"])
    assert placed == [{"Home": "index.md"},
                      {"Guides": [{"Red-teaming": "redteam.md"}, "calibration.md", "calibration-judges.md",
                                  "redteam-scoring.md"]},
                      {"More": ["safety-and-storage.md"]}]


def _build(tmp_path: Path, page: str) -> subprocess.CompletedProcess[str]:
    """The real strict build of the real site with one extra page."""
    docs = tmp_path / "docs"
    shutil.copytree(REPO / "docs", docs)
    (docs / "extra.md").write_text(page)
    config = (REPO / "mkdocs.yml").read_text()
    config = config.replace("docs_dir: docs", f"docs_dir: {docs}").replace("site_dir: site", f"site_dir: {tmp_path / 'site'}")
    config = config.replace("- scripts/mkdocs_hooks.py", f"- {REPO / 'scripts' / 'mkdocs_hooks.py'}")
    config = config.replace("paths: [.]", f"paths: [{REPO}]")
    (tmp_path / "mkdocs.yml").write_text(config)
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(tmp_path / "mkdocs.yml")],
                          capture_output=True, text=True, cwd=tmp_path, timeout=600)


def test_the_strict_build_fails_on_a_moved_module_or_a_removed_api_name(tmp_path: Path):
    pytest.importorskip("mkdocs")
    moved = _build(tmp_path / "a", "# Extra\n\nThe lock lives in `graphs/no_such_module.py`.\n")
    assert moved.returncode != 0 and "graphs/no_such_module.py" in moved.stderr, moved.stderr[-2000:]
    removed = _build(tmp_path / "b", "# Extra\n\n::: sparring.no_such_function\n")
    assert removed.returncode != 0 and "no_such_function" in removed.stderr, removed.stderr[-2000:]
    fine = _build(tmp_path / "c", "# Extra\n\nThe lock lives in `graphs/runtime/runlock.py`.\n")
    assert fine.returncode == 0, fine.stderr[-2000:]
    assert (tmp_path / "c" / "site" / "extra.html").is_file()
    remote = re.compile(r"<(?:script|img|iframe)[^>]* src=\"(?:https?:)?//|<link[^>]* href=\"(?:https?:)?//[^\"]*\"[^>]*stylesheet"
                        r"|<link[^>]*stylesheet[^>]* href=\"(?:https?:)?//|@import url\(\"?(?:https?:)?//")
    pages = list((tmp_path / "c" / "site").rglob("*.html"))
    assert len(pages) > 15 and not [p for p in pages if remote.search(p.read_text())]


def test_ci_runs_exactly_the_readmes_test_command():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)\n```", readme.split("## Set-up commands", 1)[1], flags=re.S)
    ci = (REPO / ".ci" / "run").read_text().strip().splitlines()[-1]
    assert blocks[1] == ci
    assert ci.endswith("&& .venv/bin/mkdocs build --strict")


def _commands(group, prefix=()):
    import click

    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield " ".join((*prefix, name)), command


def test_the_commands_page_names_every_command_and_every_flag():
    import click

    from sparring.graphs.cli import main

    page = (REPO / "docs" / "commands.md").read_text()
    rows = {}
    for name, command in _commands(main):
        row = "\n".join(line for line in page.splitlines() if f"`sparring {name} " in line or f"`sparring {name}`" in line)
        assert row, f"sparring {name} is not on docs/commands.md"
        rows[name] = row
        for param in command.params:
            if isinstance(param, click.Option) and "--help" not in param.opts:
                flags = [*param.opts, *param.secondary_opts]
                assert any(re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", row) for f in flags), \
                    f"sparring {name} {flags[0]} is not in its row of docs/commands.md"
    assert len(rows) >= 13


def test_the_api_reference_documents_every_public_name():
    import sparring.errors

    api = set(re.findall(r"^::: sparring\.(\w+)$", (REPO / "docs" / "reference" / "api.md").read_text(), flags=re.M))
    assert api == set(sparring.__all__)
    errors = (REPO / "docs" / "reference" / "errors.md").read_text()
    assert "::: sparring.errors\n" in errors and "members: true" in errors and len(sparring.errors.__all__) >= 10


def test_pages_follow_the_code_where_they_list_what_it_has():
    from sparring.graphs.dialogue_config import ATTACK_STRATEGIES
    from sparring.graphs.roles import RolesConfig
    from sparring.principles.loader import builtin_constitution

    redteam = (REPO / "docs" / "redteam.md").read_text()
    for role in RolesConfig.model_fields:
        assert re.search(rf"^\| `{role}`", redteam, flags=re.M) or f"`{role}`" in redteam, role
    for strategy in ATTACK_STRATEGIES:
        assert f"`{strategy.name}`" in redteam
    principles = builtin_constitution().principles
    categories = {p.category for p in principles}
    assert f"({len(principles)} principles in {len(categories)} categories)" in (REPO / "docs" / "commands.md").read_text()
    readme = (REPO / "README.md").read_text()
    for example in sorted((REPO / "examples").glob("*.yaml")):
        assert f"`examples/{example.name}`" in readme, f"README's examples table lacks {example.name}"
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (REPO / target).is_file(), target


def test_the_readme_stays_a_front_page():
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 250, "the README holds set-up, the tour and links: put the rest in a page under docs/"
