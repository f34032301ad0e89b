"""Plans and shards: one job list, frozen once, run as disjoint shards anywhere.

``sparring plan CONFIG --out PLAN_DIR`` runs the DiaSynth expansion (the one step that calls
the model before dialogues start, so the one step that may not repeat) and writes the whole
job list with the config, its fingerprint and the principles into a plan directory:

- ``plan.json``: format, plan id, config (secrets redacted) and fingerprint, principles,
  few-shot examples, the expansion's report, counts;
- ``scenarios.jsonl``: every scenario, in order;
- ``jobs.jsonl``: every dialogue job, in order (its scenario by id);
- ``traces.jsonl``: the expansion's spans, when there was one.

``sparring run PLAN_DIR --shard K/N`` runs the jobs whose dialogue id hashes (SHA-256, never
Python's salted ``hash``) to K modulo N, into an ordinary run directory that also keeps its
own jobs in ``jobs.jsonl`` (a resume needs nothing else) and records the plan in its
manifest (``plan``: id, config fingerprint, shard K of N, jobs in the plan). A config with
``--shard`` is planned in memory the same way and gets the same plan id as ``sparring plan``
would give it, so every shard of one config sees the same jobs.

    >>> Shard.parse("1/4").holds("0a1b2c3d4e5f6071") in (True, False)
    True
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sparring.agents.domain import DialogueJob, Scenario
from sparring.diasynth_agents.fewshot import FewShotExample, FewShotPool
from sparring.errors import InputError
from sparring.graphs.run_config import Overrides, RunConfig
from sparring.principles.model import Principle
from sparring.principles.yamlfile import LineMap, pydantic_error

from ._atomic import atomic_dir
from .manifest import RunManifest, fingerprint, redact, stored_config, versions
from .manifest_parts import PlanInfo
from .store import SCENARIOS, TRACES, encode_record, iter_jsonl

__all__ = ["JOBS", "PLAN_FILE", "Plan", "Shard", "check_same_shard", "plan_id", "read_jobs", "read_plan", "shard_dir",
           "shard_of", "write_jobs", "write_plan"]

PLAN_FILE = "plan.json"
JOBS = "jobs.jsonl"
"""In a plan directory, every job; in a shard's run directory, the shard's jobs."""
FORMAT = 1


def shard_of(dialogue_id: str, count: int) -> int:
    """The shard (0 .. count-1) a dialogue belongs to: SHA-256 of its id, the same on every machine."""
    digest = hashlib.sha256(dialogue_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` of ``count`` (0-based, as Slurm array task ids and Kubernetes completion indexes are)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        """``"K/N"`` with 0 <= K < N; anything else is an InputError naming ``--shard``."""
        k, sep, n = text.strip().partition("/")
        if not sep or not k.strip().isdigit() or not n.strip().isdigit():
            raise InputError(f"--shard {text!r}: expected K/N, e.g. 0/4 (K counts from 0)")
        shard = cls(int(k), int(n))
        if shard.count < 1 or shard.index >= shard.count:
            raise InputError(f"--shard {text!r}: K must be 0 to N-1 and N at least 1")
        return shard

    def holds(self, dialogue_id: str) -> bool:
        """Whether this shard runs the dialogue ``dialogue_id``; callers give a job's ``attack_id``, so that
        the copies of one attack on several targets share a shard (and its one planner call)."""
        return shard_of(dialogue_id, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def plan_id(config_fingerprint: str, job_ids: Iterable[str]) -> str:
    """The id of a job list: its config's fingerprint and every dialogue id, in order."""
    h = hashlib.sha256(config_fingerprint.encode())
    for job_id in job_ids:
        h.update(b"\n" + job_id.encode())
    return h.hexdigest()[:16]


