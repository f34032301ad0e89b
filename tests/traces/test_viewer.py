"""The trace viewer on a fixture run (tests/traces/fixtures/run, made by make_fixture.py):
its text matches golden files byte for byte, --failed and --json, and bad input exits 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from sparring.traces import viewer
from sparring.traces.read import iter_spans
from tests.cli import run_cli

FIXTURES = Path(__file__).parent / "fixtures"
RUN = FIXTURES / "run"
OK_ID, FAILED_ID = "11c4e9b6496c9765", "e2ceb7321c7467a9"


def check_golden(name: str, text: str) -> None:
    path = FIXTURES / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"differs from {path} (UPDATE_GOLDEN=1 rewrites it)"


@pytest.mark.parametrize("args, golden", [
    ((), "trace_list.txt"),
    ((OK_ID,), "trace_dialogue.txt"),
    ((FAILED_ID[:6], "--full"), "trace_failed.txt"),
])
def test_cli_output_matches_golden_text(args, golden):
    result = run_cli("trace", str(RUN), *args, cwd=FIXTURES)
    assert result.returncode == 0, result.stderr
    assert "\x1b[" not in result.stdout  # not a terminal: no colors
    check_golden(golden, result.stdout)


def test_tree_shows_every_step_with_its_content_and_the_retry():
    text = (FIXTURES / "trace_dialogue.txt").read_text()
    for step in ("planner", "persona_A turn 0 (A)", "persona_B turn 1 (B) briefed to break harm.no-weapons",
                 "critic turn 1 (B) violated: privacy.no-doxxing (moderate)", "reviser turn 1 (B) fixing",
                 "verifier turn 1 (B) clean"):
        assert step in text
    assert "ERROR TransientBackendError: HTTP 503" in text and "retry 1" in text
    assert "shown [system]" in text and "said: turn #1 by B" in text
    # Every chat span sits under its agent: the tree has exactly as many chat lines as chat spans.
    record = json.loads((RUN / "dialogues.jsonl").read_text().splitlines()[0])
    chats = [s for s in iter_spans(RUN / "traces.jsonl", {record["trace_id"]}) if s["name"] == "chat"]
    assert text.count("chat scripted") == len(chats) == 7


def test_failed_lists_only_failed_dialogues_with_their_error():
    result = run_cli("trace", str(RUN), "--failed", cwd=FIXTURES)
    assert result.returncode == 0
    assert FAILED_ID in result.stdout and OK_ID not in result.stdout
    assert "error: BackendError: model server went away" in result.stdout


def test_json_is_a_nested_span_tree():
    result = run_cli("trace", str(RUN), OK_ID, "--json", cwd=FIXTURES)
    data = json.loads(result.stdout)
    [root] = data["spans"]
    assert root["name"] == "invoke_workflow" and data["dialogue"]["id"] == OK_ID
    agents = [c["attributes"]["gen_ai.agent.name"] for c in root["children"]]
    assert agents == ["planner", "persona_A", "persona_B", "critic", "reviser", "verifier"]
    assert all(g["name"] == "chat" for c in root["children"] for g in c["children"])
    listing = json.loads(run_cli("trace", str(RUN), "--json", cwd=FIXTURES).stdout)
    assert [r["id"] for r in listing] == [OK_ID, FAILED_ID]


def test_colors_mark_errors_when_asked():
    record = json.loads((RUN / "dialogues.jsonl").read_text().splitlines()[1])
    spans = list(iter_spans(RUN / "traces.jsonl", {record["trace_id"]}))
    text = viewer.render_dialogue(record, spans, color=True)
    assert "\x1b[1;31mERROR BackendError: model server went away\x1b[0m" in text


@pytest.mark.parametrize("args, expected", [
    (("nope",), "no dialogue or trace 'nope'"),
    (("",), "is the start of 2 dialogue ids"),
    (("--replay",), "--replay needs a DIALOGUE_ID"),
])
def test_bad_input_is_one_line_and_exit_2(args, expected):
    result = run_cli("trace", str(RUN), *args, cwd=FIXTURES)
    assert result.returncode == 2
    assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_not_a_run_directory(tmp_path: Path):
    result = run_cli("trace", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2 and "not a sparring run directory" in result.stderr


def test_a_trace_that_is_not_a_dialogue_is_shown_by_its_id(tmp_path: Path):
    import shutil

    run = shutil.copytree(RUN, tmp_path / "run")
    span = {"trace_id": "ab" * 16, "span_id": "cd" * 8, "parent_id": None, "name": "invoke_workflow",
            "start_time": 1.0, "end_time": 3.5, "status": "ok", "error": None,
            "attributes": {"app.workflow": "scenario_expansion", "app.topics": 2}}
    with (run / "traces.jsonl").open("a") as fh:
        fh.write(json.dumps(span) + "\n")
    result = run_cli("trace", str(run), "ab" * 16, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "workflow scenario_expansion  2.50s\n"
