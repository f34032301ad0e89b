"""A small real run through vLLM's OpenAI server with a fake API key that must appear nowhere in
the run directory. (Spans, token totals and replay of a real engine run are checked on the
end-to-end run in tests/graphs/test_run_engine.py, so the suite simulates once.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import RunRequest
from sparring.traces.read import iter_spans
from tests.engines import seeded
from tests.traces.scripted_run import principles, scenarios

# Two turns, short persona turns: the point is the trace, not the text. The structured stages keep
# their default budgets: a budget below what the schema needs truncates the JSON, and each re-ask
# then costs more tokens than the budget saved.
TINY: dict[str, Any] = {
    "seed": seeded(3), "concurrency": 2,
    "dialogue": {"max_turns": 2, "characteristics": [], "reask_cut_turns": False},  # mechanics: one call a turn
    "jobs": {"dialogues_per_scenario": 1, "principles_per_dialogue": 1},
    "sampling": {"persona": {"max_tokens": 40, "repetition_penalty": 1.15}},
}


def request(run_dir: Path, n: int, **extra: Any) -> RunRequest:
    cfg = RunConfig.model_validate({**TINY, "name": "real", "output_dir": str(run_dir), **extra})
    return RunRequest(config=cfg, config_path=None, run_dir=run_dir, principles=principles(),  # type: ignore[arg-type]
                      scenarios=scenarios(n))


FAKE_KEY = "sk-sparring-fake-7f3a9c1e5b2d4068a1c3e5f7"


@pytest.mark.server
async def test_an_api_key_never_reaches_the_run_directory(tmp_path, vllm_server, monkeypatch):
    monkeypatch.setenv("SPARRING_TEST_API_KEY", FAKE_KEY)
    run_dir = tmp_path / "run"
    backend = {"kind": "openai_compat", "model": vllm_server.model, "base_url": vllm_server.base_url,
               "api_key_env": "SPARRING_TEST_API_KEY", "max_in_flight": 8}
    result = await execute(request(run_dir, 1, backend=backend))
    assert result.status == "completed"
    assert list(iter_spans(run_dir)), "no spans were written"
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"manifest.json", "dialogues.jsonl", "traces.jsonl.zst", "report.html"}
    for path in files:
        data = path.read_bytes()
        assert FAKE_KEY.encode() not in data, f"the API key leaked into {path.name}"
        assert FAKE_KEY[-12:].encode() not in data, f"part of the API key leaked into {path.name}"
    assert "SPARRING_TEST_API_KEY" in (run_dir / "manifest.json").read_text()  # the variable's name is fine
