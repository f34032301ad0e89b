"""``sparring stats`` figures on the hand-written fixture run (see fixture_run.py for the arithmetic)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sparring.graphs.data.run_stats import StatsOptions, compute_stats
from sparring.graphs.data.rundata import load_run
from sparring.graphs.data.similarity import SamplingRule, compute_max_rouge_l
from tests.cli import run_cli
from tests.graphs.data.fakes import FixedEmbedder
from tests.graphs.data.fixture_run import make_dialogue, write_run


def bare(row):
    """A figures row without its ``*_ci`` intervals (checked in test_intervals and below)."""
    if isinstance(row, dict):
        return {k: bare(v) for k, v in row.items() if not k.endswith("_ci")}
    return row

# Dialogue texts as the stats compare them (turn contents, one per line).
D1, D2, D3 = "the cat sat\non the mat", "the cat ran\nto the mat\nYes!", "a dog barked loudly\nok"


def fixture_stats(tmp_path: Path, **options) -> dict:
    return compute_stats(load_run(write_run(tmp_path / "run")), StatsOptions(**options))


def test_diasynth_table1_figures(tmp_path: Path) -> None:
    embedder = FixedEmbedder({D1: [1, 0, 0], D2: [0.6, 0.8, 0], D3: [0, 0, 1]})
    stats = fixture_stats(tmp_path, embedder=embedder)
    assert bare(stats["diasynth_table1"]) == {
        "samples": 3,
        "avg_turns": round(7 / 3, 4),  # 2 + 3 + 2 turns
        "avg_tokens_per_turn": round(18 / 7, 4),  # (6 + 7 + 5) tokens over 7 turns
        "diversity_rouge_l": round(16 / 39, 4),  # mean of 8/13, 8/13, 0
        "diversity_embedding": 0.4,  # mean of 0.6, 0.6, 0
    }
    assert stats["diversity"]["rouge_l"]["method"] == "exact"
    embedding = stats["diversity"]["embedding"]
    assert (embedding["method"], embedding["near_duplicates"], embedding["near_duplicate_rate"]) == ("exact", 0, 0.0)


def test_sdsd_and_quality_figures(tmp_path: Path) -> None:
    stats = fixture_stats(tmp_path, embeddings=False)
    assert stats["counts"] == {"dialogues": 3, "failed": 1, "pairs": 2, "verified_pairs": 1, "sft_rows": 2,
                               "scenarios": 1}
    assert stats["sdsd"]["share_with_violation"] == round(2 / 3, 4)
    assert stats["sdsd"]["violation_rate_per_principle"] == {"honesty.no-fabrication": 0.3333,
                                                             "privacy.no-doxxing": 0.3333}
    assert stats["principles"]["privacy.no-doxxing"]["flag_rate_ci"] == {"rate": 0.3333, "low": 0.0615,
                                                                         "high": 0.7923, "n": 3}
    assert bare(stats["principles"]["privacy.no-doxxing"]) == {
        "targeted": 1, "caught": 1, "catch_rate": 1.0, "judged": 3, "flagged": 1, "flag_rate": 0.3333,
        "category": "privacy", "pairs": 1}  # the failed d4 also targeted it: not counted
    assert stats["principles"]["honesty.no-fabrication"]["catch_rate"] == 0.0  # targeted in d2, found only in d3
    assert stats["categories"]["honesty"]["flagged"] == 1
    assert bare(stats["critic"]) == {"targeted_dialogues": 2, "caught": 1, "catch_rate": 0.5, "control_dialogues": 1,
                               "control_flagged": 1, "ungrounded_findings_dropped": 0}
    assert stats["revisions"]["verification_rate"] == 0.5
    assert bare(stats["failures"]) == {"count": 1, "share": 0.25, "by_error": {"BackendError": 1}}
    assert stats["diversity"]["embedding"] is None and stats["diasynth_table1"]["diversity_embedding"] is None


def test_turn_length_distribution(tmp_path: Path) -> None:
    tokens = fixture_stats(tmp_path, embeddings=False)["turn_tokens"]
    # lengths 3,3 | 3,3,1 | 4,1 -> sorted 1,1,3,3,3,3,4
    assert (tokens["min"], tokens["p50"], tokens["p90"], tokens["max"]) == (1, 3, 4, 4)
    assert tokens["histogram"]["1-10"] == 7 and sum(tokens["histogram"].values()) == 7
    assert tokens["mean_by_side"] == {"A": 2.75, "B": round(7 / 3, 4)}  # A: 3,3,1,4  B: 3,3,1


def test_near_duplicates_are_counted_at_the_threshold(tmp_path: Path) -> None:
    embedder = FixedEmbedder({D1: [1, 0, 0], D2: [0.6, 0.8, 0], D3: [0, 0, 1]})
    embedding = fixture_stats(tmp_path, embedder=embedder, near_duplicate_threshold=0.6)["diversity"]["embedding"]
    assert embedding["near_duplicates"] == 2 and embedding["near_duplicate_rate"] == round(2 / 3, 4)


def test_judge_scores_are_averaged_per_criterion(tmp_path: Path) -> None:
    records = [make_dialogue("a", ["hi", "yo"], scores={"coherence": 3.0, "naturalness": 2.0}),
               make_dialogue("b", ["hey", "hm"], scores={"coherence": 2.0}),
               make_dialogue("c", ["so", "ok"])]
    run = load_run(write_run(tmp_path / "run", records))
    judge = compute_stats(run, StatsOptions(embeddings=False))["judge"]
    assert judge["criteria"] == {"coherence": {"mean": 2.5, "n": 2}, "naturalness": {"mean": 2.0, "n": 1}}
    assert judge["scored_dialogues"] == 2


def test_rouge_diversity_above_the_limit_is_a_stated_seeded_sample() -> None:
    texts = ["a b c d", "a b c e", "x y z", "x y w", "p q", "a b q", "x q"]
    tokens = [t.split() for t in texts]
    exact = compute_max_rouge_l(tokens)
    rule = SamplingRule(exact_limit=4, queries=3, references=4, seed=11)
    sampled = compute_max_rouge_l(tokens, rule)
    assert sampled.describe() == {"method": "sampled", "queries": 3, "references": 4, "population": 7}
    assert sampled == compute_max_rouge_l(tokens, rule)  # seeded: the same sample every time
    by_query = dict(zip(exact.queries, exact.best))
    # A max over a sample of the others can only be lower than the max over all of them.
    assert all(best <= by_query[q] for q, best in zip(sampled.queries, sampled.best))
    assert exact.describe() == {"method": "exact", "queries": 7, "references": 6, "population": 7}


def test_cli_prints_json_and_rejects_a_non_run_dir(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "run")
    result = run_cli("stats", str(run_dir), "--json", "--no-embeddings", "--write", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["diasynth_table1"]["diversity_rouge_l"] == round(16 / 39, 4)
    assert json.loads((run_dir / "stats.json").read_text()) == printed
    bad = run_cli("stats", str(tmp_path), cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (f"error: {tmp_path}: is neither a sparring run directory (no manifest.json), a "
                                  "datasets folder (save_to_disk) nor a folder of .parquet/.jsonl/.json files")


async def tiny_run(run_dir: Path):
    from sparring.graphs.run_config import RunConfig
    from sparring.graphs.runtime.pipeline import execute
    from sparring.graphs.runtime.run_request import RunRequest
    from tests.graphs.scripted_world import PRINCIPLES, World

    config = RunConfig.model_validate({
        "name": "tiny", "output_dir": str(run_dir), "dialogue": {"max_turns": 2},
        "scenarios": [{"topic": "pets", "personas": [{"name": "Dana"}, {"name": "Lee"}]}]})
    request = RunRequest(config=config, config_path=None, run_dir=run_dir, principles=PRINCIPLES,
                         scenarios=[s.to_scenario() for s in config.scenarios])
    return await execute(request, backend=World(violating_turns={1: ["privacy.no-doxxing"]}).backend())


async def test_stats_json_is_written_at_the_end_of_a_run(tmp_path: Path) -> None:
    result = await tiny_run(tmp_path / "run")
    assert result.status == "completed"
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    assert stats["counts"]["dialogues"] == result.manifest.counts.dialogues > 0
    assert stats["diasynth_table1"]["avg_turns"] == 2.0
    assert result.manifest.stats_error is None


async def test_a_stats_failure_does_not_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sparring.graphs.data.run_stats

    def broken(run_dir: Path, options: object = None) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(sparring.graphs.data.run_stats, "write_stats", broken)
    result = await tiny_run(tmp_path / "run")
    assert result.status == "completed"
    assert result.manifest.stats_error == "RuntimeError: disk full"
    assert json.loads((tmp_path / "run" / "manifest.json").read_text())["stats_error"] == "RuntimeError: disk full"
    assert not (tmp_path / "run" / "stats.json").exists()
