"""``sparring merge SHARD_DIR... --out DIR``: the shards of one plan as one run directory.

Refused, as bad input (one line, exit 2, nothing written): a directory that is not a shard,
shards of different configs, plans or N, a shard given twice, a missing shard, a shard with
unfinished dialogues. ``allow_partial`` merges what is there instead and lists what is missing
in the manifest (``merge.missing_shards``, ``merge.missing_dialogues``, status ``partial``).

Every record is written exactly once, copied byte for byte (a stored turn stays the turn the
shard wrote): dialogues (failed ones included, as a run keeps them), the pairs and SFT rows of
written dialogues (a killed shard's orphans are left out, as a resume's repair would drop
them), scenarios once each, every span of every shard (each attempt's). Files are written in
shard order (K), each shard's lines in its own order, so merging the same shards again gives
the same bytes. The manifest keeps each shard's attempts (``runs``, each with its ``shard``)
and a summary per shard (``merge.shards``); stats.json and report.html are computed again on
the merged records. A shard's engine.log (what its engine and libraries printed) is not a
record: it stays in the shard, and ``merge.shards[].engine_log`` names it.

Atomic: everything is written into a temporary directory beside ``--out``, fsynced, then
renamed into place; a merge killed at any moment leaves either no output or a whole one (the
next merge removes the temporary directory). An ``--out`` that holds an earlier merge is
replaced the same way; any other non-empty directory is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from sparring.errors import InputError
from sparring.traces.spanfile import iter_span_lines, span_files, write_span_file

from ._atomic import atomic_dir
from .manifest import RunManifest, load_manifest, read_manifest, redact, write_manifest
from .manifest_parts import MergedShard, MergeInfo, PlanInfo, Timings
from .plan_files import JOBS
from .progress import Progress
from .reporting import write_report
from .store import (
    DIALOGUES,
    ENGINE_LOG,
    PREFERENCES,
    SCENARIOS,
    SFT,
    STATS,
    TRACES_ZST,
    replace_json,
)
from .totals import refresh_totals

__all__ = ["merge_shards"]


@dataclass
class _Shard:
    dir: Path
    manifest: RunManifest
    jobs: list[str]
    written: dict[str, str] = field(default_factory=dict)
    """Dialogue id -> status of every dialogue line of the shard."""

    @property
    def plan(self) -> PlanInfo:
        assert self.manifest.plan is not None  # checked by _read_shard
        return self.manifest.plan

    @property
    def index(self) -> int:
        return int(self.plan.shard or 0)

    @property
    def missing(self) -> list[str]:
        return [job for job in self.jobs if job not in self.written]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, whole line with its newline); a torn last line (a killed writer) is left out."""
    if not path.exists():
        return
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, 1):
            if raw.endswith(b"\n") and raw.strip():
                yield number, raw


def _parse(path: Path, number: int, raw: bytes) -> dict[str, Any]:
    try:
        row = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"is not valid JSON ({exc})", source=str(path), line=number) from None
    if not isinstance(row, dict):
        raise InputError("is not a JSON object", source=str(path), line=number)
    return row


def _read_shard(path: Path) -> _Shard:
    if not path.is_dir():
        raise InputError("is not a directory", source=str(path))
    manifest = load_manifest(path)
    if manifest.plan is None or manifest.plan.shard is None or not (path / JOBS).exists():
        raise InputError("is not a shard (its manifest names no plan): run shards with "
                         "'sparring run PLAN_OR_CONFIG --shard K/N'", source=str(path))
    jobs = [str(_parse(path / JOBS, n, raw).get("id")) for n, raw in _lines(path / JOBS)]
    shard = _Shard(dir=path, manifest=manifest, jobs=jobs)
    expected = set(jobs)
    for number, raw in _lines(path / DIALOGUES):
        row = _parse(path / DIALOGUES, number, raw)
        dialogue_id = row.get("id")
        if dialogue_id not in expected:
            raise InputError(f"dialogue {dialogue_id!r} is not among the shard's jobs", source=str(path / DIALOGUES),
                             line=number)
        if dialogue_id in shard.written:
            raise InputError(f"dialogue {dialogue_id!r} is written twice", source=str(path / DIALOGUES), line=number)
        shard.written[dialogue_id] = row.get("status", "ok")
    return shard


