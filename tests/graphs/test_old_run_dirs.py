"""Run directories written before the typed manifest (no ``format_version``: format 1) still read,
resume, merge, filter, judge and report with the code of today; a manifest that is damaged, of the
wrong type or of a newer format is one line naming the file (and the key), exit 2.

The directories in fixtures/old_run_dirs were written by commit f5ece4d against the loopback server
(``make_fixtures.py`` there says how); fixtures/pre_namespace_run is older still (no run id).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparring.errors import InputError
from sparring.graphs.commands.judge_run import judge_run
from sparring.graphs.data.filtered_run import write_filtered_run
from sparring.graphs.data.filters import FilterSpec
from sparring.graphs.runtime.manifest import MANIFEST_FORMAT, RunManifest, load_manifest, read_manifest, write_manifest
from sparring.graphs.runtime.shard_merge import merge_shards
from tests.agents.test_judge import LogprobBackend
from tests.cli import run_cli
from tests.graphs.data.fakes import FixedEmbedder
from tests.graphs.loopback_run import canned_server, check_complete, expected_ids, read_lines

FIXTURES = Path(__file__).parent / "fixtures"
OLD = FIXTURES / "old_run_dirs"
OLD_DIRS = {"killed": "running", "completed": "completed", "shard0": "completed", "shard1": "completed"}


def old_copy(name: str, tmp_path: Path, base_url: str = "http://127.0.0.1:9/v1") -> Path:
    """A copy of an old run directory whose backend URL (not part of the fingerprint) is ``base_url``;
    the manifest is edited as JSON, as it lies on disk, so it stays the old writer's."""
    run_dir = tmp_path / name
    shutil.copytree(OLD / "runs" / name, run_dir)
    path = run_dir / "manifest.json"
    data = json.loads(path.read_text())
    data["config"]["backend"]["base_url"] = base_url
    path.write_text(json.dumps(data, indent=2))
    return run_dir


def raw(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "manifest.json").read_text())


@pytest.mark.parametrize("name", sorted(OLD_DIRS))
def test_an_old_manifest_reads_as_the_current_format_without_being_written(name: str) -> None:
    run_dir = OLD / "runs" / name
    before = (run_dir / "manifest.json").read_bytes()
    manifest = load_manifest(run_dir)
    assert "format_version" not in raw(run_dir) and manifest.format_version == MANIFEST_FORMAT == 2
    assert manifest.status == OLD_DIRS[name] and manifest.run_id and manifest.config_fingerprint
    assert manifest.runs[0].status == OLD_DIRS[name] and manifest.runs[0].pid
    if name != "killed":
        assert manifest.counts.dialogues > 0 and manifest.usage.calls > 0 and manifest.runs[0].usage is not None
    assert (run_dir / "manifest.json").read_bytes() == before  # reading never writes


def test_the_pre_namespace_manifest_reads_too() -> None:
    manifest = load_manifest(FIXTURES / "pre_namespace_run")
    assert manifest.run_id is None and manifest.status == "running" and manifest.counts.dialogues == 0
    assert manifest.versions["sparring"] == "0.1.0" and manifest.runs[0].status == "running"


