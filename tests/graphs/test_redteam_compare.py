"""Several targets, one set of attacks, on real HTTP (loopback servers): one config run once per target
holds the same attacks (ids, tactics, black-box plans) and redteam-compare puts the figures side by
side; one run with two targets (``roles.side_b: [target, cautious]``) sends each target server exactly
its own dialogues, plans each attack once, shards and merges with each dialogue once, shows the
comparison table in the report, ``sparring stats`` and redteam-compare, and replays its successes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import yaml

from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.graphs.data.target_comparison import compare_runs
from sparring.graphs.runtime.manifest import session_id
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import request_from_config
from tests.cli import run_cli
from tests.graphs.test_redteam_targets import NO_REFUSAL
from tests.graphs.test_roles_run import KEY, redteam_split, servers


@pytest.fixture(autouse=True)
def _policy_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POLICY_KEY", KEY)


def rows(run: Path) -> dict[str, dict]:
    return {d["id"]: d for d in map(json.loads, (run / "dialogues.jsonl").read_text().splitlines())}


async def test_one_config_on_two_targets_attacks_alike_and_compares(tmp_path: Path) -> None:
    judge, policy = servers()
    other = FakeOpenAIServer(model="policy-2", responder=agent_reply)
    with judge, policy, other:
        config = redteam_split(tmp_path, judge.base_url, policy.base_url, dialogues=12, control_share=0.2,
                               over_refusal_share=0.2)
        first, second = tmp_path / "first", tmp_path / "second"
        assert (await execute(request_from_config(config, out=first))).status == "completed"
        moved = [f"backends.target.base_url={other.base_url}", "backends.target.model=policy-2"]
        assert (await execute(request_from_config(config, moved, out=second))).status == "completed"
    a, b = rows(first), rows(second)
    assert a.keys() == b.keys()
    for job_id, row in a.items():  # the same attack: behaviour of the job, tactic, probe, and plan
        assert (row["strategy"], row["probe"], row["plan"]) == (b[job_id]["strategy"], b[job_id]["probe"],
                                                                b[job_id]["plan"])
        assert (row["models"]["side_b"], b[job_id]["models"]["side_b"]) == ("policy-model", "policy-2")
    result = compare_runs([first, second])
    assert result["same_attacks"] and [r["target"] for r in result["runs"]] == ["policy-model", "policy-2"]
    for run in result["runs"]:
        assert run["access"] == "black-box" and run["over_refusal"]["probes"] > 0
        assert all(len(row["interval"]) == 2 for row in run["per_tactic"].values())
    shown = run_cli("redteam-compare", str(first), str(second), cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    for text in ("policy-model (black-box)", "policy-2 (black-box)", "attack success", "tactic: ", "over-refusal"):
        assert text in shown.stdout
    bad = run_cli("redteam-compare", str(tmp_path / "nothing"), cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1


REFUSAL = "I can't help with that request."


def judge_reply(body: dict) -> str:
    """The canned agents, with a critic that tells a refusal from compliance: a refusal breaks only the
    no-needless-refusal principle (in an over-refusal probe), a complying turn every other one in scope."""
    fmt = body.get("response_format") or {}
    schema = (fmt.get("json_schema") or {}).get("schema") or {}
    if schema.get("title") != "CritiqueOutput":
        return agent_reply(body)
    judged = next(m["content"] for m in reversed(body["messages"]) if '"""' in m["content"]).split('"""')[1].strip()
    finding = schema["$defs"]["ViolationFinding"]["properties"]["principle_id"]
    ids = finding.get("enum") or [finding["const"]]
    found = [] if judged.startswith("Revised:") else [p for p in ids if (p == NO_REFUSAL) == judged.startswith(REFUSAL)]
    return json.dumps({"reasoning": "checked", "violations": [
        {"principle_id": p, "evidence": judged[:40], "severity": "moderate"} for p in found]})


def cautious_reply(body: dict) -> str:
    """A target that refuses two requests in three (by the request's seed)."""
    return REFUSAL if body.get("seed", 0) % 3 else agent_reply(body)


def two_targets(folder: Path, judge: FakeOpenAIServer, policy: FakeOpenAIServer, cautious: FakeOpenAIServer,
                dialogues: int = 12) -> Path:
    """A redteam config on the loopback servers with two targets: ``target`` (policy) and ``cautious``."""
    config = redteam_split(folder, judge.base_url, policy.base_url, dialogues=dialogues, control_share=0.2,
                           over_refusal_share=0.25)
    data = yaml.safe_load(config.read_text())
    data["backends"]["cautious"] = {**data["backends"]["target"], "base_url": cautious.base_url,
                                    "model": "policy-cautious"}
    data["roles"]["side_b"] = ["target", "cautious"]
    config.write_text(yaml.safe_dump(data))
    return config


def planner_calls(judge: FakeOpenAIServer) -> int:
    return sum("AttackPlan" in json.dumps(r.body.get("response_format") or {}) for r in judge.requests)


async def test_one_run_on_two_targets_over_http_plays_every_attack_against_each(tmp_path: Path) -> None:
    judge = FakeOpenAIServer(responder=judge_reply)
    policy = FakeOpenAIServer(model="policy-model", responder=agent_reply)
    cautious = FakeOpenAIServer(model="policy-cautious", responder=cautious_reply)
    with judge, policy, cautious:
        config = two_targets(tmp_path, judge, policy, cautious)
        run = tmp_path / "run"
        assert (await execute(request_from_config(config, out=run))).status == "completed"
    dialogues = rows(run)
    run_id = json.loads((run / "manifest.json").read_text())["run_id"]
    attacks = {job_id.split("@")[0] for job_id in dialogues}
    assert len(dialogues) == 2 * len(attacks) == 24
    # Each target's server got exactly its own dialogues (every kind: attacks, controls, probes), one
    # request per target turn, under each dialogue's session; the judge's server nothing of a target.
    for server, name in ((policy, "target"), (cautious, "cautious")):
        mine = {d_id: d for d_id, d in dialogues.items() if d["target"] == name}
        assert {d_id.split("@")[0] for d_id in mine} == attacks
        sessions = Counter(r.headers["x-session-id"] for r in server.requests)
        assert sessions == Counter({session_id(run_id, d_id): sum(m["speaker"] == "B" for m in d["messages"])
                                    for d_id, d in mine.items()})
        assert {r.body["model"] for r in server.requests} == {server.model}
        assert all(not r.body.get("response_format") for r in server.requests)
    assert planner_calls(judge) == len(attacks)  # planned once per attack, not per target
    for d_id, d in dialogues.items():
        other = dialogues[d_id.split("@")[0] + ("@cautious" if d["target"] == "target" else "@target")]
        assert d["plan"] == other["plan"] and d["messages"][0] == other["messages"][0]
    # The report's table and the two commands compare the targets.
    stats = json.loads((run / "stats.json").read_text())["attack"]["targets"]
    base, tuned = stats["columns"]
    assert (base["target"], tuned["target"]) == ("target", "cautious") and stats["same_attacks"]
    assert base["success_rate"] > tuned["success_rate"] and tuned["over_refusal"]["refused"] > 0
    report = (run / "report.html").read_text()
    assert 'id="target-comparison"' in report and "cautious: policy-cautious (black-box)" in report
    for command in (("redteam-compare",), ("stats", "--no-embeddings")):
        shown = run_cli(*command, str(run), cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert "target: policy-model (black-box)" in shown.stdout and "over-refusal" in shown.stdout


def test_shards_of_a_run_with_two_targets_merge_with_each_dialogue_once_and_each_attack_planned_once(
        tmp_path: Path) -> None:
    import sparring
    from sparring.graphs.runtime.run_request import iter_jobs

    judge = FakeOpenAIServer(responder=judge_reply)
    policy = FakeOpenAIServer(model="policy-model", responder=agent_reply)
    cautious = FakeOpenAIServer(model="policy-cautious", responder=cautious_reply)
    with judge, policy, cautious:
        config = two_targets(tmp_path, judge, policy, cautious, dialogues=10)
        assert run_cli("plan", str(config), "--out", "plan", "--shards", "2", cwd=tmp_path).returncode == 0
        for shard, extra in (("0/2", []), ("1/2", ["workers=2"])):  # a shard with workers too
            result = sparring.run(tmp_path / "plan", shard=shard, out=tmp_path / f"shard{shard[0]}", overrides=extra,
                                  progress=False)
            assert result.status == "completed"
    merged = run_cli("merge", "shard0", "shard1", "--out", "merged", cwd=tmp_path)
    assert merged.returncode == 0, merged.stderr
    expected = [job.id for job in iter_jobs(request_from_config(config))]
    ids = [json.loads(line)["id"] for line in (tmp_path / "merged" / "dialogues.jsonl").read_text().splitlines()]
    assert sorted(ids) == sorted(expected) and len(set(ids)) == len(ids) == 20
    for shard in ("shard0", "shard1"):  # the copies of an attack ran on one shard
        held = {i.split("@")[0] for i in rows(tmp_path / shard)}
        assert len(rows(tmp_path / shard)) == 2 * len(held)
    assert planner_calls(judge) == 10
    stats = json.loads((tmp_path / "merged" / "stats.json").read_text())["attack"]["targets"]
    assert [c["target"] for c in stats["columns"]] == ["target", "cautious"] and stats["same_attacks"]


async def test_the_successes_of_a_run_with_two_targets_replay_against_a_new_one(tmp_path: Path) -> None:
    judge = FakeOpenAIServer(responder=judge_reply)
    policy = FakeOpenAIServer(model="policy-model", responder=agent_reply)
    cautious = FakeOpenAIServer(model="policy-cautious", responder=cautious_reply)
    new = FakeOpenAIServer(model="policy-new", responder=agent_reply)
    with judge, policy, cautious, new:
        run = tmp_path / "run"
        assert (await execute(request_from_config(two_targets(tmp_path, judge, policy, cautious, dialogues=6),
                                                  out=run))).status == "completed"
        (tmp_path / "new.yaml").write_text(yaml.safe_dump({"kind": "openai_compat", "base_url": new.base_url,
                                                           "model": "policy-new", "api_key_env": "POLICY_KEY"}))
        before = len(policy.requests) + len(cautious.requests)
        shown = run_cli("redteam-replay", str(run), "--target", "new.yaml", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr
        assert len(policy.requests) + len(cautious.requests) == before and new.requests
    wins = {d_id: d for d_id, d in rows(run).items() if d["targeted_violated"]}
    replayed = [json.loads(line) for line in (run / "replay.jsonl").read_text().splitlines()]
    assert {d["target"] for d in wins.values()} == {"target", "cautious"}
    assert sorted(r["dialogue_id"] for r in replayed) == sorted(wins)
    assert all(r["original_target"] == wins[r["dialogue_id"]]["target"] for r in replayed)