@dataclass
class Plan:
    """A frozen job list and what it was made from."""

    config: RunConfig
    config_path: str | None
    principles: list[Principle]
    scenarios: list[Scenario]
    jobs: list[DialogueJob]
    few_shot: FewShotPool
    expansion: dict[str, Any] | None = None
    max_dialogues: int | None = None

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.config)

    @property
    def id(self) -> str:
        return plan_id(self.fingerprint, (job.id for job in self.jobs))

    def shard_info(self, shard: Shard, source: str | None) -> PlanInfo:
        """What a shard's manifest records under ``plan`` (merge compares these)."""
        return PlanInfo(id=self.id, config_fingerprint=self.fingerprint, shard=shard.index, shards=shard.count,
                        jobs=len(self.jobs), source=source, few_shot=[asdict(e) for e in self.few_shot.examples])


def shard_dir(config: RunConfig, shard: Shard) -> Path:
    """A shard's run directory when no --out names one: ``runs/<name>-shard-K-of-N``."""
    if config.output_dir is not None:
        return config.output_dir
    return Path("runs") / f"{config.name}-shard-{shard.index}-of-{shard.count}"


def check_same_shard(manifest: RunManifest, plan: PlanInfo | None, run_dir: Path) -> None:
    """A run directory continues only the run it holds: the same shard of the same plan, or an
    unsharded run; a merge is never continued."""
    if manifest.merge is not None:
        raise InputError("is a merge of shards and cannot be continued; resume the shards, then merge again",
                         source=str(run_dir))
    old = manifest.plan
    if old is None and plan is None:
        return
    if old is None:
        raise InputError("holds a run that is not a shard; a shard goes into a directory of its own",
                         source=str(run_dir))
    held = f"shard {old.shard}/{old.shards} of plan {old.id}"
    if plan is None:
        raise InputError(f"holds {held}; continue it with 'sparring resume {run_dir}'", source=str(run_dir))
    if (old.id, old.shard, old.shards) != (plan.id, plan.shard, plan.shards):
        raise InputError(f"holds {held}, not shard {plan.shard}/{plan.shards} of plan {plan.id}; "
                         "give each shard its own --out", source=str(run_dir))


# -- the files ---------------------------------------------------------------------------

