"""A filtered copy of a run: a new run directory with the kept rows of every file and a manifest
that names its parent and the filter, so stats, export and judge work on it as on any run."""

from __future__ import annotations

import os
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from sparring.errors import InputError
from sparring.graphs.runtime.manifest import RunManifest, write_manifest
from sparring.graphs.runtime.manifest_parts import FilterInfo, ParentInfo
from sparring.graphs.runtime.runlock import LOCK_FILE, RunDirLock
from sparring.graphs.runtime.store import DIALOGUES, PREFERENCES, SCENARIOS, SFT, TRACES_ZST, replace_jsonl
from sparring.graphs.runtime.totals import refresh_totals
from sparring.traces.read import iter_spans
from sparring.traces.sinks import encode_line
from sparring.traces.spanfile import span_files, write_span_file

from .filters import FilterSpec, apply_filters, spec_as_dict
from .run_stats import StatsOptions, write_stats
from .rundata import RunData, load_run


def _check_out(parent: Path, out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", source=str(out))
    if out.exists() and any(p.name != LOCK_FILE for p in out.iterdir()):
        raise InputError("is not empty; a filtered copy goes into a new directory", source=str(out))
    if out.resolve() == parent.resolve():
        raise InputError("is the run being filtered; give another --out", source=str(out))


def _copy_traces(parent: Path, out: Path, dropped_traces: set[str]) -> None:
    """Spans of kept dialogues, and spans that belong to no dialogue (the scenario expansion)."""
    if not span_files(parent):
        return
    write_span_file(out / TRACES_ZST, (encode_line(span) for span in iter_spans(parent)
                                       if span.get("trace_id") not in dropped_traces))


def write_filtered_run(parent_dir: Path, out_dir: Path, spec: FilterSpec, *, embedder: Any = None) -> RunManifest:
    """Write the rows ``spec`` keeps from ``parent_dir`` into the new run directory ``out_dir``;
    returns its manifest. Writes stats.json of the copy too."""
    parent_dir, out_dir = Path(parent_dir), Path(out_dir)
    _check_out(parent_dir, out_dir)
    # The parent is locked too (no run may write it while it is copied), unless it is read-only.
    writable = os.access(parent_dir, os.W_OK)
    parent_lock: AbstractContextManager[object] = RunDirLock(parent_dir) if writable else nullcontext()
    with parent_lock, RunDirLock(out_dir, create=True):
        _check_out(parent_dir, out_dir)
        run = load_run(parent_dir)
        if run.manifest.status == "running":
            raise InputError("was killed while running (manifest status 'running'): resume it, then filter",
                             source=str(parent_dir))
        return _write_copy(run, parent_dir, out_dir, spec, embedder)


def _write_copy(run: RunData, parent_dir: Path, out_dir: Path, spec: FilterSpec, embedder: Any) -> RunManifest:
    result = apply_filters(run, spec, embedder=embedder)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, rows in ((DIALOGUES, result.dialogues), (PREFERENCES, result.pairs), (SFT, result.sft),
                       (SCENARIOS, result.scenarios)):
        replace_jsonl(out_dir / name, rows)
    kept = {d["id"] for d in result.dialogues}
    _copy_traces(parent_dir, out_dir, {d["trace_id"] for d in run.dialogues
                                       if d.get("trace_id") and d["id"] not in kept})
    parent = run.manifest
    manifest = parent.model_copy(deep=True, update={
        "run_dir": str(out_dir), "stats_error": None,
        "parent": ParentInfo(run_dir=str(parent_dir), name=parent.name, config_fingerprint=parent.config_fingerprint,
                             parent=parent.parent),
        "filter": FilterInfo(options=spec_as_dict(spec), description=spec.describe(), removed=result.removed,
                             near_duplicates=result.near_duplicates, created_at=time.time()),
    })
    refresh_totals(manifest, out_dir)  # the kept rows, counted as a run of them would be
    write_manifest(out_dir, manifest)
    write_stats(out_dir, StatsOptions(embedder=embedder))
    return manifest
