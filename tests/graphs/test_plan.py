"""Plans and shard membership over many generated cases: shards partition the job list, membership
is SHA-256 of the dialogue id (the same in every process, whatever PYTHONHASHSEED), a plan's files
read back to the very jobs, and a config sharded in memory sees the jobs of its plan directory."""

from __future__ import annotations

import hashlib
import json
import os
import random
import subprocess
import sys
from collections import Counter

import pytest
import yaml

from sparring.errors import InputError
from sparring.graphs.runtime.plan_files import Shard, plan_id, shard_of, write_plan
from sparring.graphs.runtime.run_request import iter_jobs, plan_of, request_from_config, request_from_plan
from tests.cli import REPO
from tests.graphs.loopback_run import write_config

CASES = 25


def random_config(tmp_path, rng: random.Random):
    """A config of random size and job settings (never run: the server URL is not contacted)."""
    path = write_config(tmp_path, "http://127.0.0.1:9/v1", dialogues=rng.randint(1, 60), concurrency=4)
    data = yaml.safe_load(path.read_text())
    data["seed"] = rng.randrange(1000)
    data["jobs"] = {"dialogues_per_scenario": rng.randint(1, 15), "control_share": rng.choice([0.0, 0.3, 1.0]),
                    "principles_per_dialogue": rng.randint(0, 3), "briefed_side": rng.choice(["A", "B"])}
    data["scenarios"] = data["scenarios"][: rng.randint(1, 4)]
    path.write_text(yaml.safe_dump(data))
    return path


def test_shards_partition_every_plan_and_read_back(tmp_path):
    rng = random.Random(18)
    for case in range(CASES):
        folder = tmp_path / str(case)
        folder.mkdir()
        config = random_config(folder, rng)
        plan = plan_of(request_from_config(config))
        ids = [job.id for job in plan.jobs]
        assert write_plan(plan, folder / "plan") == plan.id == plan_id(plan.fingerprint, ids)
        count = rng.randint(1, 7)
        seen: Counter[str] = Counter()
        for k in range(count):
            from_dir = request_from_plan(folder / "plan", shard=Shard(k, count), out=folder / f"s{k}")
            in_memory = request_from_config(config, shard=Shard(k, count), out=folder / f"c{k}")
            assert list(iter_jobs(from_dir)) == list(iter_jobs(in_memory)) == [j for j in plan.jobs
                                                                               if shard_of(j.id, count) == k]
            assert in_memory.plan is not None
            assert from_dir.plan == in_memory.plan.model_copy(update={"source": str(folder / "plan")})
            seen.update(job.id for job in iter_jobs(from_dir))
        assert seen == Counter(ids), "shards must hold every job exactly once"


def test_membership_is_sha256_and_balanced():
    rng = random.Random(7)
    ids = [f"{rng.getrandbits(64):016x}" for _ in range(4000)]
    for count in range(1, 9):
        sizes = Counter(shard_of(i, count) for i in ids)
        assert set(sizes) == set(range(count))
        assert max(sizes.values()) <= 1.15 * len(ids) / count
        for i in ids[:50]:
            assert shard_of(i, count) == int(hashlib.sha256(i.encode()).hexdigest()[:16], 16) % count
            assert [Shard(k, count).holds(i) for k in range(count)].count(True) == 1


def test_membership_does_not_depend_on_the_process():
    """Python's str hash is salted per process; shard membership must not be."""
    code = "import json,sys; from sparring.graphs.runtime.plan_files import shard_of; print(json.dumps([shard_of(f'id{i}', 7) " \
           "for i in range(200)]))"
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout for seed in ("1", "2")]
    assert json.loads(runs[0]) == json.loads(runs[1]) == [shard_of(f"id{i}", 7) for i in range(200)]


@pytest.mark.parametrize("text", ["0/1", "3/4", " 2/3 "])
def test_shard_parse(text):
    shard = Shard.parse(text)
    assert str(shard) == text.strip() and 0 <= shard.index < shard.count


@pytest.mark.parametrize("text", ["4/4", "1", "1/", "/2", "a/2", "-1/2", "0/0", "1.0/2"])
def test_shard_parse_refuses(text):
    with pytest.raises(InputError, match="--shard"):
        Shard.parse(text)


def test_an_edited_jobs_file_is_refused(tmp_path):
    config = random_config(tmp_path, random.Random(3))
    plan = plan_of(request_from_config(config))
    write_plan(plan, tmp_path / "plan")
    jobs = tmp_path / "plan" / "jobs.jsonl"
    rows = [json.loads(line) for line in jobs.read_text().splitlines()]
    rows[0]["seed"] += 1
    jobs.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="jobs.jsonl.*line 1"):
        request_from_plan(tmp_path / "plan")
