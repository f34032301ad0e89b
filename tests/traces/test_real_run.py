"""Traces of small real runs: on the embedded engine (every model call a ``chat`` span under the
agent that made it, span tokens adding up to the manifest's totals, replay reproducing the
records) and through vLLM's OpenAI server with a fake API key that must appear nowhere."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agents.backends import Backend
from graphs.config import RunConfig
from graphs.pipeline import RunRequest, execute
from graphs.replay import replay_dialogue
from graphs.store import DIALOGUES, REPORT, TRACES, iter_jsonl
from tests.traces.scripted_run import principles, scenarios

# Two turns, short persona turns: the point is the trace, not the text. The structured stages keep
# their default budgets: a budget below what the schema needs truncates the JSON, and each re-ask
# then costs more tokens than the budget saved.
TINY: dict[str, Any] = {
    "seed": 3, "concurrency": 2,
    "dialogue": {"max_turns": 2, "characteristics": []},
    "jobs": {"dialogues_per_scenario": 1, "principles_per_dialogue": 1},
    "sampling": {"persona": {"max_tokens": 40, "repetition_penalty": 1.15}},
}


def request(run_dir: Path, n: int, **extra: Any) -> RunRequest:
    cfg = RunConfig.model_validate({**TINY, "name": "real", "output_dir": str(run_dir), **extra})
    return RunRequest(config=cfg, config_path=None, run_dir=run_dir, principles=principles(),  # type: ignore[arg-type]
                      scenarios=scenarios(n))


@pytest.mark.engine
async def test_every_call_is_a_chat_span_and_tokens_add_up(tmp_path, embedded_backend: Backend):
    run_dir = tmp_path / "run"
    result = await execute(request(run_dir, 2), backend=embedded_backend)
    spans = list(iter_jsonl(run_dir / TRACES))
    dialogues = list(iter_jsonl(run_dir / DIALOGUES))
    assert len(dialogues) == 2 and (run_dir / REPORT).exists()
    by_id = {s["span_id"]: s for s in spans}
    chats = [s for s in spans if s["name"] == "chat"]
    assert chats
    for chat in chats:
        agent = by_id[chat["parent_id"]]
        assert agent["name"] in ("plan", "invoke_agent")
        assert agent["attributes"]["gen_ai.agent.name"] == chat["attributes"]["gen_ai.agent.name"]
        assert by_id[agent["parent_id"]]["name"] == "invoke_workflow"
        assert chat["trace_id"] == agent["trace_id"]
        assert chat["attributes"]["gen_ai.provider.name"] == "vllm"
    ok = [c for c in chats if c["status"] == "ok"]
    usage = result.manifest["usage"]
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in ok) == usage["prompt_tokens"]
    assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in ok) == usage["completion_tokens"]
    assert len(ok) == usage["calls"]
    assert usage["completion_tokens"] > 0
    for d in dialogues:  # each dialogue's own usage is its trace's
        mine = [c for c in ok if c["trace_id"] == d["trace_id"]]
        assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in mine) == d["usage"]["completion_tokens"]
    # Replay: the same graph on the recorded replies, no model, gives the same records.
    for d in dialogues:
        outcome = await replay_dialogue(run_dir, d)
        assert outcome.reproduced, outcome.describe()


FAKE_KEY = "sk-sparring-fake-7f3a9c1e5b2d4068a1c3e5f7"


@pytest.mark.server
async def test_an_api_key_never_reaches_the_run_directory(tmp_path, vllm_server, monkeypatch):
    monkeypatch.setenv("SPARRING_TEST_API_KEY", FAKE_KEY)
    run_dir = tmp_path / "run"
    backend = {"kind": "openai_compat", "model": vllm_server.model, "base_url": vllm_server.base_url,
               "api_key_env": "SPARRING_TEST_API_KEY", "max_in_flight": 8}
    result = await execute(request(run_dir, 1, backend=backend))
    assert result.status == "completed"
    assert list(iter_jsonl(run_dir / TRACES)), "no spans were written"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "dialogues.jsonl", "traces.jsonl", "report.html"}
    for path in files:
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, f"the API key leaked into {path.name}"
        assert FAKE_KEY[-12:].encode() not in data, f"part of the API key leaked into {path.name}"
    assert "SPARRING_TEST_API_KEY" in (run_dir / "manifest.json").read_text()  # the variable's name is fine
