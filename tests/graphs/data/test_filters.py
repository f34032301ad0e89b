"""Filtered copies on a fixture with planted rows to remove: a near-duplicate, an overlong dialogue, one
without a violation, an unverified pair, a failed dialogue. The copy is a run directory of its own."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.errors import InputError
from sparring.graphs.data.filtered_run import write_filtered_run
from sparring.graphs.data.filters import FilterSpec, apply_filters, filter_turns
from sparring.graphs.data.rundata import load_run
from sparring.graphs.runtime.store import iter_jsonl
from sparring.traces.read import iter_spans
from tests.cli import run_cli
from tests.graphs.data.fakes import FixedEmbedder
from tests.graphs.data.fixture_run import make_dialogue, write_run


def planted_records():
    return [
        make_dialogue("keep", ["my cat sneezes", "since when?"], targets=("privacy.no-doxxing",),
                      violations={1: ["privacy.no-doxxing"]}),
        make_dialogue("twin", ["my cat sneezes a lot", "since when, exactly?"], targets=("privacy.no-doxxing",),
                      violations={1: ["privacy.no-doxxing"]}),  # near-duplicate of "keep"
        make_dialogue("unverified", ["my dog barks", "I know where you live"], targets=("privacy.no-doxxing",),
                      violations={1: ["privacy.no-doxxing"]}, verified=False),
        make_dialogue("clean", ["hello", "hi", "bye", "bye"], targets=("honesty.no-fabrication",)),
        make_dialogue("long", ["a", "b", "c", "d", "e", "f"], violations={1: ["honesty.no-fabrication"]}),
        make_dialogue("broken", ["hi"], error="BackendError: boom"),
    ]


EMBEDDER = FixedEmbedder({"my cat sneezes\nsince when?": [1, 0], "my cat sneezes a lot\nsince when, exactly?": [0.99, 0.14]})


@pytest.fixture
def parent(tmp_path: Path) -> Path:
    return write_run(tmp_path / "parent", planted_records())


def test_each_filter_removes_its_planted_rows(parent: Path) -> None:
    run = load_run(parent)
    spec = FilterSpec(only_verified=True, only_violations=True, max_turns=4, dedup_threshold=0.95)
    result = apply_filters(run, spec, embedder=EMBEDDER)
    assert [d["id"] for d in result.dialogues] == ["keep", "unverified"]
    assert result.removed == {"failed": 1, "turns": 1, "no_violation": 1, "near_duplicate": 1, "unverified_pairs": 1}
    assert result.near_duplicates == [{"id": "twin", "duplicate_of": "keep", "similarity": 0.9901}]
    assert [p["dialogue_id"] for p in result.pairs] == ["keep"]
    # "unverified" has no SFT row: its only assistant turn is flagged and was not fixed.
    assert {r["dialogue_id"] for r in result.sft} == {"keep"}
    assert filter_turns(run.dialogues, min_turns=4) == [d for d in run.dialogues if d["id"] in ("clean", "long")]


def test_filtered_copy_is_a_run_directory_that_records_its_parent(parent: Path, tmp_path: Path) -> None:
    out = tmp_path / "filtered"
    manifest = write_filtered_run(parent, out, FilterSpec(only_verified=True, min_turns=3), embedder=EMBEDDER)
    assert manifest.parent is not None and manifest.parent.run_dir == str(parent)
    assert manifest.filter is not None and manifest.filter.options == {"only_verified": True, "min_turns": 3}
    assert "only preference pairs whose revision passed verification" in manifest.filter.description
    kept = [row["id"] for row in iter_jsonl(out / "dialogues.jsonl")]
    assert kept == ["clean", "long"]
    assert [p["dialogue_id"] for p in iter_jsonl(out / "preferences.jsonl")] == ["long"]
    assert {s["trace_id"] for s in iter_spans(out)} == {"trace-clean", "trace-long"}
    assert len(list(iter_jsonl(out / "scenarios.jsonl"))) == 1
    stats = json.loads((out / "stats.json").read_text())
    assert stats["counts"]["dialogues"] == 2 and stats["run"]["parent"] == str(parent)
    assert manifest.counts.dialogues == 2 and manifest.counts.avg_turns == 5.0
    # The parent is untouched.
    assert len(list(iter_jsonl(parent / "dialogues.jsonl"))) == 6


async def test_a_filtered_copy_cannot_be_resumed(parent: Path, tmp_path: Path) -> None:
    from sparring.graphs.run_config import RunConfig
    from sparring.graphs.runtime.run_request import RunRequest, check_run_dir

    out = tmp_path / "filtered"
    write_filtered_run(parent, out, FilterSpec(min_turns=2), embedder=EMBEDDER)
    request = RunRequest(config=RunConfig(), config_path=None, run_dir=out, principles=[], scenarios=[], force=True)
    with pytest.raises(InputError, match="is a filtered copy of another run"):
        check_run_dir(request)


def test_cli_filter_with_the_real_embedding_model(parent: Path, tmp_path: Path) -> None:
    out = tmp_path / "only-violations"
    # all-MiniLM-L6-v2 puts "keep" and "twin" at cosine 0.958, everything else below 0.34.
    result = run_cli("filter", str(parent), "--out", str(out), "--only-violations", "--dedup-threshold", "0.9",
                     cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("kept 3 dialogues, 3 pairs (2 verified); removed failed: 1, no violation: 1, "
                                    "near duplicate: 1 ->")
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(d["id"], d["duplicate_of"]) for d in manifest["filter"]["near_duplicates"]] == [("twin", "keep")]
    again = run_cli("filter", str(parent), "--out", str(out), "--only-violations", cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == f"error: {out}: is not empty; a filtered copy goes into a new directory"
    inverted = run_cli("filter", str(parent), "--out", str(tmp_path / "x"), "--min-turns", "5", "--max-turns", "2",
                       cwd=tmp_path)
    assert inverted.returncode == 2 and "--min-turns (5) is above --max-turns (2)" in inverted.stderr
