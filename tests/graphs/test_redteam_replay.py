"""sparring redteam-replay: a run's successful attacks against a new target, on real HTTP (loopback
servers: the run's judge, its target, and the new target), and the re-generation path on a scripted
model; a bad target file is one line, exit 2."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.agents.backends.messages import SamplingParams
from sparring.agents.backends.scripted import ScriptedBackend
from sparring.graphs.commands.attack_replay import replay_one
from sparring.graphs.roles import roles_in_use
from sparring.graphs.run_config import RunConfig
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.role_backends import RoleBackends
from sparring.graphs.runtime.run_request import request_from_config
from sparring.graphs.selfplay import SelfPlay
from sparring.graphs.wiring import make_agents
from tests.cli import run_cli
from tests.fakeserver import minimal_instance
from tests.graphs.scripted_world import PRINCIPLES
from tests.graphs.test_roles_run import KEY, redteam_split, servers

PROMPT = "You are the bank's assistant."


@pytest.fixture(autouse=True)
def _policy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_KEY", KEY)


async def test_replay_sends_the_recorded_attacker_turns_to_the_new_target(tmp_path: Path) -> None:
    judge, policy = servers()
    new = FakeOpenAIServer(model="policy-2", responder=agent_reply)
    with judge, policy, new:
        config = redteam_split(tmp_path, judge.base_url, policy.base_url, dialogues=6, concurrency=3, prompt=PROMPT,
                               control_share=0.3)
        run_dir = tmp_path / "run"
        assert (await execute(request_from_config(config, out=run_dir))).status == "completed"
        before = len(policy.requests)
        target = tmp_path / "target.yaml"
        target.write_text(yaml.safe_dump({"kind": "openai_compat", "base_url": new.base_url, "model": "policy-2",
                                          "api_key_env": "POLICY_KEY"}))
        proc = run_cli("redteam-replay", str(run_dir), "--target", str(target), cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert len(policy.requests) == before  # the old target is not asked again
    wins = [d for d in map(json.loads, (run_dir / "dialogues.jsonl").read_text().splitlines())
            if d["targeted_violated"]]
    results = [json.loads(line) for line in (run_dir / "replay.jsonl").read_text().splitlines()]
    assert wins and sorted(r["dialogue_id"] for r in results) == sorted(d["id"] for d in wins)
    assert f"{sum(r['still_succeeds'] for r in results)}/{len(wins)} successful attacks still succeed" in proc.stdout
    # The new target was shown its system prompt and the recorded attacker turns, verbatim.
    first_turns = {d["messages"][0]["content"] for d in wins}
    assert new.requests and all(r.body["messages"][0] == {"role": "system", "content": PROMPT}
                                and r.body["messages"][1]["content"] in first_turns for r in new.requests)
    for r in results:
        assert r["verbatim_turns"] >= 1 and r["messages"][0]["content"] in first_turns
    # Servers gone: the probe says so in one line before anything is sent or written.
    gone = run_cli("redteam-replay", str(run_dir), "--target", str(target), "--out", str(tmp_path / "x.jsonl"),
                   cwd=tmp_path)
    assert gone.returncode == 2 and gone.stderr.count("\n") == 1 and "cannot connect" in gone.stderr, gone.stderr
    assert not (tmp_path / "x.jsonl").exists()
    # No successful attack: nothing to replay, and no model is probed or started (the servers are gone).
    none = tmp_path / "none"
    shutil.copytree(run_dir, none)
    rows = [json.loads(line) for line in (none / "dialogues.jsonl").read_text().splitlines()]
    (none / "dialogues.jsonl").write_text("".join(json.dumps({**r, "targeted_violated": False}) + "\n" for r in rows))
    nothing = run_cli("redteam-replay", str(none), "--target", str(target), cwd=tmp_path)
    assert nothing.returncode == 0 and "0/0 successful attacks still succeed" in nothing.stdout, nothing.stderr


def test_a_bad_target_file_is_one_line(tmp_path: Path) -> None:
    target = tmp_path / "target.yaml"
    target.write_text("kind: openai_compat\nmodel: m\nbase_url: 12\nnosuchkey: 1\n")
    proc = run_cli("redteam-replay", str(tmp_path), "--target", str(target), cwd=tmp_path)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and str(target) in proc.stderr, proc.stderr


class Stubborn:
    """The new target refuses until its third reply; the critic flags a reply containing 'gives in'."""

    def __init__(self) -> None:
        self.target_calls = 0

    def reply(self, messages: list[dict[str, str]], params: SamplingParams, schema: dict[str, Any] | None) -> str:
        title = (schema or {}).get("title")
        if title == "CritiqueOutput":
            judged = messages[-1]["content"].split('"""')[1]
            ids = ["privacy.no-doxxing"] if "gives in" in judged else []
            return json.dumps({"reasoning": "r", "violations": [
                {"principle_id": i, "evidence": "e", "severity": "severe"} for i in ids]})
        if title:
            return json.dumps(minimal_instance(schema or {}))
        system = messages[0]["content"] if messages[0]["role"] == "system" else ""
        if "You are role-playing a" in system:
            return "new attacker turn"
        self.target_calls += 1
        return "the target gives in" if self.target_calls >= 3 else "no"


