"""``sparring export``: validated tables written as files (or pushed to the Hub) with their dataset card.

Nothing is written when a row fails validation, unless ``skip_invalid`` asks
for the valid rows only; either way every failing row is reported with why.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sparring.errors import InputError, InvalidRows
from sparring.graphs.runtime.manifest import RunManifest
from sparring.graphs.runtime.runlock import LOCK_FILE, RunDirLock
from sparring.graphs.runtime.store import STATS

from .dataset_card import render_card
from .exports import FORMATS, JSONL_FORMATS, TABLE_FORMATS, ExportTable, build_export
from .run_stats import compute_stats
from .rundata import RunData, load_run
from .validate import Problem

CARD = "README.md"
TOKEN_ENV = "HF_TOKEN"


@dataclass
class ExportResult:
    out: Path | None
    tables: list[ExportTable]
    files: dict[str, str] = field(default_factory=dict)
    """Table name -> data file (relative to ``out``)."""
    pushed_to: str | None = None

    @property
    def problems(self) -> list[Problem]:
        return [p for t in self.tables for p in t.problems]


def _nothing_to_export(fmt: str) -> InputError:
    hint = {"summarization": "no dialogue has a summary (run with dialogue.summaries: true)",
            "trl-dpo": "the run has no valid preference pairs", "trl-kto": "the run has no valid preference pairs",
            "sft": "the run has no valid SFT rows"}.get(fmt, "the run has no valid rows")
    return InputError(f"nothing to export: {hint}")


def _require_datasets(what: str) -> None:
    try:
        import datasets  # noqa: F401
    except ImportError:
        raise InputError(f"{what} needs the 'datasets' package: pip install 'sparring[hub]'") from None


def run_license(manifest: RunManifest) -> str:
    """The run's ``license`` (its config's; the default for runs written before the key existed)."""
    from sparring.graphs.run_config import RunConfig

    return str(manifest.config.get("license") or RunConfig.model_fields["license"].default)


def _check_license(license_id: str) -> None:
    from .hub import hub_licenses

    if license_id not in hub_licenses():
        raise InputError(f"--license {license_id!r} is not a Hugging Face Hub license id; see "
                         "https://huggingface.co/docs/hub/repositories-licenses")


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or any(p.name != LOCK_FILE for p in out.iterdir())):
        raise InputError("exists and is not an empty directory; export into a new one", source=str(out))


def _stats_for_card(run: RunData) -> dict[str, Any]:
    """The run's stats.json (written when the run, a filter or the judge finished), else computed now."""
    path = run.dir / STATS
    if path.is_file():
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            pass
    return compute_stats(run)


def _write_files(out: Path, fmt: str, tables: list[ExportTable]) -> dict[str, str]:
    out.mkdir(parents=True, exist_ok=True)
    if fmt in JSONL_FORMATS:
        (table,) = tables
        with (out / "train.jsonl").open("w", encoding="utf-8") as fh:
            for row in table.rows:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        return {table.name: "train.jsonl"}
    import datasets
    from datasets import Dataset, DatasetDict

    datasets.disable_progress_bars()  # one line per shard would bury the export's own report
    if fmt == "hf":
        DatasetDict({t.name: Dataset.from_list(t.rows) for t in tables}).save_to_disk(str(out))
        return {t.name: t.name for t in tables}
    files = {}
    for t in tables:
        Dataset.from_list(t.rows).to_parquet(str(out / f"{t.name}.parquet"))
        files[t.name] = f"{t.name}.parquet"
    return files


def push_tables(repo: str, tables: list[ExportTable], card: str, token: str, *, private: bool = False) -> None:
    """Each table as a config of the Hub dataset ``repo`` (``default`` when there is one), then the card,
    keeping the YAML metadata ``push_to_hub`` wrote for the configs."""
    from datasets import Dataset
    from huggingface_hub import DatasetCard

    single = len(tables) == 1
    for t in tables:
        Dataset.from_list(t.rows).push_to_hub(repo, config_name="default" if single else t.name, split="train",
                                              token=token, private=private)
    pushed = DatasetCard.load(repo, token=token)
    ours = DatasetCard(card)
    # Our card's body and tags; the Hub's own config/dataset_info metadata stays as push_to_hub wrote it.
    for key, value in ours.data.to_dict().items():
        if key != "configs":
            setattr(pushed.data, key, value)
    pushed.text = ours.text
    pushed.push_to_hub(repo, token=token)


def write_export(run_dir: Path, fmt: str, out: Path | None, *, skip_invalid: bool = False,
                 license_id: str | None = None, push_to: str | None = None, private: bool = False,
                 include_unverified: bool = False) -> ExportResult:
    """Validate, then write ``fmt`` into the new folder ``out`` (with README.md) and/or push it to the Hub.
    Unverified pairs count as invalid rows unless ``include_unverified``. ``license_id``: the card's
    license (default: the run's ``license``, from its config)."""
    if fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    token = os.environ.get(TOKEN_ENV) or None
    if push_to is not None and token is None:
        raise InputError(f"--push-to-hub needs a Hugging Face token in the {TOKEN_ENV} environment variable "
                         "(a write token from https://huggingface.co/settings/tokens)")
    if fmt in TABLE_FORMATS or push_to is not None:
        _require_datasets("--push-to-hub" if push_to is not None else f"--format {fmt}")
    if license_id is not None:
        _check_license(license_id)
    if out is None:
        return _export(run_dir, fmt, None, skip_invalid, license_id, push_to, private, token,
                       include_unverified=include_unverified)
    _check_out(out)
    with RunDirLock(out, create=True):  # one writer per folder; nothing is left in it by bad input
        _check_out(out)
        return _export(run_dir, fmt, out, skip_invalid, license_id, push_to, private, token,
                       include_unverified=include_unverified)


def _export(run_dir: Path, fmt: str, out: Path | None, skip_invalid: bool, license_id: str | None,
            push_to: str | None, private: bool, token: str | None, *, include_unverified: bool = False
            ) -> ExportResult:
    run = load_run(run_dir)
    tables = build_export(run, fmt, include_unverified=include_unverified)
    problems = [p for t in tables for p in t.problems]
    if problems and not skip_invalid:
        raise InvalidRows(problems)
    tables = [t for t in tables if t.rows]  # an empty table cannot be saved; the card says what is there
    if not tables:
        raise _nothing_to_export(fmt)
    stats = _stats_for_card(run)
    result = ExportResult(out=out, tables=tables)
    if out is not None:
        result.files = _write_files(out, fmt, tables)
    files = result.files or {t.name: (t.name if fmt == "hf" else "train.jsonl") for t in tables}
    card = render_card(run.manifest, stats, fmt, tables, files, license_id=license_id or run_license(run.manifest))
    if out is not None:
        (out / CARD).write_text(card, encoding="utf-8")
    if push_to is not None:
        assert token is not None
        push_tables(push_to, tables, card, token, private=private)
        result.pushed_to = push_to
    return result
