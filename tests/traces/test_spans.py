"""What a scripted run records in traces.jsonl: one trace per dialogue, every model call a ``chat``
span under the agent that made it, the attributes the trace viewer and replay rely on, and no
content when content recording is off."""

from __future__ import annotations

import json
from pathlib import Path

from sparring.graphs.runtime.manifest import session_id
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, TRACES_ZST, iter_jsonl
from sparring.traces.read import iter_spans
from sparring.traces.spanfile import iter_span_lines
from tests.graphs.scripted_world import World
from tests.traces.scripted_run import scripted_run

AGENT_SPANS = {"plan", "invoke_agent"}


def load(run_dir: Path):
    spans = list(iter_spans(run_dir))
    return spans, list(iter_jsonl(run_dir / DIALOGUES)), list(iter_jsonl(run_dir / PREFERENCES))


async def test_each_dialogue_is_one_trace_with_every_call_under_its_agent(tmp_path):
    world = World(violating_turns={1: ["privacy.no-doxxing"]})
    await scripted_run(tmp_path, world.backend(), n=2, dialogue={"max_turns": 4, "summaries": True})
    spans, dialogues, pairs = load(tmp_path)
    run_id = json.loads((tmp_path / "manifest.json").read_text())["run_id"]
    by_id = {s["span_id"]: s for s in spans}
    assert pairs and all(p["trace_id"] in {d["trace_id"] for d in dialogues} for p in pairs)
    for d in dialogues:
        trace = [s for s in spans if s["trace_id"] == d["trace_id"]]
        [root] = [s for s in trace if s["parent_id"] is None]
        a = root["attributes"]
        assert root["name"] == "invoke_workflow" and a["app.dialogue_id"] == d["id"]
        assert a["gen_ai.conversation.id"] == session_id(run_id, d["id"])
        assert (a["app.stop_reason"], a["app.is_violation"], a["app.turns"]) == (
            d["stop_reason"], d["is_violation"], d["turns"])
        assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (
            d["usage"]["prompt_tokens"], d["usage"]["completion_tokens"])
        chats = [s for s in trace if s["name"] == "chat"]
        assert len(chats) == d["usage"]["calls"]
        for chat in chats:
            agent = by_id[chat["parent_id"]]
            assert agent["name"] in AGENT_SPANS and agent["parent_id"] == root["span_id"]
            ca = chat["attributes"]
            assert ca["gen_ai.agent.name"] == agent["attributes"]["gen_ai.agent.name"]
            assert ca["gen_ai.conversation.id"] == a["gen_ai.conversation.id"]
            for key in ("gen_ai.provider.name", "gen_ai.request.model", "gen_ai.request.temperature",
                        "gen_ai.request.max_tokens", "gen_ai.request.seed", "gen_ai.usage.input_tokens",
                        "gen_ai.usage.output_tokens", "gen_ai.response.finish_reasons", "app.structured_mode",
                        "gen_ai.input.messages", "gen_ai.output.messages"):
                assert key in ca, key
            assert chat["start_time"] <= chat["end_time"] and chat["status"] == "ok"
        agents = {s["attributes"]["gen_ai.agent.name"] for s in trace if s["name"] in AGENT_SPANS}
        assert agents >= {"planner", "persona_A", "persona_B", "critic", "summarizer"}
        for s in trace:
            sa = s["attributes"]
            if sa.get("gen_ai.agent.name", "").startswith("persona_") and s["name"] == "invoke_agent":
                assert sa["app.side"] == sa["gen_ai.agent.name"][-1] and "app.turn_index" in sa
                assert ("app.principle_ids" in sa) == (sa["app.side"] == "B")  # the briefed side
            if sa.get("gen_ai.agent.name") in ("critic", "reviser", "verifier") and s["name"] == "invoke_agent":
                assert sa["app.principle_ids"] and "app.turn_index" in sa and sa["app.side"] == "B"


async def test_content_switch_leaves_structure_and_usage(tmp_path):
    await scripted_run(tmp_path, World().backend(), n=1, tracing={"record_content": False})
    spans, [dialogue], _ = load(tmp_path)
    text = b"".join(iter_span_lines(tmp_path / TRACES_ZST)).decode()
    assert "SECRET-A" not in text and "turn #0 by A" not in text
    chats = [s for s in spans if s["name"] == "chat"]
    assert chats and all("gen_ai.input.messages" not in s["attributes"] for s in chats)
    assert sum(s["attributes"]["gen_ai.usage.output_tokens"] for s in chats) == dialogue["usage"]["completion_tokens"]


async def test_a_failed_call_is_an_error_span_and_the_dialogue_keeps_its_trace_id(tmp_path):
    def broken(messages, params, schema):
        raise ValueError("bad weights")

    from sparring.agents.backends.scripted import ScriptedBackend

    await scripted_run(tmp_path, ScriptedBackend(broken), n=1)
    spans, [dialogue], _ = load(tmp_path)
    assert dialogue["status"] == "failed" and dialogue["trace_id"]
    errors = [s for s in spans if s["status"] == "error"]
    assert {s["name"] for s in errors} == {"invoke_workflow", "plan", "chat"}
    assert all("ValueError: bad weights" in s["error"] for s in errors)
    assert all(s["trace_id"] == dialogue["trace_id"] for s in spans)
    json.dumps(spans)  # plain JSON all the way down


async def test_conversation_ids_differ_between_two_runs_of_one_config(tmp_path):
    """Observability tools group spans into sessions by conversation id: two runs must not merge."""
    world = World()
    for name in ("first", "second"):
        await scripted_run(tmp_path / name, world.backend(), n=2, dialogue={"max_turns": 2})
    ids = [{s["attributes"]["gen_ai.conversation.id"] for s in iter_spans(tmp_path / name)
            if s["parent_id"] is None} for name in ("first", "second")]
    assert len(ids[0]) == len(ids[1]) == 2 and not ids[0] & ids[1]