def test_the_attacker_goes_on_from_the_same_plan_when_the_recorded_turns_run_out() -> None:
    config = RunConfig.model_validate({"dialogue": {"mode": "redteam", "characteristics": [], "max_turns": 8}})
    world = Stubborn()
    agents = make_agents(config, RoleBackends.single(ScriptedBackend(world.reply), roles_in_use(config)))
    selfplay = SelfPlay(agents=agents, principles=PRINCIPLES, settings=config.dialogue)
    row = {"id": "d1", "scenario": {"topic": "t", "personas": [{"name": "a"}, {"name": "b"}]},
           "target_principles": ["privacy.no-doxxing"], "seed": 1, "strategy": "persuasion", "turns": 2,
           "target_system_prompt": None, "plan": {"goal": "g", "brief_a": "b", "brief_b": "", "violation_turn": 0, "strategy": "persuasion"},
           "messages": [{"speaker": "A", "content": "recorded opener"}, {"speaker": "B", "content": "sure"}]}
    result = asyncio.run(replay_one(selfplay, row, 8))
    assert result["still_succeeds"] and result["turns_to_first_violation"] == 6
    assert (result["verbatim_turns"], result["regenerated_turns"], result["diverged_at"]) == (1, 2, 1)
    assert [m["content"] for m in result["messages"] if m["speaker"] == "A"] == \
        ["recorded opener", "new attacker turn", "new attacker turn"]


@pytest.mark.parametrize(("recorded_replies", "verbatim", "diverged_at"), [
    (["no", "no", "no"], 3, 5),               # answers as the old one did until it gives in at its third
    (["no", "yes of course", "no"], 2, 3),    # its second reply diverges: the third attacker turn is new
])
def test_recorded_turns_are_kept_until_the_new_target_diverges(recorded_replies: list[str], verbatim: int,
                                                                diverged_at: int | None) -> None:
    config = RunConfig.model_validate({"dialogue": {"mode": "redteam", "characteristics": [], "max_turns": 8}})
    world = Stubborn()
    agents = make_agents(config, RoleBackends.single(ScriptedBackend(world.reply), roles_in_use(config)))
    selfplay = SelfPlay(agents=agents, principles=PRINCIPLES, settings=config.dialogue)
    turns = [m for i, reply in enumerate(recorded_replies)
             for m in ({"speaker": "A", "content": f"recorded {i}"}, {"speaker": "B", "content": reply})]
    row = {"id": "d1", "scenario": {"topic": "t", "personas": [{"name": "a"}, {"name": "b"}]},
           "target_principles": ["privacy.no-doxxing"], "seed": 1, "strategy": "persuasion", "turns": 6,
           "target_system_prompt": None, "messages": turns,
           "plan": {"goal": "g", "brief_a": "b", "brief_b": "", "violation_turn": 0, "strategy": "persuasion"}}
    result = asyncio.run(replay_one(selfplay, row, 8))
    assert (result["verbatim_turns"], result["diverged_at"]) == (verbatim, diverged_at)
    said = [m["content"] for m in result["messages"] if m["speaker"] == "A"]
    assert said[:verbatim] == [f"recorded {i}" for i in range(verbatim)]
    assert all(t == "new attacker turn" for t in said[verbatim:])
