"""A critic, reviser or verifier call that fails for good is recorded against its turn and the dialogue
completes; only a failed turn of the conversation itself fails the dialogue. A structured reply cut at its
token budget is re-asked with room for the whole reply.

Graph logic on a scripted model; the run as users start it against the loopback server over real HTTP."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.loopback.canned import agent_reply
from sparring.agents.backends import _retry
from sparring.agents.backends.messages import SamplingParams
from sparring.errors import BackendError
from sparring.graphs.assemble import build_sft_record, data_outcome, extract_preference_pairs
from tests.cli import run_cli
from tests.fakeserver import FakeOpenAIServer
from tests.graphs.loopback_run import read_lines, write_config
from tests.graphs.scripted_world import World
from tests.graphs.test_selfplay import make_job, run

PID = "privacy.no-doxxing"


@dataclass
class FailingWorld(World):
    """The scripted world, one role of which never answers usably: ``critic`` (on turn ``at``), ``reviser``,
    ``verifier`` (replies that never match the schema) or ``persona`` (side B's turn ``at`` fails for good)."""

    failing: str = ""
    at: int = 1

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        asked = messages[1]["content"] if len(messages) > 1 else ""  # the request itself, not a re-ask
        judged = asked.split('"""')[1].strip() if '"""' in asked else ""
        if title == "CritiqueOutput" and (
                (self.failing == "critic" and f"#{self.at} " in judged and not judged.startswith("REVISED"))
                or (self.failing == "verifier" and judged.startswith("REVISED"))):
            return "I would rather not say."
        if title == "RevisionOutput" and self.failing == "reviser":
            return '{"revision": "cut off mid-sen'
        if schema is None and self.failing == "persona" and "SECRET-A" not in messages[0]["content"] \
                and len(messages) - 1 == self.at:
            raise BackendError("the server said no")
        return super().reply(messages, params, schema)


@pytest.mark.parametrize("failing", ["critic", "reviser", "verifier"])
async def test_a_failed_step_is_recorded_against_its_turn_and_the_dialogue_completes(failing: str) -> None:
    world = FailingWorld(violating_turns={1: [PID], 3: [PID]}, failing=failing, at=1)
    job = make_job()
    _, record = await run(world, job, max_turns=4)
    assert record.status == "ok" and record.turns == 4 and record.error is None
    outcome = data_outcome(record, keep_unverified=False)
    assert outcome["failed_steps"] == {failing: 1 if failing == "critic" else 2}
    pairs = extract_preference_pairs(record, job)
    sft = build_sft_record(record, job)
    if failing == "critic":
        # Turn 1 is unjudged: neither clean nor flagged. Turn 3's pair would show it in its prompt.
        unjudged = record.verdicts[0]
        assert unjudged.turn_index == 1 and unjudged.error.startswith("critic: StructuredOutputError")
        assert unjudged.violated == [] and not record.revisions[0].error
        assert pairs == [] and outcome["dropped_pairs"] == {"unjudged_prompt": 1}
        assert sft is None and outcome["sft"] == "dropped"  # nothing of the judged side before turn 1
    else:
        reason = {"reviser": "revision_failed", "verifier": "verify_failed"}[failing]
        assert [r.error.split(":")[0] for r in record.revisions] == [failing, failing]
        assert all(not r.verified for r in record.revisions)
        assert pairs == [] and outcome["dropped_pairs"] == {reason: 2}
        assert sft is None and outcome["sft"] == "dropped"
        if failing == "reviser":
            assert [r.revised for r in record.revisions] == ["", ""]
        else:  # kept, unverified, when asked for unverified pairs (turn 3's prompt holds turn 1 unfixed)
            assert [p.turn_index for p in extract_preference_pairs(record, job, keep_unverified=True)] == [1]


async def test_a_failed_turn_of_the_conversation_fails_the_dialogue() -> None:
    with pytest.raises(BackendError, match="the server said no"):
        await run(FailingWorld(failing="persona", at=1), make_job(), max_turns=4)


async def test_an_unjudged_turn_before_the_first_flag_starts_no_branch() -> None:
    world = FailingWorld(violating_turns={3: [PID]}, failing="critic", at=1)
    _, record = await run(world, make_job(), max_turns=4, branch_turns=2)
    assert record.verdicts[0].error and record.revisions[0].verified
    assert record.branch is None


# -- over real HTTP ----------------------------------------------------------------------------

def _run(tmp_path: Path, server: FakeOpenAIServer, **sampling: Any) -> tuple[Any, Path]:
    config = write_config(tmp_path, server.base_url, dialogues=4, concurrency=2, max_turns=4)
    data = yaml.safe_load(config.read_text())
    data["sampling"] = sampling
    config.write_text(yaml.safe_dump(data))
    out = tmp_path / "run"
    return run_cli("run", str(config), "--out", str(out), "-q", cwd=tmp_path, timeout=300), out


def test_a_reviser_that_never_answers_leaves_the_dialogues_whole_and_says_why(tmp_path: Path) -> None:
    def reply(body: dict[str, Any]) -> str:
        schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
        return "Sorry, I cannot rewrite that." if schema.get("title") == "RevisionOutput" else agent_reply(body)

    with FakeOpenAIServer(responder=reply) as server:
        result, out = _run(tmp_path, server)
    assert result.returncode == 0, result.stderr
    dialogues = read_lines(out / "dialogues.jsonl")
    assert len(dialogues) == 4 and {d["status"] for d in dialogues} == {"ok"}
    revisions = [r for d in dialogues for r in d["revisions"]]
    assert revisions and all(r["error"].startswith("reviser: StructuredOutputError") for r in revisions)
    assert read_lines(out / "preferences.jsonl") == []
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert counts["failed_steps"] == {"critic": 0, "reviser": len(revisions), "verifier": 0}
    assert counts["dropped_pairs"]["revision_failed"] == len(revisions)
    # Bad replies to one role changed nothing about how the run talks to the server.
    assert manifest["backend"]["structured_output_decision"]["mode"] == "json_schema"
    assert f"pairs dropped: {len(revisions)} the reviser failed" in result.stderr
    assert f"calls failed for good (their turns left out): {len(revisions)} reviser" in result.stderr


def test_a_critic_reply_cut_at_its_budget_is_asked_again_with_room(tmp_path: Path) -> None:
    with FakeOpenAIServer(responder=agent_reply, cut_at_max_tokens=True) as server:
        result, out = _run(tmp_path, server, critic={"max_tokens": 40}, verifier={"max_tokens": 40})
    assert result.returncode == 0, result.stderr
    dialogues = read_lines(out / "dialogues.jsonl")
    assert {d["status"] for d in dialogues} == {"ok"}
    assert all(v.get("error") is None for d in dialogues for v in d["verdicts"])
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    # Every revision gives a pair, but those whose prompt holds an earlier revision (nobody answered it).
    assert len(read_lines(out / "preferences.jsonl")) + counts["dropped_pairs"]["revised_prompt"] \
        == sum(len(d["revisions"]) for d in dialogues) > 0
    assert len(read_lines(out / "preferences.jsonl")) > 0
    spans = read_lines(out / "traces.jsonl.zst")
    agents = {s["span_id"]: s["attributes"].get("gen_ai.agent.name") for s in spans if s["name"] == "invoke_agent"}
    critic_chats = [s["attributes"] for s in spans if s["name"] == "chat" and agents.get(s["parent_id"]) == "critic"]
    cut = [a for a in critic_chats if a["gen_ai.response.finish_reasons"] == ["length"]]
    again = [a for a in critic_chats if a.get("app.reask_reason") == "length"]
    assert cut and len(again) == len(cut)
    for a in again:
        assert a["gen_ai.request.max_tokens"] == a["app.reply_max_chars"] > 40
        assert a["gen_ai.response.finish_reasons"] == ["stop"]
    assert _retry.MAX_RAISED_TOKENS >= max(a["gen_ai.request.max_tokens"] for a in again)
