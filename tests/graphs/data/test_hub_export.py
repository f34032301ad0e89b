"""Datasets the Hub loads: every export folder of a real run (the pipeline on the loopback server) loads
with ``datasets.load_dataset(FOLDER)`` as it is, each config holding the exported rows; the card's YAML
header fits the Hub's dataset card spec (licenses, size and task categories, configs naming files that
exist) and ``huggingface_hub.DatasetCardData`` reads it; the license is the run's; the card names only
the stages that ran."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import sparring
from sparring.graphs.data.exports import FORMATS
from sparring.graphs.data.hub import check_card_header, hub_licenses
from sparring.graphs.data.writers import write_export
from sparring.graphs.runtime.store import iter_jsonl
from tests.graphs.data.fixture_run import make_dialogue, write_run
from tests.graphs.loopback_run import canned_server, write_config

datasets = pytest.importorskip("datasets")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("hub")
    with canned_server() as server:
        config = write_config(folder, server.base_url, dialogues=4, concurrency=4)
        result = sparring.run(config, out=folder / "run", progress=False,
                              overrides={"dialogue.summaries": True, "license": "cc-by-4.0"})
    assert result.status == "completed"
    return result.run_dir


def header_of(card: Path) -> dict:
    text = card.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_export_folder_loads_by_path_and_its_card_fits_the_hub(run_dir: Path, tmp_path: Path,
                                                                     fmt: str) -> None:
    from huggingface_hub import DatasetCard, DatasetCardData

    out = tmp_path / fmt
    result = write_export(run_dir, fmt, out)
    header = header_of(out / "README.md")
    assert check_card_header(header, out) == []
    assert header["license"] == "cc-by-4.0" and header["license"] in hub_licenses()
    card = DatasetCard.load(out / "README.md")
    assert isinstance(card.data, DatasetCardData) and card.data.license == "cc-by-4.0"
    assert card.data.to_dict()["configs"] == header["configs"]
    tables = {t.name: t for t in result.tables}
    for config in header["configs"]:
        name = config["config_name"]
        table = tables["train" if name == "default" else name]
        # A cache of the test's own: datasets keys local files by folder name and mtime, not by path.
        loaded = datasets.load_dataset(str(out), name, split="train", cache_dir=str(tmp_path / "cache"))
        assert loaded.num_rows == len(table.rows) > 0
        assert json.loads(json.dumps(loaded[0], default=str)) == json.loads(json.dumps(table.rows[0], default=str))
    plain = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "cache"))  # no config name: the default
    first = header["configs"][0]
    assert plain["train"].num_rows == len(tables["train" if first["config_name"] == "default"
                                                  else first["config_name"]].rows)


def test_the_hf_folder_still_loads_from_disk(run_dir: Path, tmp_path: Path) -> None:
    write_export(run_dir, "hf", tmp_path / "hf")
    saved = datasets.load_from_disk(str(tmp_path / "hf"))
    assert sorted(saved) == ["dialogues", "preferences", "sft"]
    assert saved["preferences"]["id"] == [p["id"] for p in iter_jsonl(run_dir / "preferences.jsonl")]


def test_the_card_names_the_stages_that_ran_and_no_other(run_dir: Path, tmp_path: Path) -> None:
    write_export(run_dir, "sft", tmp_path / "revised")
    revised = (tmp_path / "revised" / "README.md").read_text()
    assert "ran (planner, personas, critic, reviser, verifier, summarizer) ran on" in revised
    assert "A reviser rewrote each violating turn" in revised and "judge" not in revised.split("## Models")[1] \
        .split("##")[0]
    assert "| reviser |" in revised and "| judge |" not in revised and "| subtopics |" not in revised

    clean = write_run(tmp_path / "clean", [make_dialogue("c1", ["hello", "hi there"]),
                                          make_dialogue("c2", ["how are you", "fine"])])
    write_export(clean, "sft", tmp_path / "clean-sft")
    card = (tmp_path / "clean-sft" / "README.md").read_text()
    assert "ran (planner, personas, critic) ran on" in card
    assert "reviser" not in card and "verifier" not in card and "No turn was found violating" in card


def test_the_license_comes_from_the_run_and_bad_ids_are_bad_input(run_dir: Path, tmp_path: Path) -> None:
    from sparring.errors import InputError

    write_export(run_dir, "trl-dpo", tmp_path / "mit", license_id="mit")
    assert header_of(tmp_path / "mit" / "README.md")["license"] == "mit"
    with pytest.raises(InputError, match="not a Hugging Face Hub license id"):
        write_export(run_dir, "trl-dpo", tmp_path / "bad", license_id="MIT License")
    assert not (tmp_path / "bad").exists()
    old = write_run(tmp_path / "old", [make_dialogue("o1", ["hi", "there"], violations={1: ["privacy.no-doxxing"]})])
    write_export(old, "trl-dpo", tmp_path / "old-dpo")  # a run from before the key: the default
    assert header_of(tmp_path / "old-dpo" / "README.md")["license"] == "apache-2.0"


def test_the_header_check_finds_what_the_hub_would_refuse(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n")
    good = {"license": "apache-2.0", "size_categories": ["n<1K"], "task_categories": ["text-generation"],
            "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "train.jsonl"}]}]}
    assert check_card_header(good, tmp_path) == []
    bad = {**good, "license": "Apache 2", "size_categories": ["small"], "task_categories": ["chatting"],
           "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "missing.jsonl"}]}]}
    assert check_card_header(bad, tmp_path) == [
        "license: 'Apache 2' is not a Hub license id", "size_categories: 'small' is not one of the Hub's values",
        "task_categories: 'chatting' is not one of the Hub's values",
        "configs[0] (default): no file matches 'missing.jsonl'"]
    assert check_card_header({**good, "license": "other"}) == ["license: other needs license_name (and license_link)"]