def _check(shards: list[_Shard], allow_partial: bool) -> list[int]:
    """Refuse what cannot be merged; the missing shard indexes (only with ``allow_partial``)."""
    first = shards[0]
    for key, what in (("config_fingerprint", "configs"), ("id", "plans"), ("shards", "splits (N)")):
        for other in shards[1:]:
            if getattr(other.plan, key) != getattr(first.plan, key):
                raise InputError(f"is a shard of another of {what} than {first.dir} ({key} {getattr(other.plan, key)} "
                                 f"against {getattr(first.plan, key)}); merge the shards of one plan",
                                 source=str(other.dir))
    count = first.plan.shards
    seen: dict[int, Path] = {}
    for shard in shards:
        if shard.index in seen:
            raise InputError(f"is shard {shard.index}/{count} again (so is {seen[shard.index]}); give each shard once",
                             source=str(shard.dir))
        seen[shard.index] = shard.dir
    missing = [k for k in range(count) if k not in seen]
    if missing and not allow_partial:
        given = ", ".join(str(k) for k in sorted(seen))
        raise InputError(f"shard {missing[0]}/{count} is missing ({len(missing)} of {count} missing; given: {given}); "
                         "give every shard, or merge with --allow-partial")
    for shard in shards:
        if shard.missing and not allow_partial:
            raise InputError(f"{len(shard.missing)} of its {len(shard.jobs)} dialogues are unfinished (status "
                             f"{shard.manifest.status}); finish it with 'sparring resume {shard.dir}', or merge "
                             "with --allow-partial", source=str(shard.dir))
    return missing


def _check_out(out: Path, shards: list[_Shard]) -> None:
    if out.exists() and not out.is_dir():
        raise InputError("exists and is not a directory", source=str(out))
    if any(out.resolve() == shard.dir.resolve() for shard in shards):
        raise InputError("is one of the shards; give another --out", source=str(out))
    if out.exists() and any(out.iterdir()):
        try:
            earlier = read_manifest(out)
        except InputError:
            earlier = None
        if earlier is None or earlier.merge is None:
            raise InputError("is not empty and holds no earlier merge; choose another --out", source=str(out))


def _copy_records(shards: list[_Shard], tmp: Path) -> None:
    """The record files and the spans, in shard order, each line copied as the shard wrote it (the spans
    into one compressed span file, whatever format each shard's is in)."""
    write_span_file(tmp / TRACES_ZST, (raw for shard in shards for path in span_files(shard.dir)
                                       for raw in iter_span_lines(path)))
    with _open(tmp, DIALOGUES) as dialogues, _open(tmp, PREFERENCES) as pairs, _open(tmp, SFT) as sft, \
            _open(tmp, SCENARIOS) as scenarios:
        known_scenarios: set[str] = set()
        for shard in shards:
            for _, raw in _lines(shard.dir / DIALOGUES):
                dialogues.write(raw)
            for name, out in ((PREFERENCES, pairs), (SFT, sft)):
                for number, raw in _lines(shard.dir / name):
                    if _parse(shard.dir / name, number, raw).get("dialogue_id") in shard.written:
                        out.write(raw)
            for number, raw in _lines(shard.dir / SCENARIOS):
                scenario_id = _parse(shard.dir / SCENARIOS, number, raw).get("id")
                if scenario_id not in known_scenarios:
                    known_scenarios.add(str(scenario_id))
                    scenarios.write(raw)


def _open(folder: Path, name: str) -> IO[bytes]:
    return (folder / name).open("wb", buffering=1 << 20)


