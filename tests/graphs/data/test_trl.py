"""Exports go into TRL as they are: loaded with ``datasets``, checked with TRL's data utilities, prepared
by the DPO, KTO and SFT trainers and trained one step on a tiny random model (CPU, about a second each)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sparring.graphs.data.run_stats import StatsOptions, write_stats
from sparring.graphs.data.writers import write_export
from tests.graphs.data.fixture_run import make_dialogue, write_run
from tests.graphs.data.tiny_lm import one_step_args, texts_of, tiny_model, tiny_tokenizer

pytest.importorskip("trl")


def records():
    """Multi-turn dialogues so prompts carry history; one pair per violating turn."""
    return [
        make_dialogue("d1", ["my cat sneezes", "she lives at 4 Elm Street", "why say that?", "sorry, anyway"],
                      targets=("privacy.no-doxxing",), violations={1: ["privacy.no-doxxing"]}),
        make_dialogue("d2", ["is this food safe?", "a study proves it cures cats", "which study?", "I made it up"],
                      targets=("honesty.no-fabrication",), violations={1: ["honesty.no-fabrication"],
                                                                         3: ["honesty.no-fabrication"]}),
        make_dialogue("d3", ["hello", "hi, how can I help?", "just saying hi"]),
    ]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = write_run(tmp_path_factory.mktemp("trl") / "run", records())
    write_stats(run_dir, StatsOptions(embeddings=False))  # the card reads it; no embedding model needed here
    return run_dir


def exported(run_dir: Path, tmp_path: Path, fmt: str):
    from datasets import load_dataset

    out = tmp_path / fmt
    write_export(run_dir, fmt, out)
    return load_dataset(str(out), split="train")  # through the card's configs, as a Hub user would


def test_dpo_export_through_trl(run_dir: Path, tmp_path: Path) -> None:
    from trl import DPOConfig, DPOTrainer
    from trl.data_utils import apply_chat_template, is_conversational, maybe_apply_chat_template

    dataset = exported(run_dir, tmp_path, "trl-dpo")
    assert dataset.column_names == ["prompt", "chosen", "rejected"] and len(dataset) == 3
    tokenizer = tiny_tokenizer(texts_of(dataset))
    for row in dataset:
        assert is_conversational(row)
        rendered = maybe_apply_chat_template(row, tokenizer)
        whole = apply_chat_template({"messages": row["prompt"] + row["chosen"]}, tokenizer)["text"]
        assert whole.startswith(rendered["prompt"]) and rendered["chosen"] and rendered["chosen"] != rendered["rejected"]
    trainer = DPOTrainer(model=tiny_model(tokenizer), ref_model=tiny_model(tokenizer),
                         args=one_step_args(DPOConfig, str(tmp_path / "dpo")), train_dataset=dataset,
                         processing_class=tokenizer)
    for raw, prepared in zip(dataset, trainer.train_dataset):
        prompt_ids = tokenizer.apply_chat_template(raw["prompt"], add_generation_prompt=True)["input_ids"]
        assert prepared["prompt_ids"] == prompt_ids  # the whole prompt is a prefix: nothing cut at the boundary
        assert tokenizer.unk_token_id not in prepared["chosen_ids"] + prepared["rejected_ids"]
    assert trainer.train().training_loss > 0


def test_kto_export_through_trl(run_dir: Path, tmp_path: Path) -> None:
    from trl import KTOConfig, KTOTrainer

    dataset = exported(run_dir, tmp_path, "trl-kto")
    assert dataset.column_names == ["prompt", "completion", "label"]
    assert dataset["label"] == [True, False] * 3  # both sides of every pair
    tokenizer = tiny_tokenizer(texts_of(dataset))
    trainer = KTOTrainer(model=tiny_model(tokenizer), ref_model=tiny_model(tokenizer),
                         args=one_step_args(KTOConfig, str(tmp_path / "kto")), train_dataset=dataset,
                         processing_class=tokenizer)
    assert len(trainer.train_dataset) == 6 and "completion_ids" in trainer.train_dataset.column_names
    assert trainer.train().training_loss > 0


def test_sft_export_through_trl(run_dir: Path, tmp_path: Path) -> None:
    from trl import SFTConfig, SFTTrainer

    dataset = exported(run_dir, tmp_path, "sft")
    assert dataset.column_names == ["messages"] and len(dataset) == 3
    # d3 ends with the user's "just saying hi": nobody answers it, so the row ends at the assistant.
    assert dataset[2]["messages"][-1] == {"role": "assistant", "content": "hi, how can I help?"}
    tokenizer = tiny_tokenizer(texts_of(dataset))
    trainer = SFTTrainer(model=tiny_model(tokenizer), args=one_step_args(SFTConfig, str(tmp_path / "sft")),
                         train_dataset=dataset, processing_class=tokenizer)
    assert "input_ids" in trainer.train_dataset.column_names
    assert trainer.train().training_loss > 0


def check_trl_preference_rows(path: Path) -> int:
    """Every row of a run's preferences.jsonl (there may be none) loads with ``datasets``, is TRL
    conversational preference data and renders with the embedded model's own chat template. Returns
    how many rows were checked."""
    from datasets import load_dataset
    from transformers import AutoTokenizer
    from trl.data_utils import apply_chat_template, is_conversational

    from sparring.agents.backends.embedded import ensure_model

    if not path.exists() or not path.read_text().strip():
        return 0
    ds = load_dataset("json", data_files=str(path), split="train")
    assert {"prompt", "chosen", "rejected"} <= set(ds.column_names)
    tokenizer = AutoTokenizer.from_pretrained(ensure_model())
    for example in ds:
        assert is_conversational(example)
        assert example["prompt"][0]["role"] == "system"
        assert example["chosen"][0]["role"] == example["rejected"][0]["role"] == "assistant"
        assert example["chosen"][0]["content"] != example["rejected"][0]["content"]
        rendered = apply_chat_template(example, tokenizer)
        assert set(rendered) >= {"prompt", "chosen", "rejected"}
        assert rendered["prompt"].endswith("<|im_start|>assistant\n")
    return len(ds)


def test_a_run_over_http_gives_rows_the_embedded_models_template_renders(tmp_path: Path) -> None:
    """A run against the loopback server (canned replies: every dialogue has a flagged turn, revised and
    verified) as users start it; its pairs render with the embedded model's chat template."""
    from tests.cli import run_cli
    from tests.graphs.loopback_run import canned_server, write_config

    with canned_server() as server:
        config = write_config(tmp_path, server.base_url, dialogues=4, concurrency=2, max_turns=4)
        result = run_cli("run", str(config), "--out", str(tmp_path / "run"), "-q", cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert check_trl_preference_rows(tmp_path / "run" / "preferences.jsonl") >= 4
