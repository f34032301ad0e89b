"""The runner on a scripted model: failures stay with their dialogue, records stream
to the store, concurrency is bounded, and a second pass skips what was written."""

from __future__ import annotations

import asyncio
import json

from sparring.agents.domain import Persona, Scenario
from sparring.errors import BackendError
from sparring.graphs.jobs import JobsConfig, assign_jobs
from sparring.graphs.runtime.runner import DialogueRunner
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SFT, RunStore, iter_jsonl
from tests.graphs.scripted_world import PRINCIPLES, World
from tests.graphs.test_selfplay import make_selfplay


def scenarios(n: int) -> list[Scenario]:
    return [Scenario(topic=f"topic {i}", personas=(Persona(name=f"A{i}"), Persona(name=f"B{i}"))) for i in range(n)]


def jobs(n: int, per: int = 1):
    return list(assign_jobs(scenarios(n), [p.id for p in PRINCIPLES], JobsConfig(dialogues_per_scenario=per),
                            mode="assistant", seed=3))


class FlakyWorld(World):
    """Fails every model call of the dialogues whose scenario topic is listed."""

    def __init__(self, failing_topics: set[str], **kw) -> None:
        super().__init__(**kw)
        self.failing = failing_topics
        self.in_flight = 0
        self.peak = 0

    async def areply(self, messages, params, schema):
        text = json.dumps(messages)
        if any(t in text for t in self.failing):
            raise BackendError("server exploded")
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.01)
        self.in_flight -= 1
        return self.reply(messages, params, schema)

    def backend(self):
        from sparring.agents.backends.scripted import ScriptedBackend

        return ScriptedBackend(self.areply)


async def test_failure_is_recorded_and_the_run_goes_on(tmp_path):
    world = FlakyWorld({"topic 2"}, violating_turns={1: ["privacy.no-doxxing"]})
    sp = make_selfplay(world, max_turns=2)
    store = RunStore(tmp_path)
    store.open()
    runner = DialogueRunner(selfplay=sp, graph=sp.build(), store=store, concurrency=3)
    counters = await runner.run(jobs(5))
    store.close()
    rows = list(iter_jsonl(tmp_path / DIALOGUES))
    assert len(rows) == 5
    failed = [r for r in rows if r["status"] == "failed"]
    assert len(failed) == 1 and "server exploded" in failed[0]["error"]
    assert failed[0]["stop_reason"] == "error"
    assert counters.done == 4 and counters.failed == 1
    pairs = list(iter_jsonl(tmp_path / PREFERENCES))
    assert len(pairs) == 4 and {p["dialogue_id"] for p in pairs} <= {r["id"] for r in rows}
    assert len(list(iter_jsonl(tmp_path / SFT))) == 4


async def test_concurrency_bounds_dialogues_in_flight(tmp_path):
    world = FlakyWorld(set())
    sp = make_selfplay(world, max_turns=2)
    store = RunStore(tmp_path)
    store.open()
    await DialogueRunner(selfplay=sp, graph=sp.build(), store=store, concurrency=4).run(jobs(12))
    store.close()
    # Each dialogue makes one call at a time during its turns; critique fans out to 1 call at max_turns=2.
    assert 2 <= world.peak <= 4


async def test_second_pass_skips_written_dialogues(tmp_path):
    world = FlakyWorld(set())
    sp = make_selfplay(world, max_turns=2)
    store = RunStore(tmp_path)
    store.open()
    all_jobs = jobs(4)
    await DialogueRunner(selfplay=sp, graph=sp.build(), store=store, concurrency=2).run(all_jobs[:2])
    finished = store.finished_ids()
    counters = await DialogueRunner(selfplay=sp, graph=sp.build(), store=store, concurrency=2).run(all_jobs, finished)
    store.close()
    ids = [r["id"] for r in iter_jsonl(tmp_path / DIALOGUES)]
    assert sorted(ids) == sorted(j.id for j in all_jobs)
    assert counters.skipped == 2


def test_repair_drops_torn_tail_orphans_and_failed_rows(tmp_path):
    (tmp_path / DIALOGUES).write_text(
        json.dumps({"id": "d1", "status": "ok"}) + "\n" + json.dumps({"id": "d2", "status": "failed"}) + "\n"
        + '{"id": "d3", "sta')
    (tmp_path / PREFERENCES).write_text(
        json.dumps({"id": "p1", "dialogue_id": "d1"}) + "\n" + json.dumps({"id": "p3", "dialogue_id": "d3"}) + "\n")
    dropped = RunStore(tmp_path).repair()
    assert [r["id"] for r in iter_jsonl(tmp_path / DIALOGUES)] == ["d1"]
    assert [r["id"] for r in iter_jsonl(tmp_path / PREFERENCES)] == ["p1"]
    assert dropped == {DIALOGUES: 2, PREFERENCES: 1}
