"""End to end on the real embedded engine: a small run through ``execute``, its records
validated against the models, and its preference rows loaded with ``datasets`` and
recognised by TRL's data utilities as conversational preference data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.graphs.assemble import is_preference
from sparring.graphs.records import DialogueRecord, PreferenceRecord, SFTRecord
from sparring.graphs.runtime.dialogue_replay import replay_dialogue
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import request_from_config
from sparring.graphs.runtime.store import (
    DIALOGUES,
    MANIFEST,
    PREFERENCES,
    REPORT,
    SCENARIOS,
    SFT,
    TRACES_ZST,
    iter_jsonl,
)
from sparring.traces.read import iter_spans
from tests.engines import seeded
from tests.graphs.data.test_trl import check_trl_preference_rows

pytestmark = pytest.mark.engine

# Whatever the tiny model writes, these tests check mechanics only: files, structure, spans, counts that add
# up. How many pairs it gives depends on its text (rows with a particular content come from the loopback
# server in tests/graphs/data/test_trl.py).
CONFIG = """
name: e2e
seed: SEED
concurrency: 4
principles: {sets: [quickstart]}
# keep: the tiny model rarely writes a revision the verifier passes; the pairs' format is what is checked here.
dialogue: {mode: assistant, max_turns: 4, unverified_pairs: keep}
# four dialogues: the tiny reviser often answers {"revision": ""} (no pair), so two were sometimes none.
jobs: {dialogues_per_scenario: 4, principles_per_dialogue: 1}
sampling:
  planner: {temperature: 0.7, max_tokens: 500}
  persona: {temperature: 0.8, max_tokens: 60, repetition_penalty: 1.15}
  critic: {temperature: 0.0, max_tokens: 300}
  reviser: {temperature: 0.4, max_tokens: 150, repetition_penalty: 1.15}
  verifier: {temperature: 0.0, max_tokens: 300}
scenarios:
  - topic: travel
    subtopic: a cancelled train
    personas: ["Ines: a commuter whose train was cancelled", "a rail customer-service agent: knows refunds"]
    goal: get a refund for the cancelled ticket
"""


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e") / "run"


async def test_small_run_on_the_embedded_engine(embedded_backend, run_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "e2e.yaml"
    config.write_text(CONFIG.replace("SEED", str(seeded(11))))
    request = request_from_config(config, out=run_dir)
    result = await execute(request, backend=embedded_backend)
    assert result.status == "completed"
    for name in (DIALOGUES, PREFERENCES, SFT, SCENARIOS, TRACES_ZST, MANIFEST):
        assert (run_dir / name).exists(), name

    dialogues = [DialogueRecord.model_validate(r) for r in rows(run_dir / DIALOGUES)]
    assert len(dialogues) == 4
    assert all(d.status == "ok" for d in dialogues), [d.error for d in dialogues]  # only a persona turn can fail one
    for d in dialogues:
        assert 2 <= d.turns <= 4 and d.turns == len(d.messages)
        # The two agents alternate, A first, and every turn has text.
        assert [m.speaker for m in d.messages] == ["A", "B", "A", "B"][:d.turns]
        assert all(m.content.strip() for m in d.messages)
        # Every turn of the briefed side was judged.
        assert [v.turn_index for v in d.verdicts] == [i for i, m in enumerate(d.messages) if m.speaker == "B"]
        assert d.trace_id and d.plan["goal"] and d.usage.calls >= 1 + d.turns + len(d.verdicts)

    pairs = [PreferenceRecord.model_validate(r) for r in rows(run_dir / PREFERENCES)]
    sft = [SFTRecord.model_validate(r) for r in rows(run_dir / SFT)]
    manifest = json.loads((run_dir / MANIFEST).read_text())
    counts = manifest["counts"]
    # One SFT row per dialogue unless nothing of the assistant was left before an unfixed flagged turn.
    assert len(sft) + counts["sft_rows"]["dropped"] == 4
    # One pair per revision that changed the turn (an empty or unchanged one teaches nothing), unless the
    # data rules left it out (its prompt held an unfixed flagged turn): the manifest counts those.
    revised = sum(is_preference(r.original, r.revised) or r.error is not None for d in dialogues for r in d.revisions)
    assert len(pairs) + sum(counts["dropped_pairs"].values()) == revised
    assert counts["dialogues"] == 4 and counts["pairs"] == len(pairs)
    assert manifest["status"] == "completed"


async def test_preference_rows_are_trl_conversational_preference_data(run_dir: Path) -> None:
    """Uses the run of the test above (same module): whatever pairs it wrote (none, if the tiny critic
    flagged nothing or no revision passed) load with ``datasets`` and render with TRL."""
    check_trl_preference_rows(run_dir / PREFERENCES)


async def test_every_call_is_a_chat_span_and_tokens_add_up(run_dir: Path) -> None:
    """Uses the run of the first test: every model call a ``chat`` span under the agent that made
    it, span tokens adding up to the manifest's totals, and replay reproducing the records."""
    spans = list(iter_spans(run_dir))
    dialogues = list(iter_jsonl(run_dir / DIALOGUES))
    usage = json.loads((run_dir / MANIFEST).read_text())["usage"]
    assert dialogues and (run_dir / REPORT).exists()
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
    assert sum(c["attributes"]["gen_ai.usage.input_tokens"] for c in ok) == usage["prompt_tokens"]
    assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in ok) == usage["completion_tokens"]
    assert len(ok) == usage["calls"] and usage["completion_tokens"] > 0
    for d in dialogues:  # each dialogue's own usage is its trace's
        mine = [c for c in ok if c["trace_id"] == d["trace_id"]]
        assert sum(c["attributes"]["gen_ai.usage.output_tokens"] for c in mine) == d["usage"]["completion_tokens"]
    # A persona turn cut at its budget was asked once more (dialogue.reask_cut_turns, on by default): the same
    # seed, twice the budget, and the stored turn is what that second call said.
    reasked = [s for s in spans if s["attributes"].get("app.reasked_cut_turn")]
    for agent in reasked:
        first, again = [c for c in chats if c["parent_id"] == agent["span_id"]][-2:]
        assert first["attributes"]["gen_ai.response.finish_reasons"] == ["length"]
        assert again["attributes"]["gen_ai.request.max_tokens"] == 2 * first["attributes"]["gen_ai.request.max_tokens"]
        assert again["attributes"]["gen_ai.request.seed"] == first["attributes"]["gen_ai.request.seed"]
    # Replay: the same graph on the recorded replies, no model, gives the same records.
    for d in dialogues:
        outcome = await replay_dialogue(run_dir, d)
        assert outcome.reproduced, outcome.describe()
