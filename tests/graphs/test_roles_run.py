"""Runs with roles on two backends, each a loopback server with its own request log: which roles
reached which server, the session header of every request, the models the records name, the
backends the manifest and the spans name; kill and resume with workers (every record once)."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.graphs.runtime.dialogue_replay import replay_dialogue
from sparring.graphs.runtime.manifest import session_id
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import iter_jobs, request_from_config
from sparring.traces.otlp import conventions
from sparring.traces.spanfile import iter_span_lines
from sparring.traces.spans import Span
from tests.cli import run_cli
from tests.graphs.loopback_run import (
    check_complete,
    expected_ids,
    read_lines,
    start_cli,
    wait_for_requests,
    write_config,
)

KEY = "sk-policy-Zm9vYmFyYmF6cXV4aXR5"
ASSISTANT_PROMPT = "You are a helpful AI assistant."  # agents.persona.DEFAULT_ASSISTANT_ROLE


def split(config: Path, target_url: str, **target: Any) -> Path:
    """The loopback_run config with side B moved to a second backend named ``target``."""
    data = yaml.safe_load(config.read_text())
    base = data.pop("backend")
    data["backends"] = {"default": base, "target": {**base, "base_url": target_url, "model": "policy-model",
                                                    "api_key_env": "POLICY_KEY", **target}}
    data["roles"] = {"side_b": "target"}
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    return config


def redteam_split(folder: Path, judge_url: str, target_url: str, *, dialogues: int, concurrency: int = 4,
                  prompt: str = "You are the bank's assistant.", **jobs: Any) -> Path:
    """A redteam config on the loopback servers: the judging roles on ``judge_url``, the target on ``target_url``."""
    config = split(write_config(folder, judge_url, dialogues=dialogues, concurrency=concurrency), target_url)
    data = yaml.safe_load(config.read_text())
    data["dialogue"] = {"mode": "redteam", "max_turns": 4, "stop_on_violation": True, "target_system_prompt": prompt}
    data["jobs"].update(jobs)
    config.write_text(yaml.safe_dump(data))
    return config


def servers(delay_s: float = 0.0) -> tuple[FakeOpenAIServer, FakeOpenAIServer]:
    judge = FakeOpenAIServer(responder=agent_reply, reply_delay_s=delay_s)
    policy = FakeOpenAIServer(model="policy-model", responder=agent_reply, reply_delay_s=delay_s)
    return judge, policy


def is_side_b_turn(body: dict[str, Any]) -> bool:
    return not body.get("response_format") and body["messages"][0]["content"].startswith(ASSISTANT_PROMPT)


@pytest.fixture(autouse=True)
def _policy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_KEY", KEY)


@pytest.mark.parametrize("transport", ["direct", "sdk"])
async def test_each_role_reaches_its_own_backend_with_the_dialogues_session(tmp_path: Path, transport: str) -> None:
    judge, policy = servers()
    with judge, policy:
        config = write_config(tmp_path, judge.base_url, dialogues=6, concurrency=3, max_turns=4)
        data = yaml.safe_load(config.read_text())
        data["backend"]["transport"] = transport
        config.write_text(yaml.safe_dump(data))
        split(config, policy.base_url)
        first = await execute(request_from_config(config, out=tmp_path / "run"))
        second = await execute(request_from_config(config, out=tmp_path / "again"))
    assert first.status == second.status == "completed"
    dialogues = read_lines(tmp_path / "run" / "dialogues.jsonl")
    # Which roles reached which server: side B's turns the policy server, everything else the judge.
    assert policy.requests and all(is_side_b_turn(r.body) for r in policy.requests)
    assert not any(is_side_b_turn(r.body) for r in judge.requests)
    assert {r.body["model"] for r in policy.requests} == {"policy-model"}
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in policy.requests)
    assert all(r.headers["authorization"] == "Bearer not-needed" for r in judge.requests)
    b_turns = sum(1 for d in dialogues for m in d["messages"] if m["speaker"] == "B")
    assert len(policy.requests) == b_turns * 2  # both runs
    # One session per dialogue, on every request of it, whichever server; none shared across runs.
    runs = {name: json.loads((tmp_path / name / "manifest.json").read_text())["run_id"] for name in ("run", "again")}
    sessions = Counter(r.headers["x-session-id"] for r in judge.requests + policy.requests)
    for name, run_id in runs.items():
        for d in read_lines(tmp_path / name / "dialogues.jsonl"):
            assert sessions.pop(session_id(run_id, d["id"])) == d["usage"]["calls"]
    assert sessions == Counter()
    # Provenance: records, pairs, manifest, spans, `sparring trace`.
    models = {role: "fake-model" for role in ("planner", "side_a", "critic", "reviser", "verifier")}
    assert all(d["models"] == {**models, "side_b": "policy-model"} for d in dialogues)
    pairs = read_lines(tmp_path / "run" / "preferences.jsonl")
    assert pairs and all(p["models"] == dialogues[0]["models"] for p in pairs)
    manifest_text = (tmp_path / "run" / "manifest.json").read_text()
    manifest = json.loads(manifest_text)
    assert {n: b["roles"] for n, b in manifest["backends"].items()} == {
        "default": ["planner", "side_a", "critic", "reviser", "verifier"], "target": ["side_b"]}
    assert manifest["backends"]["target"]["base_url"] == policy.base_url
    assert manifest["backends"]["target"]["session_header"] == "x-session-id"
    spans = read_lines(tmp_path / "run" / "traces.jsonl.zst")
    by_agent = {(s["attributes"].get("app.backend"), s["attributes"].get("gen_ai.request.model"))
                for s in spans if s["name"] == "chat"}
    assert by_agent == {("default", "fake-model"), ("target", "policy-model")}
    # OTLP receivers get the backend's name too (the GenAI conventions' shape keeps app.* attributes).
    assert {conventions(Span.from_dict(s))["app.backend"] for s in spans if s["name"] == "chat"} == {"default", "target"}
    for text in (manifest_text, b"".join(iter_span_lines(tmp_path / "run" / "traces.jsonl.zst")).decode()):
        assert KEY not in text
    shown = run_cli("trace", str(tmp_path / "run"), dialogues[0]["id"], cwd=tmp_path)
    assert shown.returncode == 0 and "chat policy-model on target" in shown.stdout
    assert "policy-model (side_b)" in shown.stdout


async def test_the_session_header_is_named_per_backend_or_left_out(tmp_path: Path) -> None:
    judge, policy = servers()
    with judge, policy:
        config = split(write_config(tmp_path, judge.base_url, dialogues=2, concurrency=2), policy.base_url,
                       session_header=None)
        data = yaml.safe_load(config.read_text())
        data["backends"]["default"]["session_header"] = "x-affinity"
        config.write_text(yaml.safe_dump(data))
        result = await execute(request_from_config(config, out=tmp_path / "run"))
    assert result.status == "completed"
    assert not any("x-session-id" in r.headers or "x-affinity" in r.headers for r in policy.requests)
    assert len({r.headers["x-affinity"] for r in judge.requests}) == 2


def test_the_python_api_runs_and_builds_a_config_with_backends_and_roles(tmp_path: Path) -> None:
    import sparring

    judge, policy = servers()
    with judge, policy:
        config = yaml.safe_load(split(write_config(tmp_path, judge.base_url, dialogues=2, concurrency=2),
                                      policy.base_url).read_text())
        result = sparring.run(config, out=tmp_path / "run", progress=False)
        ran = len(policy.requests)
        graph = sparring.build_graph(config)
        job = next(iter_jobs(request_from_config(config)))
        state = asyncio.run(graph.ainvoke({"job": job.model_dump(mode="json")}))
    assert result.status == "completed" and (result.manifest.roles or {})["side_b"] == "target"
    assert ran and all(is_side_b_turn(r.body) for r in policy.requests)
    built = policy.requests[ran:]  # the built graph's dialogue: its side B turns on the target's server too
    assert len(built) == sum(1 for m in state["messages"] if m["speaker"] == "B")


def test_a_multi_backend_run_killed_with_workers_resumes_with_every_record_once(tmp_path: Path) -> None:
    judge, policy = servers(delay_s=0.03)
    with judge, policy:
        config = split(write_config(tmp_path, judge.base_url, dialogues=12, concurrency=4, max_in_flight=4,
                                    workers=2), policy.base_url, max_in_flight=2)
        run_dir = tmp_path / "run"
        proc = start_cli("run", str(config), "--out", str(run_dir), "-q", cwd=tmp_path)
        wait_for_requests(proc, judge, 25)
        proc.kill()
        proc.wait(10)
        final = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=600)
        assert final.returncode == 0, final.stderr
        manifest = check_complete(run_dir, expected_ids(config))
        assert [r["status"] for r in manifest["runs"]] == ["killed", "completed"]
        # Each worker had its share of each backend's slots: the policy server never saw more than 2.
        assert policy.stats.max_concurrent <= 2 and judge.stats.max_concurrent <= 4
        assert all(is_side_b_turn(r.body) for r in policy.requests)
        sessions = {r.headers["x-session-id"] for r in judge.requests + policy.requests}
        assert {session_id(manifest["run_id"], i) for i in expected_ids(config)} == sessions
    assert os.environ["POLICY_KEY"] not in (run_dir / "manifest.json").read_text()


async def test_a_redteam_run_shows_its_attack_figures(tmp_path: Path) -> None:
    """Stats, `sparring stats` and the report carry the attack figures, per target model included."""
    judge, policy = servers()
    with judge, policy:
        config = redteam_split(tmp_path, judge.base_url, policy.base_url, dialogues=8, control_share=0.3)
        result = await execute(request_from_config(config, out=tmp_path / "run"))
    assert result.status == "completed"
    assert all(r.body["messages"][0] == {"role": "system", "content": "You are the bank's assistant."}
               for r in policy.requests)
    attack = json.loads((tmp_path / "run" / "stats.json").read_text())["attack"]
    dialogues = read_lines(tmp_path / "run" / "dialogues.jsonl")
    assert attack["attacks"] == sum(1 for d in dialogues if d["target_principles"]) > 0
    assert set(attack["per_target_model"]) == {"policy-model"}
    assert attack["controls"]["dialogues"] == sum(1 for d in dialogues if not d["target_principles"])
    assert attack["access"] == "black-box"
    # Cost: each dialogue's tokens per agent add up to its total, and its target calls are the policy
    # server's requests of its session; per success: all attacks' tokens over the successes.
    run_id = json.loads((tmp_path / "run" / "manifest.json").read_text())["run_id"]
    for d in dialogues:
        by_agent, usage = d["usage"]["by_agent"], d["usage"]
        assert sum(a["prompt_tokens"] for a in by_agent.values()) == usage["prompt_tokens"]
        assert sum(a["calls"] for a in by_agent.values()) == usage["calls"]
        sent = sum(1 for r in policy.requests if r.headers["x-session-id"] == session_id(run_id, d["id"]))
        assert by_agent["target"]["calls"] == sent > 0
    attacks = [d for d in dialogues if d["target_principles"]]
    cost = attack["cost"]
    assert cost["per_attack"]["total"]["prompt_tokens"] == round(
        sum(d["usage"]["prompt_tokens"] for d in attacks) / len(attacks), 1)
    if attack["successes"]:
        assert cost["per_success"]["target"]["completion_tokens"] == round(
            sum(d["usage"]["by_agent"]["target"]["completion_tokens"] for d in attacks) / attack["successes"], 1)
    shown = run_cli("stats", str(tmp_path / "run"), "--no-embeddings", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    for title in ("attack success rate", "Attack success per tactic", "critic flag rate on controls",
                  "Attacks (redteam, black-box)", "Attack cost in tokens"):
        assert title in shown.stdout
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Attack success rate per target model" in report and "attacks succeeded" in report
    assert "black-box" in report
    # A redteam dialogue replays from its trace, whichever backend answered each call.
    for d in dialogues[:2]:
        outcome = await replay_dialogue(tmp_path / "run", d)
        assert outcome.reproduced, outcome.describe()
