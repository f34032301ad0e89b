"""A run directory's records read back as plain row dicts (the JSONL files' own shape)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.errors import InputError
from sparring.graphs.runtime.manifest import RunManifest, load_manifest
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SCENARIOS, SFT, iter_jsonl

Row = dict[str, Any]


@dataclass
class RunData:
    """Every record file of one run directory, as rows."""

    dir: Path
    manifest: RunManifest
    dialogues: list[Row] = field(default_factory=list)
    """All dialogue rows, failed ones included (``status``)."""
    pairs: list[Row] = field(default_factory=list)
    sft: list[Row] = field(default_factory=list)
    scenarios: list[Row] = field(default_factory=list)

    @property
    def ok_dialogues(self) -> list[Row]:
        return [d for d in self.dialogues if d.get("status", "ok") == "ok"]

    def principle_categories(self) -> dict[str, str]:
        """Principle id -> category, from the principles the manifest records."""
        return self.manifest.principle_categories()


def read_rows(path: Path) -> list[Row]:
    """Rows of a JSONL file; a line that is not JSON is bad input naming the file and line (``iter_jsonl``)."""
    return list(iter_jsonl(path))


def load_run(run_dir: Path) -> RunData:
    """The records of ``run_dir``; InputError when it is not a sparring run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise InputError("is not a directory", source=str(run_dir))
    manifest = load_manifest(run_dir)
    return RunData(dir=run_dir, manifest=manifest, dialogues=read_rows(run_dir / DIALOGUES),
                   pairs=read_rows(run_dir / PREFERENCES), sft=read_rows(run_dir / SFT),
                   scenarios=read_rows(run_dir / SCENARIOS))
