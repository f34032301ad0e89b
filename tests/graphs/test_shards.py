"""Plan once, run shards, merge exactly once, against the deterministic loopback server.

Two shards merged hold the records of the unsharded run of the same config; a shard killed
and resumed merges whole; every refusal of ``sparring merge`` is one line and exit 2 with
nothing written; merging again gives the same bytes; a merge killed at any moment leaves no
half-written output."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sparring
from benchmarks.loopback import FakeOpenAIServer
from benchmarks.loopback.canned import agent_reply
from sparring.graphs.cli import main
from sparring.graphs.runtime.manifest import session_id
from sparring.graphs.runtime.plan_files import shard_of
from sparring.graphs.runtime.store import ENGINE_LOG
from tests.cli import run_cli
from tests.graphs.loopback_run import (
    canned_server,
    check_complete,
    expected_ids,
    read_lines,
    start_cli,
    wait_for_requests,
    write_config,
)

RECORDS = ("dialogues.jsonl", "preferences.jsonl", "sft.jsonl", "scenarios.jsonl")
PER_RUN = {"trace_id", "duration_s"}
"""Record fields that differ between two runs of one config: the trace a dialogue was written by
(a fresh id per run) and its wall time. Everything else must be equal."""


def cli(*args: str) -> Any:
    """``sparring ARGS`` in this process (click's runner; the command's own code, exit status and output)."""
    return CliRunner().invoke(main, [str(a) for a in args], env={"COLUMNS": "200"})


def run_shard(source: Path, shard: str | None, out: Path, *overrides: str) -> None:
    """``sparring.run`` of a shard: the request ``sparring run SOURCE --shard K/N`` makes (one path for both)."""
    result = sparring.run(source, shard=shard, out=out, overrides=list(overrides), progress=False)
    assert result.status == "completed"
    assert (out / ENGINE_LOG).is_file()  # the engine's and libraries' output, in the shard's own directory


def comparable(run_dir: Path, name: str) -> list[str]:
    """The rows of one record file without their per-run fields, as sorted canonical JSON."""
    rows = [{k: v for k, v in row.items() if k not in PER_RUN} for row in read_lines(run_dir / name)]
    return sorted(json.dumps(row, sort_keys=True) for row in rows)


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One loopback server, a config of 24 dialogues, its plan, its unsharded run and its two shards."""
    tmp = tmp_path_factory.mktemp("shards")
    with canned_server() as server:
        config = write_config(tmp, server.base_url, dialogues=24, concurrency=8)
        assert cli("plan", config, "--out", tmp / "plan", "--shards", "2").exit_code == 0
        run_shard(config, None, tmp / "whole")
        run_shard(tmp / "plan", "0/2", tmp / "shard0")
        run_shard(tmp / "plan", "1/2", tmp / "shard1", "workers=2")  # a shard is an ordinary run: workers too
        yield type("World", (), {"tmp": tmp, "server": server, "config": config, "plan": tmp / "plan",
                                  "shards": [tmp / "shard0", tmp / "shard1"], "whole": tmp / "whole"})


def test_two_shards_merged_equal_the_unsharded_run(world):
    shard_ids = [{d["id"] for d in read_lines(s / "dialogues.jsonl")} for s in world.shards]
    assert shard_ids[0] and shard_ids[1] and not shard_ids[0] & shard_ids[1]
    assert all(shard_of(i, 2) == k for k, ids in enumerate(shard_ids) for i in ids)
    out = world.tmp / "merged"
    result = cli("merge", *world.shards, "--out", out)
    assert result.exit_code == 0, result.output
    manifest = check_complete(out, expected_ids(world.config))
    for name in RECORDS:
        assert comparable(out, name) == comparable(world.whole, name), name
    # Spans: the same number of each kind; ids and times are per run.
    kinds = [sorted(s["name"] for s in read_lines(d / "traces.jsonl.zst")) for d in (out, world.whole)]
    assert kinds[0] == kinds[1]
    whole = json.loads((world.whole / "manifest.json").read_text())
    assert manifest["counts"] | {"this_attempt": {}} == whole["counts"] | {"this_attempt": {}}
    assert manifest["usage"] == whole["usage"]
    assert manifest["roles"] == whole["roles"] and manifest["backends"].keys() == whole["backends"].keys()
    assert [r["shard"] for r in manifest["runs"]] == [0, 1]
    assert manifest["plan"]["shards"] == 2 and manifest["merge"]["missing_count"] == 0
    # Each shard's engine.log stays with the shard; the merge names it and writes none of its own.
    assert [s["engine_log"] for s in manifest["merge"]["shards"]] == [str((d / "engine.log").absolute())
                                                                      for d in world.shards]
    assert not (out / "engine.log").exists()
    stats, whole_stats = (json.loads((d / "stats.json").read_text()) for d in (out, world.whole))
    for key in ("counts", "diasynth_table1", "sdsd", "turns", "revisions", "critic"):
        assert stats[key] == whole_stats[key], key
    assert stats["run"]["dir"] == str(out)
    assert (out / "report.html").read_text().count('class="dialogue') == \
        (world.whole / "report.html").read_text().count('class="dialogue')


