"""Replay on scripted runs: every dialogue of a run (finished, failed, retried) replays to the same
records without a model; a changed reply, prompt or missing call shows up as a difference."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.agents.backends.scripted import ScriptedBackend
from sparring.errors import InputError, TransientBackendError
from sparring.graphs.runtime.dialogue_replay import replay_dialogue
from sparring.graphs.runtime.store import DIALOGUES, TRACES_ZST, iter_jsonl
from sparring.traces.read import iter_spans
from sparring.traces.sinks import encode_line
from sparring.traces.spanfile import iter_span_lines, write_span_file
from tests.cli import run_cli
from tests.graphs.scripted_world import World
from tests.graphs.test_runner import FlakyWorld
from tests.traces.scripted_run import scripted_run


def flaky_once(world: World):
    """Fails the first call of side B with a transient error (retried), and every call about topic 2."""
    seen = {"flaked": False}

    def reply(messages, params, schema):
        if "topic 2" in json.dumps(messages):
            raise RuntimeError("model crashed")
        if not seen["flaked"] and schema is None and "SECRET-A" not in messages[0]["content"]:  # side B's turn
            seen["flaked"] = True
            raise TransientBackendError("HTTP 503")
        return world.reply(messages, params, schema)

    return ScriptedBackend(reply)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    import asyncio

    out = tmp_path_factory.mktemp("replay") / "run"
    world = World(violating_turns={1: ["privacy.no-doxxing"], 3: ["harm.no-weapons"]}, done_at=4)
    asyncio.run(scripted_run(out, flaky_once(world), n=3, dialogue={"max_turns": 6, "summaries": True},
                             backend={"kind": "embedded", "retry": {"initial_wait_s": 0.0}}))
    return out


def records(run_dir: Path) -> dict[str, dict]:
    return {r["id"]: r for r in iter_jsonl(run_dir / DIALOGUES)}


async def test_every_dialogue_replays_to_the_same_records(run_dir):
    rows = records(run_dir)
    assert {r["status"] for r in rows.values()} == {"ok", "failed"}
    for record in rows.values():
        outcome = await replay_dialogue(run_dir, record)
        assert outcome.reproduced, outcome.describe()
        assert outcome.record["messages"] == record["messages"]
        assert outcome.record["trace_id"] != record["trace_id"]  # a new trace of its own
    retried = [s for s in iter_spans(run_dir) if s["name"] == "chat" and s["status"] == "error"]
    assert any("HTTP 503" in s["error"] for s in retried)  # the retry was part of what replayed


def test_cli_replay_says_reproduced_and_exits_0(run_dir):
    did = next(r["id"] for r in records(run_dir).values() if r["status"] == "ok")
    result = run_cli("trace", str(run_dir), did, "--replay", cwd=run_dir)
    assert result.returncode == 0, result.stderr
    assert "reproduced: the records are the same as the run's" in result.stdout


def copy_run(run_dir: Path, dest: Path) -> Path:
    import shutil

    shutil.copytree(run_dir, dest)
    return dest


def edit_spans(run_dir: Path, edit) -> None:
    spans = list(iter_spans(run_dir))
    write_span_file(run_dir / TRACES_ZST, (encode_line(edit(s) or s) for s in spans))


async def test_a_changed_reply_shows_in_the_records(run_dir, tmp_path):
    work = copy_run(run_dir, tmp_path / "run")
    record = next(r for r in records(work).values() if r["revisions"])

    def clean_critic(span):
        a = span["attributes"]
        if span["trace_id"] == record["trace_id"] and span["name"] == "chat" and a.get("gen_ai.agent.name") == \
                "critic" and a.get("app.turn_index") == 1:
            a["gen_ai.output.messages"] = [{"role": "assistant", "content": '{"reasoning": "ok", "violations": []}'}]

    edit_spans(work, clean_critic)
    outcome = await replay_dialogue(work, record)
    assert not outcome.reproduced
    assert any(d.startswith("verdicts[0].violated") for d in outcome.differences)
    assert any(d.startswith("pairs") for d in outcome.differences)  # its pair is gone
    assert "reviser turn 1" in outcome.unused  # the reply recorded for the revision was never asked for


async def test_a_changed_prompt_is_reported_or_refused_when_strict(run_dir, tmp_path):
    work = copy_run(run_dir, tmp_path / "run")
    record = next(r for r in records(work).values() if r["status"] == "ok")

    def change_prompt(span):
        a = span["attributes"]
        if span["trace_id"] == record["trace_id"] and a.get("gen_ai.agent.name") == "persona_A" \
                and a.get("app.turn_index") == 0 and span["name"] == "chat":
            a["gen_ai.input.messages"][0]["content"] = "an older prompt template"

    edit_spans(work, change_prompt)
    outcome = await replay_dialogue(work, record)
    assert outcome.differences == [] and len(outcome.mismatches) == 1
    assert outcome.mismatches[0].startswith("persona_A turn 0: prompt differs")
    strict = await replay_dialogue(work, record, strict=True)
    assert strict.record["status"] == "failed" and "ReplayMismatch" in strict.record["error"]
    result = run_cli("trace", str(work), record["id"], "--replay", cwd=work)
    assert result.returncode == 1 and "prompts that differ from the recording" in result.stdout


async def test_a_call_the_run_never_made_fails_the_dialogue(run_dir, tmp_path):
    work = copy_run(run_dir, tmp_path / "run")
    record = next(r for r in records(work).values() if r["revisions"])
    path = work / TRACES_ZST
    kept = [line for line in iter_span_lines(path)
            if not (record["trace_id"].encode() in line and b'"gen_ai.agent.name":"verifier"' in line.replace(b" ", b""))]
    write_span_file(path, kept)
    outcome = await replay_dialogue(work, record)
    assert outcome.record["status"] == "failed"
    assert "ReplayExhausted: no recorded reply left for verifier turn 1" in outcome.record["error"]


async def test_without_recorded_content_replay_is_refused(tmp_path):
    out = tmp_path / "run"
    await scripted_run(out, FlakyWorld(set()).backend(), n=1, tracing={"record_content": False})
    [record] = records(out).values()
    with pytest.raises(InputError, match="record_content was false"):
        await replay_dialogue(out, record)
    result = run_cli("trace", str(out), record["id"], "--replay", cwd=out)
    assert result.returncode == 2 and "nothing to replay" in result.stderr


async def test_a_run_with_branches_replays_to_the_same_records(tmp_path):
    """Branch turns repeat the trunk's turn indices (the same agents, other prompts): replay still
    serves each call its own recorded reply."""
    world = World(violating_turns={1: ["privacy.no-doxxing"], 3: ["harm.no-weapons"]})
    out = tmp_path / "run"
    await scripted_run(out, world.backend(), n=2, dialogue={"max_turns": 4, "branch_turns": 2}, report={"stats": False})
    rows = records(out)
    assert all(r["branch"] for r in rows.values())
    for record in rows.values():
        outcome = await replay_dialogue(out, record)
        assert outcome.reproduced, outcome.describe()
