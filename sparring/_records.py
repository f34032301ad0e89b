"""``sparring.load_run``: a run directory's records as typed rows, or as a ``datasets.Dataset``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from pydantic import BaseModel, ValidationError

from sparring.agents.domain import Scenario
from sparring.errors import InputError
from sparring.graphs.data.rundata import Row
from sparring.graphs.data.rundata import load_run as read_run_dir
from sparring.graphs.records import DialogueRecord, PreferenceRecord, SFTRecord
from sparring.graphs.runtime.manifest import RunManifest
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SCENARIOS, SFT, STATS

if TYPE_CHECKING:
    import datasets

__all__ = ["RunRecords", "load_run"]

Table = Literal["pairs", "sft", "dialogues"]
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class RunRecords:
    """The records of one run directory, each file's rows as the models that wrote them.

    Example::

        run = sparring.load_run("runs/quickstart")
        for pair in run.pairs:
            print(pair.principle_ids, pair.verified, pair.chosen[0]["content"][:60])
        dpo = run.to_dataset("pairs")  # -> trl.DPOTrainer(..., train_dataset=dpo)
    """

    run_dir: Path
    manifest: RunManifest
    """manifest.json, typed (graphs.runtime.manifest.RunManifest): config (secrets redacted), backends,
    versions, counts, usage, every attempt."""
    dialogues: list[DialogueRecord]
    """dialogues.jsonl, failed dialogues included (``status``, ``error``)."""
    pairs: list[PreferenceRecord]
    """preferences.jsonl: TRL conversational preference rows plus their metadata."""
    sft: list[SFTRecord]
    """sft.jsonl: each dialogue from the judged side, verified revisions applied."""
    scenarios: list[Scenario]
    """scenarios.jsonl."""
    stats: dict[str, Any] | None
    """stats.json (the papers' figures), or None when the run wrote none."""

    @property
    def status(self) -> str:
        """The run's status: ``completed``, ``failed``, ``interrupted``, ``crashed``, ``engine_died`` or ``running``."""
        return self.manifest.status

    def to_dataset(self, table: Table = "pairs") -> datasets.Dataset:
        """One table as a ``datasets.Dataset`` (needs ``pip install 'sparring[hub]'``).

        ``pairs``: preferences.jsonl's rows as they are (``prompt``/``chosen``/``rejected`` and metadata
        columns; what TRL's DPOTrainer takes). ``sft``: sft.jsonl's rows (``messages``). ``dialogues``: the
        dialogues that did not fail, flattened as the ``hf`` export does (``plan`` and ``scores`` as JSON text).
        """
        try:
            from datasets import Dataset
        except ImportError:
            raise InputError("to_dataset needs the 'datasets' package: pip install 'sparring[hub]'") from None
        rows: list[Row]
        if table == "pairs":
            rows = [p.model_dump(mode="json") for p in self.pairs]
        elif table == "sft":
            rows = [r.model_dump(mode="json") for r in self.sft]
        elif table == "dialogues":
            from sparring.graphs.data.exports import extract_dialogue_table

            rows = extract_dialogue_table(d.model_dump(mode="json") for d in self.dialogues if d.status == "ok")
        else:
            raise ValueError(f"unknown table {table!r}: pairs, sft or dialogues")
        return Dataset.from_list(rows)


def _typed(model: type[M], rows: list[Row], path: Path) -> list[M]:
    out = []
    for number, row in enumerate(rows, start=1):
        try:
            out.append(model.model_validate(row))
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            where = ".".join(str(p) for p in err["loc"]) or "row"
            raise InputError(f"row {number} does not match {model.__name__}: {where}: {err['msg']}",
                             source=str(path)) from None
    return out


def load_run(run_dir: str | Path) -> RunRecords:
    """Open a run directory (finished, or still being written: torn last lines are skipped).

    Raises ``sparring.errors.InputError`` when it is not a sparring run directory or a row does not read.
    """
    data = read_run_dir(Path(run_dir))
    stats_path = data.dir / STATS
    stats = None
    if stats_path.is_file():
        import json

        try:
            stats = json.loads(stats_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"is not valid JSON ({exc.msg})", source=str(stats_path), line=exc.lineno) from None
    return RunRecords(
        run_dir=data.dir, manifest=data.manifest,
        dialogues=_typed(DialogueRecord, data.dialogues, data.dir / DIALOGUES),
        pairs=_typed(PreferenceRecord, data.pairs, data.dir / PREFERENCES),
        sft=_typed(SFTRecord, data.sft, data.dir / SFT),
        scenarios=_typed(Scenario, data.scenarios, data.dir / SCENARIOS), stats=stats)
