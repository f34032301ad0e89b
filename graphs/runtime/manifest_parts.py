"""The typed parts of a run's manifest (graphs.runtime.manifest.RunManifest): an attempt and its
lifecycle, counts, usage and time totals, a shard's plan, a merge, a filtered copy's parent and
filter, a judge pass. Every part keeps keys it does not know (a newer sparring's), so a manifest read
and written again loses nothing."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Attempt", "AttemptStatus", "Counts", "EndStatus", "FilterInfo", "JudgeInfo", "MergeInfo", "MergedShard",
           "ParentInfo", "Part", "PlanInfo", "RunStatus", "Timings", "Usage", "optional"]

EndStatus = Literal["completed", "failed", "interrupted", "crashed", "engine_died"]
"""How an attempt ended (and so its run): every dialogue ran; stopped by ``max_failures`` or a full disk;
a signal; an unexpected error; the in-process engine's own process died (``EngineDied``)."""
RunStatus = Literal["running", "completed", "failed", "interrupted", "crashed", "engine_died", "partial"]
"""A run's status: ``running`` while an attempt writes (or when one was killed), ``partial`` for a
merge with shards or dialogues missing, else the last attempt's end."""
AttemptStatus = Literal["running", "completed", "failed", "interrupted", "crashed", "engine_died", "killed"]
"""An attempt's lifecycle: ``running`` from its start; at its end ``completed``, ``failed``
(``max_failures``, a full disk), ``interrupted`` (a signal), ``crashed`` or ``engine_died``; an attempt that never
wrote its end (SIGKILL, OOM, power) is marked ``killed`` by the next one."""


def _none(value: Any) -> bool:
    return value is None


def optional(**kwargs: Any) -> Any:
    """A field left out of the file while it is None (it was absent from manifests before it existed)."""
    return Field(default=None, exclude_if=_none, **kwargs)


class Part(BaseModel):
    """A manifest part: known keys typed, unknown ones kept, assignments checked."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)


class Usage(Part):
    """Tokens and model calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    calls: int = 0

    @classmethod
    def of_meter(cls, meter: Any) -> Usage:
        """What a ``UsageMeter`` (agents.backends.base) counted."""
        return cls(prompt_tokens=meter.prompt_tokens, completion_tokens=meter.completion_tokens, calls=meter.calls)

    @classmethod
    def total(cls, parts: Iterable[Usage | None]) -> Usage:
        """The sum of ``parts`` (None counts nothing)."""
        out = cls()
        for part in parts:
            if part is not None:
                out = cls(prompt_tokens=out.prompt_tokens + part.prompt_tokens, calls=out.calls + part.calls,
                          completion_tokens=out.completion_tokens + part.completion_tokens)
        return out


class Attempt(Part):
    """One ``run`` or ``resume`` of the directory (``runs`` in the file), recorded as it starts."""

    status: AttemptStatus = "running"
    started_at: float = Field(default_factory=time.time)
    finished_at: float | None = optional()
    resumed: bool = False
    """Continued a directory an earlier attempt wrote."""
    pid: int | None = optional()
    probe: dict[str, Any] | None = optional()
    """What each backend's probe found."""
    backend_start_s: float | None = optional()
    repaired: dict[str, int] | None = optional()
    """What the repair before a resume dropped, by file."""
    worker_pids: list[int] | None = optional()
    counts: dict[str, Any] | None = optional()
    """This attempt's live counters (graphs.runtime.runner.RunCounters)."""
    usage: Usage | None = optional()
    error: str | None = optional()
    failure_causes: list[dict[str, Any]] | None = optional()
    shard: int | None = optional()
    """In a merged directory: the shard whose attempt this was."""

    def finish(self, status: EndStatus, counters: dict[str, Any], usage: Usage | None) -> None:
        """Record the attempt's end."""
        self.finished_at, self.status, self.counts = time.time(), status, counters
        if usage is not None:
            self.usage = usage

    @property
    def wall_s(self) -> float:
        """How long it ran (0 for one that never wrote its end)."""
        return self.finished_at - self.started_at if self.finished_at is not None else 0.0


