"""Every exception sparring raises on purpose, in one place.

- ``InputError``: bad user input (a config, a principle or few-shot file, a flag, a run
  directory). The CLI prints ``str(error)``, one line naming file, key and line, and exits 2.
- ``BackendError`` and its kinds: a model call that failed for good, or a fault worth retrying.
- Run-level stops: ``TooManyFailures`` (``--max-failures``), ``WorkerError`` (a worker died),
  ``EngineDied`` (the in-process engine's own process died), ``DiskFull``.

Example::

    from sparring.errors import InputError

    try:
        sparring.run("config.yaml")
    except InputError as exc:
        print(exc)  # config.yaml: backend.kind (line 3): Input should be 'embedded', ...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sparring.graphs.data.validate import Problem

__all__ = [
    "BackendError", "BackendUnavailable", "DiskFull", "EmptyTurnError", "EngineDied", "InputError", "InvalidRows",
    "ReplayExhausted", "ReplayMismatch", "SchemaUnsupported", "StructuredOutputError", "TooManyFailures",
    "TransientBackendError", "WorkerError",
]


class InputError(Exception):
    """Bad user input: a file, a field of it, or a command-line flag.

    The CLI turns it into one line on stderr and exit status 2. ``str()`` is
    that line, so raising code never formats it twice.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None,
                 line: int | None = None) -> None:
        self.message = message
        self.source = source
        self.field = field
        self.line = line
        super().__init__(self.render())

    def render(self) -> str:
        where = []
        if self.field:
            where.append(self.field)
        if self.line is not None:
            where.append(f"(line {self.line})")
        head = self.source or ""
        if where:
            head = f"{head}: {' '.join(where)}" if head else " ".join(where)
        return f"{head}: {self.message}" if head else self.message


class BackendUnavailable(InputError):
    """A backend the run would use cannot work (refused connection, no answer, a key refused, a
    model the server does not serve), found by the probe before anything is written. Exit 2,
    like any bad input: the fix is in the config, the key or the server, not in retrying."""


# -- model calls ---------------------------------------------------------------------

class BackendError(Exception):
    """A call failed for good (after retries). Never carries credentials."""

    def __init__(self, message: str, *, raw_text: str | None = None, attempts: int = 1) -> None:
        super().__init__(message)
        self.raw_text = raw_text
        self.attempts = attempts


class TransientBackendError(BackendError):
    """A failure worth retrying: 429, 5xx, timeout, dropped connection, garbled body."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StructuredOutputError(BackendError):
    """The reply never validated against the asked schema, re-asks included."""


class SchemaUnsupported(Exception):
    """Raised by an adapter when the server rejects constrained decoding."""


class ReplayExhausted(BackendError):
    """Replay: the graph made a model call that the recorded run did not make."""


class ReplayMismatch(BackendError):
    """Strict replay: the prompt of a call differs from the recorded one."""


class EmptyTurnError(RuntimeError):
    """The model produced nothing usable for a turn, even after a resample."""


# -- runs and their outputs ----------------------------------------------------------

class TooManyFailures(RuntimeError):
    """More dialogues failed than ``max_failures`` allows; the run stopped cleanly."""


class WorkerError(RuntimeError):
    """A worker failed or died; the run stops (a resume continues it)."""


class EngineDied(RuntimeError):
    """The in-process engine's own process (vLLM's engine core) died mid-run: killed (the kernel's
    out-of-memory killer sends SIGKILL) or crashed. Fatal for the run, not a fault of a dialogue:
    nothing retries it and no dialogue is failed by it. The run stops; what was written stays, the
    dialogues in flight keep their checkpoints, and a resume (on a new engine) continues it.

    ``str()`` is one line: which engine, its process id, how it ended, and once the run has
    stopped (``stored`` set) how many of its dialogues are stored."""

    def __init__(self, engine: str, pid: int | None, how: str) -> None:
        self.engine = engine
        self.pid = pid
        self.how = how
        self.stored: tuple[int, int] | None = None
        """(dialogues stored, dialogues in the run), set when the run has stopped."""
        super().__init__(engine, pid, how)

    def __str__(self) -> str:
        who = f"the {self.engine} engine" + (f" (pid {self.pid})" if self.pid is not None else "")
        line = f"{who} died mid-run ({self.how})"
        if self.stored is not None:
            line += f"; {self.stored[0]} of {self.stored[1]} dialogues are stored"
        return line


class DiskFull(RuntimeError):
    """The run directory's file system is full (or over quota); the run stopped cleanly, and a
    resume once there is space continues it."""


class InvalidRows(Exception):
    """Rows failed validation and ``skip_invalid`` was not given: nothing was written."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} row(s) failed validation")
        self.problems = problems