def test_a_config_with_shard_sees_the_plans_jobs(world, tmp_path):
    out = tmp_path / "from-config"
    run_shard(world.config, "1/2", out)
    plan_info = json.loads((out / "manifest.json").read_text())["plan"]
    shard1 = json.loads((world.shards[1] / "manifest.json").read_text())["plan"]
    assert plan_info["id"] == shard1["id"] and plan_info["jobs"] == 24
    assert (out / "jobs.jsonl").read_bytes() == (world.shards[1] / "jobs.jsonl").read_bytes()
    # A config shard and a plan shard of one config merge together.
    merged = cli("merge", world.shards[0], out, "--out", tmp_path / "merged")
    assert merged.exit_code == 0, merged.output
    check_complete(tmp_path / "merged", expected_ids(world.config))


def test_merge_again_gives_the_same_bytes(world, tmp_path):
    out = tmp_path / "merged"
    assert cli("merge", *world.shards, "--out", out).exit_code == 0
    first = files(out)
    assert set(first) >= {*RECORDS, "traces.jsonl.zst", "manifest.json", "stats.json", "report.html"}
    again = cli("merge", *reversed(world.shards), "--out", out)  # replaces the earlier merge
    assert again.exit_code == 0, again.output
    assert files(out) == first
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # no temporary directory left


@pytest.fixture(scope="module")
def thirds(world) -> list[Path]:
    """The plan's three shards of N=3 (the world's server is still up)."""
    folders = [world.tmp / f"third{k}" for k in range(3)]
    for k, folder in enumerate(folders):
        run_shard(world.plan, f"{k}/3", folder)
    return folders


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(picks=st.lists(st.integers(0, 3), min_size=1, max_size=5), allow_partial=st.booleans())
def test_merge_over_generated_argument_lists(world, thirds, picks, allow_partial):
    """Any list of shard directories (in any order, some twice, some missing, one of another N):
    the merge is refused in one line with nothing written, or it holds each given shard's
    dialogues exactly once, lists what is missing, and has the same bytes whatever the order."""
    given_dirs = [thirds[p] if p < 3 else world.shards[0] for p in picks]  # 3: a shard of N=2
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "m"
        flags = ["--allow-partial"] if allow_partial else []
        result = cli("merge", *given_dirs, "--out", out, *flags)
        unique = sorted(set(picks))
        if 3 in picks and len(unique) > 1:
            refusal(result, "splits (N)")
        elif len(unique) < len(picks):
            refusal(result, "again")
        elif len(unique) < (2 if 3 in picks else 3) and not allow_partial:
            refusal(result, "is missing", "--allow-partial")
        else:
            assert result.exit_code == 0, result.output
            written = [d["id"] for d in read_lines(out / "dialogues.jsonl")]
            wanted = [d["id"] for folder in given_dirs for d in read_lines(folder / "dialogues.jsonl")]
            assert sorted(written) == sorted(wanted) and len(set(written)) == len(written)
            manifest = json.loads((out / "manifest.json").read_text())
            count = 2 if 3 in picks else 3
            missing = [k for k in range(count) if k not in ({0} if 3 in picks else set(picks))]
            assert manifest["merge"]["missing_shards"] == missing
            assert manifest["status"] == ("partial" if missing else "completed")
            again = cli("merge", *reversed(given_dirs), "--out", Path(tmp) / "again", *flags)
            assert again.exit_code == 0, again.output
            first, second = files(out), files(Path(tmp) / "again")
            # The same bytes but for where each copy says it lives.
            assert {k: v.replace(str(out).encode(), b"OUT") for k, v in first.items()} == \
                {k: v.replace(str(Path(tmp) / "again").encode(), b"OUT") for k, v in second.items()}
            return
        assert not out.exists() and os.listdir(tmp) == []  # a refusal writes nothing