def write_jobs(path: Path, jobs: Iterable[DialogueJob]) -> None:
    """``jobs.jsonl``: one line per job, in order, its scenario by id; swapped in whole (a process
    killed while writing it leaves no file, never a short one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as fh:
        for job in jobs:
            row = job.model_dump(mode="json", exclude={"scenario"})
            fh.write(encode_record({**row, "scenario_id": job.scenario.id}))
    os.replace(tmp, path)


def read_jobs(path: Path, scenarios: Sequence[Scenario]) -> list[DialogueJob]:
    """The jobs of ``jobs.jsonl``, each checked against its id (a changed line is bad input)."""
    if not path.is_file():
        raise InputError("is missing (the shard was killed as it started); start the shard again with "
                         "'sparring run PLAN_OR_CONFIG --shard K/N --out DIR'", source=str(path))
    by_id = {s.id: s for s in scenarios}
    jobs = []
    for number, row in enumerate(iter_jsonl(path), 1):
        try:
            scenario = by_id[row.pop("scenario_id")]
            job = DialogueJob.model_validate({**row, "scenario": scenario})
        except (KeyError, ValidationError) as exc:
            raise InputError(f"job does not read back ({type(exc).__name__}: {exc})", source=str(path),
                             line=number) from None
        if job.id != DialogueJob.make_id(scenario.id, job.target_principles, job.mode, job.seed, job.index, job.target):
            raise InputError("the job's id does not match its content (edited?)", source=str(path), line=number)
        jobs.append(job)
    return jobs


def write_plan(plan: Plan, out: Path, expansion_spans: Path | None = None) -> str:
    """Write ``plan`` into the new directory ``out``, whole or not at all. Returns the plan id."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError("exists and is not empty; a plan goes into a new directory", source=str(out))
    with atomic_dir(out, "plan") as tmp:
        header = {
            "format": FORMAT, "plan_id": plan.id, "config_fingerprint": plan.fingerprint,
            "config_path": plan.config_path, "config": redact(plan.config.model_dump(mode="json")),
            "principles": [p.model_dump(mode="json") for p in plan.principles],
            "few_shot": [asdict(e) for e in plan.few_shot.examples], "expansion": plan.expansion,
            "max_dialogues": plan.max_dialogues, "counts": {"scenarios": len(plan.scenarios), "jobs": len(plan.jobs)},
            "versions": versions(),
        }
        (tmp / PLAN_FILE).write_text(json.dumps(header, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        with (tmp / SCENARIOS).open("wb") as fh:
            for scenario in plan.scenarios:
                fh.write(encode_record(scenario))
        write_jobs(tmp / JOBS, plan.jobs)
        if expansion_spans is not None and expansion_spans.exists():
            shutil.copyfile(expansion_spans, tmp / TRACES)
    return plan.id


def require_plan_dir(plan_dir: Path) -> Path:
    """``plan_dir``'s plan.json; a directory without one (``configs/x.yaml/`` given for a config file)
    is bad input, named as what it is."""
    path = plan_dir / PLAN_FILE
    if not path.is_file():
        raise InputError("is a directory, not a config file, and holds no plan.json, so it is not a plan "
                         "directory either (made by 'sparring plan CONFIG --out DIR')", source=str(plan_dir))
    return path


def read_plan(plan_dir: Path, overrides: Overrides = (), *, out: Path | None = None) -> Plan:
    """The plan in ``plan_dir``. ``overrides`` (``--set``) may change how it is run (concurrency,
    workers, backend.base_url, ...), never what it produces: a change of the config's
    fingerprint is bad input."""
    path = require_plan_dir(plan_dir)
    try:
        header = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"is not valid JSON ({exc.msg})", source=str(path), line=exc.lineno) from None
    if header.get("format") != FORMAT:
        raise InputError(f"plan format {header.get('format')!r}; this sparring reads format {FORMAT}", source=str(path))
    base = stored_config(header["config"], source=str(path))
    config = stored_config(header["config"], overrides, source=str(path),
                           **({"output_dir": str(out)} if out is not None else {}))
    lines = LineMap()
    try:
        principles = [Principle.model_validate(p) for p in header["principles"]]
        scenarios = [Scenario.model_validate(row) for row in iter_jsonl(plan_dir / SCENARIOS)]
    except ValidationError as exc:
        raise pydantic_error(exc, source=str(path), lines=lines) from None
    if fingerprint(base) != header["config_fingerprint"]:
        raise InputError("its config does not read back to the fingerprint it was planned with (a secret-looking "
                         "key redacted from it, or written by another sparring version)", source=str(path))
    if fingerprint(config) != header["config_fingerprint"]:
        changed = ", ".join(overrides if isinstance(overrides, Mapping) else (o.partition("=")[0] for o in overrides))
        raise InputError(f"--set {changed}: changes what the plan produces (its config fingerprint); on a plan only "
                         "keys that drive the run may change (concurrency, workers, max_failures, tracing, and a "
                         "backend's base_url, max_in_flight, retry, api_key_env, engine_args, session_header: "
                         "backend.KEY or backends.NAME.KEY)", source=str(plan_dir))
    few_shot = FewShotPool(tuple(FewShotExample(**e) for e in header.get("few_shot") or []))
    plan = Plan(config=config, config_path=header.get("config_path"), principles=principles, scenarios=scenarios,
                jobs=read_jobs(plan_dir / JOBS, scenarios), few_shot=few_shot, expansion=header.get("expansion"),
                max_dialogues=header.get("max_dialogues"))
    if plan.id != header["plan_id"]:
        raise InputError("its jobs.jsonl does not match plan.json's plan_id (a file was changed)", source=str(plan_dir))
    return plan