class Counts(Part):
    """The run directory's totals over every attempt, read back from its files (graphs.runtime.totals)."""

    dialogues: int = 0
    """Dialogues written (failed ones not included)."""
    failed: int = 0
    """Dialogues that failed (written with their error; a resume retries them)."""
    with_violation: int = 0
    """Dialogues in which the critic found a violation."""
    violation_rate: float = 0.0
    avg_turns: float = 0.0
    pairs: int = 0
    verified_pairs: int = 0
    dropped_pairs: dict[str, int] = Field(default_factory=dict)
    """Pairs the data rules left out, by reason (graphs.assemble.DROP_REASONS)."""
    sft_rows: dict[str, int] = Field(default_factory=dict)
    """SFT rows whole, cut and dropped."""
    sft_cut_by_reason: dict[str, int] = Field(default_factory=dict)
    failed_steps: dict[str, int] = Field(default_factory=dict)
    """Critic, reviser and verifier calls that failed for good, by step."""
    ungrounded_findings: int | None = optional()
    """The critic's findings dropped because their quoted evidence was not in the judged turn (even after
    one re-ask): a run with none flagged and many of these has a critic that cannot quote its reasons. Absent
    from manifests written before it was counted."""
    this_attempt: dict[str, Any] | None = optional()
    """The last attempt's live counters (a run's, not a merge's or a filtered copy's)."""
    resumed: int = 0
    """Dialogues continued from a checkpoint, over all attempts."""
    killed_attempts: int = 0


class Timings(Part):
    """Seconds since the epoch, and the attempts' summed running time."""

    started_at: float | None = None
    updated_at: float | None = None
    wall_s: float | None = optional()


class PlanInfo(Part):
    """A shard's plan (graphs.runtime.plan_files.Plan.shard_info); in a merge, without ``shard``."""

    id: str
    config_fingerprint: str
    shard: int | None = optional()
    shards: int
    jobs: int = 0
    source: str | None = None
    few_shot: list[dict[str, Any]] = Field(default_factory=list)


class MergedShard(Part):
    """What a merge keeps of one shard (``merge.shards``)."""

    shard: int
    run_dir: str
    run_id: str | None = None
    status: str | None = None
    dialogues: int = 0
    failed: int = 0
    missing: int = 0
    attempts: int = 0
    backend: dict[str, Any] | None = None
    backends: dict[str, Any] | None = None
    versions: dict[str, Any] | None = None
    engine_log: str | None = None


class MergeInfo(Part):
    """How a merged directory was made (``sparring merge``)."""

    shards: list[MergedShard] = Field(default_factory=list)
    allow_partial: bool = False
    missing_shards: list[int] = Field(default_factory=list)
    missing_dialogues: list[str] = Field(default_factory=list)
    missing_count: int = 0


class ParentInfo(Part):
    """The run a filtered copy was made from (its own parent, if it was a copy too)."""

    run_dir: str
    name: str | None = None
    config_fingerprint: str | None = None
    parent: ParentInfo | None = None


class FilterInfo(Part):
    """The filter that made a filtered copy (``sparring filter``)."""

    options: dict[str, Any] = Field(default_factory=dict)
    description: list[str] = Field(default_factory=list)
    removed: dict[str, int] = Field(default_factory=dict)
    near_duplicates: Any = None
    created_at: float | None = None


class JudgeInfo(Part):
    """The last ``sparring judge`` pass over the directory."""

    criteria: list[str] = Field(default_factory=list)
    to_score: int = 0
    scored: int = 0
    failed: int = 0
    methods: dict[str, int] = Field(default_factory=dict)
    errors: dict[str, int] | None = optional()
    backend: dict[str, Any] | None = optional()
    judged_at: float | None = optional()
    wall_s: float | None = optional()
    usage: Usage | None = optional()
