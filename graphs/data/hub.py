"""What the Hugging Face Hub accepts in a dataset card's YAML header, checked offline.

The lists follow the Hub's own documents: licenses from
https://huggingface.co/docs/hub/repositories-licenses (``hub_licenses.txt`` beside this module), task
ids from huggingface.js ``packages/tasks/src/pipelines.ts``, size categories and the other fields from
the dataset card spec (hub-docs ``datasetcard.md``) and ``huggingface_hub.DatasetCardData``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

__all__ = ["SIZE_CATEGORIES", "check_card_header", "hub_licenses"]

SIZE_CATEGORIES = ("n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B",
                   "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T", "other")
TASK_CATEGORIES = (
    "text-classification", "token-classification", "table-question-answering", "question-answering",
    "zero-shot-classification", "translation", "summarization", "feature-extraction", "text-generation",
    "fill-mask", "sentence-similarity", "text-to-speech", "text-to-audio", "automatic-speech-recognition",
    "audio-to-audio", "audio-classification", "audio-text-to-text", "voice-activity-detection",
    "depth-estimation", "image-classification", "object-detection", "image-segmentation", "text-to-image",
    "image-to-text", "image-to-image", "image-to-video", "unconditional-image-generation", "video-classification",
    "reinforcement-learning", "robotics", "tabular-classification", "tabular-regression", "tabular-to-text",
    "table-to-text", "multiple-choice", "text-ranking", "text-retrieval", "time-series-forecasting",
    "text-to-video", "image-text-to-text", "image-text-to-image", "image-text-to-video",
    "visual-question-answering", "document-question-answering", "zero-shot-image-classification", "graph-ml",
    "mask-generation", "zero-shot-object-detection", "text-to-3d", "image-to-3d", "image-feature-extraction",
    "video-text-to-text", "keypoint-detection", "visual-document-retrieval", "any-to-any", "video-to-video",
    "other")
CREATORS = ("found", "crowdsourced", "expert-generated", "machine-generated", "no-annotation", "other")
_LISTS = {"size_categories": SIZE_CATEGORIES, "task_categories": TASK_CATEGORIES,
          "annotations_creators": CREATORS, "language_creators": CREATORS,
          "source_datasets": None, "tags": None, "task_ids": None, "language": None}


@cache
def hub_licenses() -> frozenset[str]:
    """The license ids a Hub card's ``license:`` may name."""
    text = resources.files(__package__).joinpath("hub_licenses.txt").read_text(encoding="utf-8")
    return frozenset(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def _strings(value: Any) -> list[str] | None:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def _check_configs(configs: Any, folder: Path | None) -> list[str]:
    if not isinstance(configs, list) or not configs:
        return ["configs: a non-empty list of {config_name, data_files}"]
    problems, names = [], set()
    for i, config in enumerate(configs):
        name = config.get("config_name") if isinstance(config, dict) else None
        if not isinstance(name, str) or not name:
            problems.append(f"configs[{i}]: config_name missing")
            continue
        if name in names:
            problems.append(f"configs[{i}]: config_name {name!r} repeated")
        names.add(name)
        if "default" in config and not isinstance(config["default"], bool):
            problems.append(f"configs[{i}] ({name}): default must be true or false")
        files = config.get("data_files")
        if not isinstance(files, list) or not files:
            problems.append(f"configs[{i}] ({name}): data_files must list {{split, path}} entries")
            continue
        for entry in files:
            if not isinstance(entry, dict) or not isinstance(entry.get("split"), str) or "path" not in entry:
                problems.append(f"configs[{i}] ({name}): data_files entry {entry!r} is not {{split, path}}")
                continue
            if folder is not None:
                for pattern in _strings(entry["path"]) or []:
                    found = [p for p in folder.rglob("*") if p.is_file()
                             and fnmatch.fnmatch(p.relative_to(folder).as_posix(), pattern)]
                    if not found:
                        problems.append(f"configs[{i}] ({name}): no file matches {pattern!r}")
    if sum(bool(c.get("default")) for c in configs if isinstance(c, dict)) > 1:
        problems.append("configs: more than one default")
    return problems


def check_card_header(header: Mapping[str, Any], folder: Path | None = None) -> list[str]:
    """What is wrong with a dataset card's YAML header by the Hub's spec ([] when nothing is); with
    ``folder``, every ``configs`` data file pattern must match a file in it."""
    problems = []
    license_id = header.get("license")
    given: list[Any] = _strings(license_id) or [license_id]
    problems += [f"license: {lic!r} is not a Hub license id" for lic in given if lic not in hub_licenses()]
    if license_id == "other" and not header.get("license_name"):
        problems.append("license: other needs license_name (and license_link)")
    for key, allowed in _LISTS.items():
        if key not in header:
            continue
        values = _strings(header[key])
        if values is None:
            problems.append(f"{key}: a list of strings")
        elif allowed is not None:
            problems += [f"{key}: {v!r} is not one of the Hub's values" for v in values if v not in allowed]
    if "pretty_name" in header and not isinstance(header["pretty_name"], str):
        problems.append("pretty_name: a string")
    if "configs" in header:
        problems += _check_configs(header["configs"], folder)
    return problems