def refusal(result: Any, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert "\n" not in line and line.startswith("error: ") and "Traceback" not in line, line
    for needle in needles:
        assert needle in line, line
    return line


def test_merge_refusals(world, tmp_path):
    a, b = world.shards
    out = tmp_path / "out"
    # Shards of another config (another seed), of another plan of the same config, of another N.
    run_shard(world.config, "1/2", tmp_path / "seed6", "seed=6")
    refusal(cli("merge", a, tmp_path / "seed6", "--out", out), "configs", "seed6")
    run_shard(world.config, "1/2", tmp_path / "fewer", "jobs.max_dialogues=20")
    refusal(cli("merge", a, tmp_path / "fewer", "--out", out), "plans", "fewer")
    run_shard(world.plan, "1/3", tmp_path / "third")
    refusal(cli("merge", a, tmp_path / "third", "--out", out), "splits (N)")
    # A missing shard, a shard twice, a run that is not a shard, --out among the shards or not a merge.
    refusal(cli("merge", a, "--out", out), "shard 1/2 is missing", "--allow-partial")
    shutil.copytree(a, tmp_path / "copy")
    refusal(cli("merge", a, tmp_path / "copy", "--out", out), "again")
    refusal(cli("merge", a, world.whole, "--out", out), "is not a shard", "whole")
    refusal(cli("merge", a, b, "--out", b), "is one of the shards")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    refusal(cli("merge", a, b, "--out", tmp_path / "busy"), "holds no earlier merge")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"
    refusal(cli("merge", a, tmp_path / "nowhere", "--out", out), "nowhere")
    assert not out.exists()
    assert not list(tmp_path.glob(".out*"))
    # --allow-partial merges what is there and says what is missing.
    partial = cli("merge", a, "--out", out, "--allow-partial")
    assert partial.exit_code == 0, partial.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["status"] == "partial" and manifest["merge"]["missing_shards"] == [1]
    assert manifest["merge"]["missing_count"] == 24 - manifest["counts"]["dialogues"]


def test_shard_refusals(world, tmp_path):
    """Bad --shard values, a plan overridden beyond how it is run, a shard into another's directory."""
    for bad in ("2/2", "1", "a/b", "-1/2", "0/0"):
        refusal(cli("run", world.plan, "--shard", bad, "--out", tmp_path / "x"), "--shard")
    refusal(cli("run", world.plan, "--shard", "0/2", "--set", "seed=9", "--out", tmp_path / "x"),
            "--set seed", "fingerprint")
    refusal(cli("run", world.plan, "--max-dialogues", "3", "--out", tmp_path / "x"), "--max-dialogues")
    refusal(cli("run", world.plan, "--shard", "1/2", "--out", world.shards[0]), "holds shard 0/2")
    refusal(cli("run", world.config, "--out", world.shards[0]), "holds shard 0/2", "sparring resume")
    refusal(cli("run", world.plan, "--shard", "0/2", "--out", world.whole), "not a shard")
    refusal(cli("run", tmp_path, "--shard", "0/2"), "is a directory, not a config file", "no plan.json")
    assert not (tmp_path / "x").exists()
    dry = cli("run", world.plan, "--shard", "1/2", "--dry-run")
    assert dry.exit_code == 0 and "shard 1/2 of plan" in dry.output and "(24 jobs in all)" in dry.output, dry.output
    # Keys that drive the run may change on a plan: the same shard continues (nothing left to do).
    ok = cli("run", world.plan, "--shard", "0/2", "--out", world.shards[0], "--set", "concurrency=3", "-q")
    assert ok.exit_code == 0, ok.output


def test_a_shard_killed_then_resumed_merges_whole(world, tmp_path):
    with canned_server(delay_s=0.03) as server:
        config = write_config(tmp_path, server.base_url, dialogues=24, concurrency=4)
        assert cli("plan", config, "--out", tmp_path / "plan").exit_code == 0
        shard0 = tmp_path / "shard0"
        proc = start_cli("run", str(tmp_path / "plan"), "--shard", "0/2", "--out", str(shard0), "-q", cwd=tmp_path)
        wait_for_requests(proc, server, 20)
        proc.kill()  # SIGKILL mid-run
        proc.wait(10)
        run_shard(tmp_path / "plan", "1/2", tmp_path / "shard1")
        refusal(cli("merge", shard0, tmp_path / "shard1", "--out", tmp_path / "m"), "unfinished", "sparring resume")
        # --allow-partial: what is written, and the list of what is not.
        assert cli("merge", shard0, tmp_path / "shard1", "--out", tmp_path / "p", "--allow-partial").exit_code == 0
        partial = json.loads((tmp_path / "p" / "manifest.json").read_text())
        written = {d["id"] for d in read_lines(tmp_path / "p" / "dialogues.jsonl")}
        assert partial["status"] == "partial" and partial["merge"]["missing_shards"] == []
        assert set(partial["merge"]["missing_dialogues"]) == set(expected_ids(config)) - written
        assert {p["dialogue_id"] for p in read_lines(tmp_path / "p" / "preferences.jsonl")} <= written
        # Resumed from its own directory (jobs.jsonl, manifest), killed again, then requeued as a batch
        # system would: the same command again continues the shard.
        proc = start_cli("resume", str(shard0), "-q", cwd=tmp_path)
        wait_for_requests(proc, server, server.stats.chat_requests + 12)
        proc.kill()
        proc.wait(10)
        again = run_cli("run", str(tmp_path / "plan"), "--shard", "0/2", "--out", str(shard0), "-q", cwd=tmp_path,
                        timeout=300)
        assert again.returncode == 0, again.stderr
        runs = json.loads((shard0 / "manifest.json").read_text())["runs"]
        assert [r["status"] for r in runs] == ["killed", "killed", "completed"]
        merged = cli("merge", shard0, tmp_path / "shard1", "--out", tmp_path / "m")
        assert merged.exit_code == 0, merged.output
        manifest = check_complete(tmp_path / "m", expected_ids(config))
        assert [(r["shard"], r["status"]) for r in manifest["runs"]] == [(0, "killed"), (0, "killed"),
                                                                          (0, "completed"), (1, "completed")]


def test_a_merge_killed_at_any_moment_leaves_no_half_output(world, tmp_path):
    out = tmp_path / "merged"
    assert cli("merge", *world.shards, "--out", out).exit_code == 0
    reference = files(out)
    args = ("merge", *map(str, world.shards), "--out", str(out))
    cut = []
    for attempt, delay in enumerate((0.0, 0.005, 0.02, 0.05, 0.1, 0.3)):
        if attempt % 2:  # half the kills hit a merge that replaces an earlier one
            assert cli(*args).exit_code == 0
        else:
            shutil.rmtree(out, ignore_errors=True)
        proc = start_cli(*args, cwd=tmp_path)
        while not (tmp_path / f".merged.merge-{proc.pid}").exists() and proc.poll() is None:
            time.sleep(0.001)
        time.sleep(delay)
        proc.kill()
        cut.append(proc.wait(10) == -9)  # killed, not already finished
        assert not out.exists() or files(out) == reference, f"half-written output after a kill at +{delay}s"
    assert sum(cut) >= 3, "too few kills landed while the merge was writing"
    again = cli("merge", *world.shards, "--out", out)
    assert again.exit_code == 0, again.output
    assert files(out) == reference
    assert [p.name for p in tmp_path.iterdir()] == ["merged"]  # killed merges' temporary directories removed


SUBJECTS = ["tide pools", "violin bows", "tax forms", "sourdough", "bike gears", "moon phases", "knitting",
            "glaciers", "chess openings", "roof tiles", "bee hives", "night trains", "solar panels", "pottery",
            "whale songs", "board games", "vaccines", "street food", "fountain pens", "rock climbing"]
PEOPLE = ["a beekeeper", "an airline pilot", "a pastry chef", "a tax accountant", "a marine biologist",
          "a drama teacher", "a truck driver", "a retired firefighter", "a glassblower", "a park ranger"]


def expanding_reply(body: dict[str, Any]) -> str:
    """A model whose expansion differs at every call (as a sampled one may): shards that each
    expanded for themselves would not see the same jobs."""
    schema = ((body.get("response_format") or {}).get("json_schema") or {}).get("schema") or {}
    title = schema.get("title")
    if title in ("SubtopicsOutput", "PersonasOutput"):
        key = "subtopics" if title == "SubtopicsOutput" else "personas"
        count = schema["properties"][key].get("minItems", 2)
        if key == "subtopics":
            return json.dumps({key: [f"Caring for {s}" for s in random.sample(SUBJECTS, count)]})
        return json.dumps({key: [{"name": f"{n}, {p}", "description": f"{n} has long worked as {p}."}
                                 for n, p in zip(random.sample(["Ada", "Bram", "Chloe", "Dev", "Eve", "Femi"], count),
                                                 random.sample(PEOPLE, count), strict=True)]})
    return agent_reply(body)


def test_a_diasynth_plan_freezes_the_expansion(tmp_path):
    with FakeOpenAIServer(responder=expanding_reply, record_requests=False) as server:
        config = write_config(tmp_path, server.base_url, dialogues=12, concurrency=4)
        data = yaml.safe_load(config.read_text())
        data.pop("scenarios")
        data["diasynth"] = {"topics": ["Hobbies"], "subtopics_per_topic": 2, "personas_per_subtopic": 3}
        data["jobs"] = {"dialogues_per_scenario": 2}
        config.write_text(yaml.safe_dump(data))
        refusal(cli("run", config, "--shard", "0/2"), "sparring plan", "diasynth")
        made = cli("plan", config, "--out", tmp_path / "plan")
        assert made.exit_code == 0, made.output
        jobs = [json.loads(line)["id"] for line in (tmp_path / "plan" / "jobs.jsonl").read_text().splitlines()]
        assert len(jobs) == 2 * 3 * 2  # 2 subtopics x C(3, 2) pairs x 2 dialogues
        assert read_lines(tmp_path / "plan" / "traces.jsonl"), "the expansion's spans are kept with the plan"
        before = server.stats.chat_requests
        for k in (0, 1):
            run_shard(tmp_path / "plan", f"{k}/2", tmp_path / f"shard{k}")
        assert cli("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "m").exit_code == 0
        check_complete(tmp_path / "m", jobs)
        calls = sum(d["usage"]["calls"] for d in read_lines(tmp_path / "m" / "dialogues.jsonl"))
        assert server.stats.chat_requests - before == calls  # the dialogues' calls only: no shard expanded again
        scenarios = read_lines(tmp_path / "m" / "scenarios.jsonl")
        assert [s["id"] for s in scenarios] == [s["id"] for s in read_lines(tmp_path / "plan" / "scenarios.jsonl")]


def test_each_shard_points_named_backends_at_its_own_servers(tmp_path):
    """A plan whose config names its backends (side B on its own): a shard run elsewhere points each
    at that machine's servers with --set backends.NAME.base_url; a key that changes what the plan
    produces is refused; the shards merge as one run."""
    with canned_server() as planned, canned_server() as other_default, canned_server() as other_target:
        config = write_config(tmp_path, planned.base_url, dialogues=8, concurrency=4)
        data = yaml.safe_load(config.read_text())
        backend = data.pop("backend")
        data["backends"] = {"default": backend, "target": dict(backend)}
        data["roles"] = {"side_b": "target"}
        config.write_text(yaml.safe_dump(data))
        assert cli("plan", config, "--out", tmp_path / "plan").exit_code == 0
        refusal(cli("run", tmp_path / "plan", "--shard", "1/2", "--set", "backends.target.model=other",
                    "--out", tmp_path / "x"), "backends.target.model", "fingerprint")
        run_shard(tmp_path / "plan", "0/2", tmp_path / "s0")
        run_shard(tmp_path / "plan", "1/2", tmp_path / "s1", f"backends.default.base_url={other_default.base_url}",
                  f"backends.target.base_url={other_target.base_url}")
        dialogues = read_lines(tmp_path / "s1" / "dialogues.jsonl")
        assert other_default.stats.chat_requests + other_target.stats.chat_requests == \
            sum(d["usage"]["calls"] for d in dialogues)
        assert other_target.stats.chat_requests == sum(m["speaker"] == "B" for d in dialogues for m in d["messages"])
        run_id = json.loads((tmp_path / "s1" / "manifest.json").read_text())["run_id"]
        sessions = {session_id(run_id, d["id"]) for d in dialogues}
        assert set(other_target.stats.sessions) == set(other_default.stats.sessions) == sessions
    merged = cli("merge", tmp_path / "s0", tmp_path / "s1", "--out", tmp_path / "m")
    assert merged.exit_code == 0, merged.output
    manifest = check_complete(tmp_path / "m", expected_ids(config))
    assert manifest["roles"]["side_b"] == "target"
    urls = [s["backends"]["target"]["base_url"] for s in manifest["merge"]["shards"]]
    assert urls == [planned.base_url, other_target.base_url]


def _titles(server: FakeOpenAIServer) -> list[str]:
    """The schema title of each chat request the server saw ("" for free text), from its own record."""
    return [((r.body.get("response_format") or {}).get("json_schema") or {}).get("schema", {}).get("title", "")
            for r in server.requests]


def test_a_plan_expands_on_the_expansion_roles_backends_as_a_run_does(tmp_path):
    """One path for the DiaSynth expansion: a config whose subtopics and personas roles point at a second
    server expands there, whether a run or ``sparring plan`` does it (each server's own request record
    says which calls it got), and plan + two shards + merge equals the unsharded run."""
    expansion = {"SubtopicsOutput", "PersonasOutput"}
    with canned_server() as main_server, FakeOpenAIServer(responder=agent_reply) as writer:
        config = write_config(tmp_path, main_server.base_url, dialogues=8, concurrency=4)
        data = yaml.safe_load(config.read_text())
        data.pop("scenarios")
        backend = data.pop("backend")
        data["backends"] = {"default": backend, "writer": {**backend, "base_url": writer.base_url}}
        data["roles"] = {"subtopics": "writer", "personas": "writer"}
        data["diasynth"] = {"topics": ["Hobbies", "Travel"], "subtopics_per_topic": 2, "personas_per_subtopic": 3}
        data["jobs"] = {"dialogues_per_scenario": 1}
        config.write_text(yaml.safe_dump(data))
        main_server.record_requests = True
        run_shard(config, None, tmp_path / "whole")
        whole_calls = len(writer.requests)
        assert whole_calls and set(_titles(writer)) == expansion
        assert not set(_titles(main_server)) & expansion
        made = cli("plan", config, "--out", tmp_path / "plan", "--shards", "2")
        assert made.exit_code == 0, made.output
        assert len(writer.requests) == 2 * whole_calls and set(_titles(writer)) == expansion
        for k in (0, 1):
            run_shard(tmp_path / "plan", f"{k}/2", tmp_path / f"shard{k}")
        assert len(writer.requests) == 2 * whole_calls  # the shards expanded nothing again
        assert not set(_titles(main_server)) & expansion
    assert cli("merge", tmp_path / "shard0", tmp_path / "shard1", "--out", tmp_path / "m").exit_code == 0
    for name in RECORDS:
        assert comparable(tmp_path / "m", name) == comparable(tmp_path / "whole", name), name


def test_plan_probes_the_expansion_backends_like_run(tmp_path):
    """A plan whose expansion backend cannot work is refused in one line, exit 2, nothing written."""
    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=4, concurrency=2)
        data = yaml.safe_load(config.read_text())
        data.pop("scenarios")
        backend = data.pop("backend")
        data["backends"] = {"default": backend, "writer": {**backend, "model": "no-such-model"}}
        data["roles"] = {"subtopics": "writer", "personas": "writer"}
        data["diasynth"] = {"topics": ["Hobbies"], "subtopics_per_topic": 2, "personas_per_subtopic": 2}
        config.write_text(yaml.safe_dump(data))
        result = run_cli("plan", str(config), "--out", str(tmp_path / "plan"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert "backends.writer" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "plan").exists()