def test_a_run_killed_by_the_old_code_resumes_once_to_the_end(tmp_path: Path) -> None:
    """SIGKILLed mid-run by f5ece4d: ``sparring resume`` marks that attempt killed, writes every
    dialogue exactly once, and writes the manifest in the current format, keeping the old run's id."""
    old = load_manifest(OLD / "runs" / "killed")
    written_before = len(read_lines(OLD / "runs" / "killed" / "dialogues.jsonl"))
    with canned_server() as server:
        run_dir = old_copy("killed", tmp_path, server.base_url)
        result = run_cli("resume", str(run_dir), "-q", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    check_complete(run_dir, expected_ids(OLD / "config.yaml"))
    data = raw(run_dir)
    assert data["format_version"] == 2 and data["run_id"] == old.run_id
    assert [r["status"] for r in data["runs"]] == ["killed", "completed"]
    assert data["counts"]["killed_attempts"] == 1 and data["counts"]["dialogues"] == 6
    assert data["counts"]["this_attempt"]["skipped"] == written_before
    assert data["usage"]["calls"] == data["runs"][1]["usage"]["calls"] > 0  # the killed attempt wrote no usage
    assert data["config_fingerprint"] == old.config_fingerprint
    stats = run_cli("stats", str(run_dir), "--json", "--no-embeddings", cwd=tmp_path, timeout=300)
    assert stats.returncode == 0 and json.loads(stats.stdout)["counts"]["dialogues"] == 6


def test_a_new_run_writes_the_keys_the_old_code_wrote(tmp_path: Path) -> None:
    """The file is a public contract: the same config run today writes every key f5ece4d wrote, at
    every level users read (attempts, counts, usage, timings), plus ``format_version``."""
    old = raw(OLD / "runs" / "completed")
    config = tmp_path / "config.yaml"
    with canned_server() as server:
        text = (OLD / "config.yaml").read_text()
        config.write_text(text.replace(old["config"]["backend"]["base_url"], server.base_url))
        result = run_cli("run", str(config), "--out", str(tmp_path / "new"), "-q", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    new = raw(tmp_path / "new")
    assert set(new) == set(old) | {"format_version"}
    added_since = {"counts": {"ungrounded_findings"}}
    for key in ("counts", "usage", "timings"):
        assert set(new[key]) == set(old[key]) | added_since.get(key, set()), key
    assert set(new["runs"][0]) == set(old["runs"][0]) and set(new["counts"]["this_attempt"]) \
        == set(old["counts"]["this_attempt"])
    assert {k: new["counts"][k] for k in ("dialogues", "pairs", "dropped_pairs", "sft_rows", "failed_steps")} \
        == {k: old["counts"][k] for k in ("dialogues", "pairs", "dropped_pairs", "sft_rows", "failed_steps")}


def test_shards_written_by_the_old_code_merge_like_the_unsharded_run(tmp_path: Path) -> None:
    shards = [old_copy(f"shard{k}", tmp_path) for k in (0, 1)]
    merged = merge_shards(shards, tmp_path / "merged")
    check_complete(tmp_path / "merged", expected_ids(OLD / "config.yaml"))
    whole = load_manifest(OLD / "runs" / "completed")
    assert merged.status == "completed" and merged.merge is not None and merged.plan is not None
    assert [s.shard for s in merged.merge.shards] == [0, 1] and merged.plan.shard is None
    for key in ("dialogues", "failed", "pairs", "verified_pairs", "with_violation", "dropped_pairs", "sft_rows"):
        assert getattr(merged.counts, key) == getattr(whole.counts, key), key
    usage = [load_manifest(s).usage for s in shards]
    assert merged.usage.calls == sum(u.calls for u in usage) and [r.shard for r in merged.runs] == [0, 1]
    data = raw(tmp_path / "merged")
    assert data["format_version"] == 2 and "shard" not in data["plan"] and "this_attempt" not in data["counts"]
    first = (tmp_path / "merged" / "manifest.json").read_bytes()
    merge_shards(shards, tmp_path / "merged")
    assert (tmp_path / "merged" / "manifest.json").read_bytes() == first  # the same shards, the same bytes


def test_report_export_and_filter_read_an_old_run(tmp_path: Path) -> None:
    run_dir = old_copy("completed", tmp_path)
    report = run_cli("report", str(run_dir), cwd=tmp_path, timeout=300)
    assert report.returncode == 0, report.stderr
    page = (run_dir / "report.html").read_text()
    assert "sparring report: scale-test" in page and "fake-model" in page
    export = run_cli("export", str(run_dir), "--format", "trl-dpo", "--out", str(tmp_path / "dpo"), cwd=tmp_path,
                     timeout=300)
    assert export.returncode == 0, export.stderr
    assert "scale-test" in (tmp_path / "dpo" / "README.md").read_text()
    write_filtered_run(run_dir, tmp_path / "kept", FilterSpec(min_turns=1), embedder=FixedEmbedder({}))
    copy, parent = raw(tmp_path / "kept"), raw(run_dir)
    assert copy["format_version"] == 2 and copy["parent"]["run_dir"] == str(run_dir)
    assert {k: copy["counts"][k] for k in ("dialogues", "pairs", "dropped_pairs", "sft_rows")} \
        == {k: parent["counts"][k] for k in ("dialogues", "pairs", "dropped_pairs", "sft_rows")}
    assert copy["usage"] == parent["usage"] and copy["runs"] == parent["runs"]
    assert "format_version" not in raw(run_dir)  # the parent is only read


async def test_judging_an_old_run_keeps_its_totals_and_writes_the_current_format(tmp_path: Path) -> None:
    run_dir = old_copy("completed", tmp_path)
    before = raw(run_dir)
    summary = await judge_run(run_dir, criteria=["coherence"], overrides=["sampling.judge.logprobs=3"],
                              backend=LogprobBackend({"coherence": {"3": 1.0}}))
    assert summary["scored"] == before["counts"]["dialogues"] == 6
    after = raw(run_dir)
    assert after["format_version"] == 2 and after["judge"]["scored"] == 6 and after["judge"]["usage"]["calls"] == 6
    counted_since = {"ungrounded_findings"}  # counted by this version: judging writes its count too
    assert {k: v for k, v in after["counts"].items() if k not in counted_since} == before["counts"]
    assert after["usage"] == before["usage"]
    assert after["runs"] == before["runs"] and after["timings"]["wall_s"] == before["timings"]["wall_s"]


def _cli_error(run_dir: Path, tmp_path: Path) -> str:
    result = run_cli("stats", str(run_dir), "--no-embeddings", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == "", (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_a_damaged_manifest_is_one_line_naming_the_file_and_the_key(tmp_path: Path) -> None:
    run_dir = old_copy("completed", tmp_path)
    path = run_dir / "manifest.json"
    data = raw(run_dir)
    path.write_text(json.dumps(data)[:-40])
    assert _cli_error(run_dir, tmp_path).startswith(f"error: {path}: (line 1): is not valid JSON")
    path.write_text(json.dumps({**data, "runs": [{**data["runs"][0], "status": "asleep"}]}))
    line = _cli_error(run_dir, tmp_path)
    assert line.startswith(f"error: {path}: runs[0].status") and "'running', 'completed'" in line
    path.write_text(json.dumps({**data, "counts": {**data["counts"], "pairs": "many"}}))
    assert _cli_error(run_dir, tmp_path).startswith(f"error: {path}: counts.pairs")
    path.write_text(json.dumps({**data, "format_version": 3}))
    line = _cli_error(run_dir, tmp_path)
    assert line.startswith(f"error: {path}: format_version") and "newer sparring (manifest format 3" in line
    path.write_text(json.dumps([data]))
    assert "is not a sparring manifest" in _cli_error(run_dir, tmp_path)


def test_a_resume_refuses_a_newer_format_and_leaves_the_directory_as_it_was(tmp_path: Path) -> None:
    run_dir = old_copy("killed", tmp_path)
    path = run_dir / "manifest.json"
    path.write_text(json.dumps({**raw(run_dir), "format_version": 9}))
    files = {p.name: p.read_bytes() for p in run_dir.iterdir()}
    result = run_cli("resume", str(run_dir), "-q", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.strip().startswith(f"error: {path}: format_version")
    assert {p.name: p.read_bytes() for p in run_dir.iterdir()} == files


_KEY = st.text(st.characters(min_codepoint=97, max_codepoint=122), min_size=1, max_size=8)
_VALUE = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.text(max_size=8),
                      lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEY, inner, max_size=3),
                      max_leaves=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.dictionaries(_KEY.map(lambda k: "x_" + k), _VALUE, max_size=4),
       attempt_extra=st.dictionaries(_KEY.map(lambda k: "y_" + k), _VALUE, max_size=3),
       version=st.sampled_from([None, 1, 2]))
def test_keys_this_version_does_not_know_survive_a_read_and_a_write(tmp_path: Path, extra: dict[str, Any],
                                                                     attempt_extra: dict[str, Any],
                                                                     version: int | None) -> None:
    """Property: any old manifest with unknown keys (top level and in an attempt) reads, writes back
    with every unknown key unchanged and every known one as it was, and reads again to the same model."""
    data = json.loads((OLD / "runs" / "completed" / "manifest.json").read_text())
    data = {**data, **extra, "runs": [{**data["runs"][0], **attempt_extra}]}
    if version is not None:
        data["format_version"] = version
    run_dir = tmp_path / f"round-{abs(hash(json.dumps(data, sort_keys=True)))}"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "manifest.json").write_text(json.dumps(data))
    manifest = read_manifest(run_dir)
    assert manifest is not None
    write_manifest(run_dir, manifest)
    written = raw(run_dir)
    assert written == {**data, "format_version": 2}
    assert read_manifest(run_dir) == manifest


def test_a_missing_manifest_and_a_minimal_one() -> None:
    with pytest.raises(InputError, match="holds no manifest.json: not a sparring run directory"):
        load_manifest(OLD)
    minimal = RunManifest.model_validate({"name": "a run", "status": "completed", "runs": []})
    assert minimal.counts.dialogues == 0 and minimal.usage.calls == 0 and minimal.format_version == 2
    dumped = minimal.model_dump(mode="json")
    assert "plan" not in dumped and "merge" not in dumped and "stats_error" not in dumped
