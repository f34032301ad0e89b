"""What a run came to: its status, directory, manifest and the counts read back from it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .manifest import RunManifest
from .manifest_parts import Counts


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
    def counts(self) -> Counts:
        """The run's totals over all its attempts, read back from the files written (``manifest.counts``)."""
        return self.manifest.counts
