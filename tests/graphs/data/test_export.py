"""``sparring export``: planted bad pairs are listed with their reasons and stop the export (or are
skipped with --skip-invalid); every format loads with ``datasets``; the card states how the data was made."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import pytest

from sparring.graphs.data.run_stats import StatsOptions, write_stats
from sparring.graphs.data.writers import write_export
from sparring.graphs.runtime.store import iter_jsonl
from tests.cli import run_cli
from tests.graphs.data.fixture_run import make_dialogue, write_jsonl, write_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    records = [
        make_dialogue("d1", ["the cat sat", "on the mat"], targets=("privacy.no-doxxing",),
                      violations={1: ["privacy.no-doxxing"]}),
        make_dialogue("d2", ["a dog barked", "loudly", "why?", "no idea"], violations={1: ["honesty.no-fabrication"]},
                      verified=False),
    ]
    records[0][0].summary = "Dana talks about a cat."
    run_dir = write_run(tmp_path / "run", records)
    write_stats(run_dir, StatsOptions(embeddings=False))
    return run_dir


def plant_bad_pairs(run_dir: Path) -> None:
    """Three broken copies of the first pair after the two good ones."""
    pairs = list(iter_jsonl(run_dir / "preferences.jsonl"))
    empty, same, tampered = (copy.deepcopy(pairs[0]) for _ in range(3))
    empty.update(id="empty", chosen=[{"role": "assistant", "content": ""}])
    same.update(id="same", chosen=same["rejected"])
    tampered["id"] = "tampered"
    tampered["prompt"][1]["content"] = "the cat flew"
    write_jsonl(run_dir / "preferences.jsonl", [*pairs, empty, same, tampered])


def export_cli(run_dir: Path, *args: str):
    env_token = os.environ.pop("HF_TOKEN", None)  # the push test must see no token, whatever the machine has
    try:
        return run_cli("export", str(run_dir), *args, cwd=run_dir.parent)
    finally:
        if env_token is not None:
            os.environ["HF_TOKEN"] = env_token


def test_invalid_rows_are_listed_and_nothing_is_written(run_dir: Path) -> None:
    plant_bad_pairs(run_dir)
    out = run_dir.parent / "dpo"
    result = export_cli(run_dir, "--format", "trl-dpo", "--out", str(out))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    # d2's pair: its revision failed the verifier, and unverified pairs are exported only when asked.
    assert lines.pop(0).endswith("): unverified: its revision did not pass the verifier (--include-unverified "
                                 "exports it)")
    assert lines == [
        "invalid: row 2 (empty): chosen message 0 (assistant) is empty",
        "invalid: row 3 (same): chosen and rejected are the same text",
        "invalid: row 4 (tampered): prompt is not a prefix of its dialogue: message 0 differs "
        "(1 messages vs the dialogue's 1 before turn 1)",
        "export: 4 row(s) failed validation; nothing written (--skip-invalid writes the valid rows)",
    ]
    assert not out.exists()


def test_skip_invalid_writes_the_valid_rows_and_says_so(run_dir: Path) -> None:
    plant_bad_pairs(run_dir)
    out = run_dir.parent / "kto"
    result = export_cli(run_dir, "--format", "trl-kto", "--out", str(out), "--skip-invalid", "--include-unverified")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("exported trl-kto (train: 4 rows; 3 skipped)")
    assert len(result.stderr.splitlines()) == 3 and result.stderr.startswith("skipped: row 2 (empty)")
    rows = list(iter_jsonl(out / "train.jsonl"))
    assert [r["label"] for r in rows] == [True, False, True, False]
    card = (out / "README.md").read_text()
    assert "5 checked, 4 written. 3 failed and were left out" in card  # 5 pairs checked; 2 valid -> 4 KTO rows
    assert "- row 3 (same): chosen and rejected are the same text" in card


def test_bad_input_exits_2(run_dir: Path) -> None:
    push = export_cli(run_dir, "--format", "trl-dpo", "--push-to-hub", "me/data")
    assert push.returncode == 2
    assert push.stderr.strip() == ("error: --push-to-hub needs a Hugging Face token in the HF_TOKEN environment "
                                   "variable (a write token from https://huggingface.co/settings/tokens)")
    taken = run_dir.parent / "taken"
    taken.mkdir()
    (taken / "x").write_text("")
    busy = export_cli(run_dir, "--format", "sft", "--out", str(taken))
    assert busy.returncode == 2 and "exists and is not an empty directory" in busy.stderr
    neither = export_cli(run_dir, "--format", "sft")
    assert neither.returncode == 2 and neither.stderr.strip() == "error: give --out PATH, --push-to-hub REPO, or both"


def test_hf_and_parquet_hold_three_tables(run_dir: Path, tmp_path: Path) -> None:
    from datasets import load_dataset, load_from_disk

    write_export(run_dir, "hf", tmp_path / "hf", include_unverified=True)
    saved = load_from_disk(str(tmp_path / "hf"))
    assert sorted(saved) == ["dialogues", "preferences", "sft"]
    assert saved["preferences"]["verified"] == [True, False]
    assert json.loads(saved["dialogues"][0]["scores"]) == {} and saved["dialogues"]["turns"] == [2, 4]
    write_export(run_dir, "parquet", tmp_path / "pq", include_unverified=True)
    prefs = load_dataset(str(tmp_path / "pq"), "preferences", split="train")  # the card's configs
    assert prefs["id"] == saved["preferences"]["id"]
    assert load_dataset(str(tmp_path / "pq"), "dialogues", split="train")["id"] == ["d1", "d2"]


def test_summarization_rows_and_the_card(run_dir: Path, tmp_path: Path) -> None:
    write_export(run_dir, "summarization", tmp_path / "sum")
    assert list(iter_jsonl(tmp_path / "sum" / "train.jsonl")) == [
        {"dialogue": "Dana: the cat sat\nAI assistant: on the mat", "summary": "Dana talks about a cat."}]
    card = (tmp_path / "sum" / "README.md").read_text()
    assert card.startswith("---\nlicense: apache-2.0\n")  # the run's license: the default, for a run from before the key
    for fact in ("**tiny-test-model** via `scripted`", "`privacy.no-doxxing` | privacy | 1 | 100.0% | 50.0% | 1",
                 "| 2 | 3.0 | 2.1667 |", "## How the data was made\n\n1. Scenarios (1)", "task_categories:\n- summarization",
                 "path: train.jsonl"):  # Table 1 row: 2 dialogues, (2+4)/2 turns, 13 tokens / 6 turns
        assert fact in card, fact


def test_push_to_hub_sends_each_table_and_keeps_the_hub_metadata(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets
    import huggingface_hub

    pushed: list[tuple] = []
    monkeypatch.setenv("HF_TOKEN", "hf_test")
    monkeypatch.setattr(datasets.Dataset, "push_to_hub",
                        lambda self, repo, **kw: pushed.append(("data", repo, kw["config_name"], len(self))))

    def load(repo: str, token: str):
        return huggingface_hub.DatasetCard("---\nconfigs:\n- config_name: sft\ndataset_info: {}\n---\nhub text")

    monkeypatch.setattr(huggingface_hub.DatasetCard, "load", staticmethod(load))
    monkeypatch.setattr(huggingface_hub.DatasetCard, "push_to_hub",
                        lambda self, repo, token: pushed.append(("card", repo, self)))
    result = write_export(run_dir, "hf", None, push_to="me/data", include_unverified=True)
    assert result.pushed_to == "me/data"
    assert pushed[:3] == [("data", "me/data", "preferences", 2), ("data", "me/data", "sft", 1),
                          ("data", "me/data", "dialogues", 2)]
    card = pushed[3][2]
    assert card.data.configs == [{"config_name": "sft"}] and card.data.license == "apache-2.0"
    assert "## How the data was made" in card.text and "hub text" not in card.text
