"""Several targets, one set of attacks: one config run against two targets (loopback servers, real
HTTP) holds the same attacks (ids, tactics, black-box plans), and redteam-compare puts the figures side
by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.graphs.data.target_comparison import compare_runs
from sparring.graphs.runtime.pipeline import execute
from sparring.graphs.runtime.run_request import request_from_config
from tests.cli import run_cli
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
