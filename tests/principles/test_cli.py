"""``sparring principles list|show|sets``: output, and exit status 2 with one line for bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from sparring.graphs.cli import main
from sparring.principles.loader import builtin_constitution, get_builtin

from .conftest import VALID_SET

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str):
    return CliRunner().invoke(main, ["principles", *args], env={"COLUMNS": "200"})


def assert_user_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_list_shows_every_builtin_principle() -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    for principle in builtin_constitution():
        assert principle.id in result.stdout


def test_list_of_one_set_shows_only_its_principles() -> None:
    result = run("list", "--set", "quickstart")
    assert result.exit_code == 0
    shown = {p.id for p in builtin_constitution() if p.id in result.stdout}
    assert shown == {p.id for p in get_builtin("quickstart").principles}


def test_list_json_filtered_by_category() -> None:
    result = run("list", "--category", "privacy", "--category", "honesty", "--json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    expected = [p.id for p in builtin_constitution() if p.category in ("privacy", "honesty")]
    assert [row["id"] for row in rows] == expected
    assert rows[0]["source"].endswith(".yaml") and rows[0]["set"] in ("privacy", "honesty")
    assert {"text", "critique", "revision", "line"} <= rows[0].keys()


def test_list_a_user_file_by_path(write_yaml) -> None:
    path = write_yaml("acme.yaml", VALID_SET)
    result = run("list", "--set", str(path), "--json")
    assert [row["id"] for row in json.loads(result.stdout)] == [
        "acme.no-competitor-names", "acme.plain-words", "privacy.no-doxxing"]


def test_show_prints_text_critique_and_revision() -> None:
    principle = builtin_constitution()["privacy.data-minimization"]
    result = run("show", principle.id)
    assert result.exit_code == 0
    flat = " ".join(result.stdout.split())
    for part in (principle.text, principle.critique, principle.revision):
        assert " ".join(part.split()) in flat
    assert "built-in set 'privacy'" in flat


def test_show_with_a_pattern_and_a_user_file(write_yaml) -> None:
    path = write_yaml("acme.yaml", VALID_SET)
    result = run("show", "acme.*", "--set", str(path), "--json")
    assert [row["id"] for row in json.loads(result.stdout)] == ["acme.no-competitor-names", "acme.plain-words"]
    assert "(none: judged against the principle text alone)" in run("show", "acme.plain-words",
                                                                    "--set", str(path)).stdout


def test_sets_lists_every_builtin_set_with_its_size() -> None:
    rows = json.loads(run("sets", "--json").stdout)
    assert rows[0]["id"] == "all"
    assert len(rows[0]["principle_ids"]) == len(builtin_constitution())
    assert {"quickstart", "privacy", "honesty"} <= {row["id"] for row in rows}


def test_unknown_id_exits_2_with_a_suggestion() -> None:
    assert_user_error(run("show", "privacy.no-doxing"),
                      "unknown principle id 'privacy.no-doxing' (did you mean 'privacy.no-doxxing'?)")


def test_unknown_set_and_category_exit_2() -> None:
    assert_user_error(run("list", "--set", "privcy"), "unknown built-in principle set 'privcy'", "quickstart")
    assert_user_error(run("list", "--category", "privcy"), "no principle has category 'privcy'")


def test_broken_user_file_exits_2_naming_file_and_line(write_yaml) -> None:
    path = write_yaml("bad.yaml", "id: bad\ntitle: Bad\nprinciples:\n  - id: bad.a\n    category: x\n")
    assert_user_error(run("list", "--set", str(path)), str(path), "principles[0].text (line 4)",
                      "required key is missing")


@pytest.mark.parametrize("args", [["show", "nope.nope"], ["list", "--set", "missing.yaml"]])
def test_real_process_prints_one_line_and_no_traceback(args: list[str], tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "sparring.graphs.cli", "principles", *args], cwd=tmp_path,
                          capture_output=True, text=True, env={"PYTHONPATH": str(ROOT), "PATH": ""})
    assert proc.returncode == 2
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("error: ")
