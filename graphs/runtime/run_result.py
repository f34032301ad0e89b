"""What a run came to: its status, directory, manifest and the counts read back from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import RunManifest


@dataclass(frozen=True)
class RunCounts:
    """A run directory's totals over all its attempts, read back from the files written."""

    dialogues: int
    """Dialogues written (failed ones not included)."""
    failed: int
    """Dialogues that failed (written with their error; a resume retries them)."""
    pairs: int
    verified_pairs: int
    with_violation: int
    """Dialogues in which the critic found a violation."""
    violation_rate: float
    avg_turns: float


@dataclass(frozen=True)
class RunResult:
    """What a run came to.

    ``status``: ``completed`` (every dialogue ran; some may have failed, see ``counts.failed``),
    ``failed`` (stopped by ``max_failures``) or ``interrupted`` (a signal, or the task was cancelled;
    ``sparring resume RUN_DIR`` or the same run again continues it).
    """

    status: str
    run_dir: Path
    manifest: RunManifest
    """The run's manifest.json as written at the end (typed: config, backends, versions, ``runs``: every
    attempt, ``counts``, ``usage``, ``timings``)."""

    @property
    def counts(self) -> RunCounts:
        c = self.manifest.counts
        return RunCounts(**{name: getattr(c, name) for name in RunCounts.__dataclass_fields__})