def _manifest(shards: list[_Shard], out: Path, missing_shards: list[int], allow_partial: bool) -> RunManifest:
    """The merged directory's manifest: the first shard's config and principles, every shard's attempts
    (each with its ``shard``), a summary per shard under ``merge``; totals are ``refresh_totals``'."""
    first = shards[0].manifest
    runs = [attempt.model_copy(update={"shard": shard.index}, deep=True) for shard in shards
            for attempt in shard.manifest.runs]
    missing_dialogues = [d for shard in shards for d in shard.missing]
    plan = shards[0].plan.model_copy(update={"shard": None}, deep=True)
    return RunManifest(
        name=first.name,
        # Derived from the shards' own ids: a merge of the same shards has the same id.
        run_id=hashlib.sha256(" ".join(s.manifest.run_id or "" for s in shards).encode()).hexdigest()[:32],
        status="partial" if missing_shards or missing_dialogues else "completed",
        run_dir=str(out), config_path=first.config_path, config_fingerprint=first.config_fingerprint,
        config=redact({**first.config, "output_dir": str(out)}), seed=first.seed, versions=first.versions,
        backend=first.backend,
        backends=first.backends,  # each shard's own (its URLs) are under merge.shards
        roles=first.roles, principles=first.principles, max_dialogues=first.max_dialogues, plan=plan,
        merge=MergeInfo(shards=[_merged_shard(s) for s in shards], allow_partial=allow_partial,
                        missing_shards=missing_shards, missing_dialogues=missing_dialogues,
                        missing_count=plan.jobs - sum(len(s.written) for s in shards)),
        timings=Timings(started_at=min((r.started_at for r in runs), default=None),
                        updated_at=max((r.finished_at for r in runs if r.finished_at is not None), default=None)),
        runs=runs)


def _merged_shard(shard: _Shard) -> MergedShard:
    log = shard.dir / ENGINE_LOG
    return MergedShard(shard=shard.index, run_dir=os.path.abspath(shard.dir), run_id=shard.manifest.run_id,
                       status=shard.manifest.status, dialogues=len(shard.written),
                       failed=sum(v != "ok" for v in shard.written.values()), missing=len(shard.missing),
                       attempts=len(shard.manifest.runs), backend=shard.manifest.backend,
                       backends=shard.manifest.backends, versions=shard.manifest.versions,
                       engine_log=os.path.abspath(log) if log.is_file() else None)


def _write_reports(tmp: Path, out: Path, manifest: RunManifest) -> None:
    """stats.json and report.html of the merged records, as if they had been written in ``out``."""
    from sparring.graphs.data.run_stats import StatsOptions, compute_stats
    from sparring.graphs.data.rundata import load_run

    if not manifest.setting("report", "stats", True):
        return
    try:
        run = load_run(tmp)
        run.dir = out
        options = StatsOptions(embeddings=manifest.setting("report", "embeddings", True))
        replace_json(tmp / STATS, compute_stats(run, options))
    except Exception as exc:  # statistics are a report on the data, not the data
        manifest.stats_error = f"{type(exc).__name__}: {exc}"
        write_manifest(tmp, manifest)
    write_report(tmp, shown_as=out)


def merge_shards(shard_dirs: Sequence[Path], out: Path, *, allow_partial: bool = False,
                 progress: Progress | None = None) -> RunManifest:
    """Merge the shards in ``shard_dirs`` into the run directory ``out``; returns its manifest."""
    if not shard_dirs:
        raise InputError("no shard directories given")
    progress = progress or Progress(enabled=False)  # nothing is printed before the checks: bad input is one line
    shards = sorted((_read_shard(Path(d)) for d in shard_dirs), key=lambda s: s.index)
    missing_shards = _check(shards, allow_partial)
    out = Path(out)
    _check_out(out, shards)
    with atomic_dir(out, "merge") as tmp:
        progress.stage(f"copying {sum(len(s.written) for s in shards)} dialogues with their pairs and spans")
        _copy_records(shards, tmp)
        manifest = _manifest(shards, out, missing_shards, allow_partial)
        refresh_totals(manifest, tmp)
        write_manifest(tmp, manifest)
        progress.stage("computing stats.json and report.html")
        _write_reports(tmp, out, manifest)
    return manifest
