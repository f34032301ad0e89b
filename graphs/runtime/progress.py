"""Progress of a run: a live bar on a terminal, a plain line every few seconds otherwise (logs, CI)."""

from __future__ import annotations

import asyncio
import sys
import time
from typing import IO, Any

from sparring.terminal import visible

from .runner import RunCounters


def summary_line(c: RunCounters, total: int, generated: int | None = None) -> str:
    """One line of totals; ``generated`` is the live count of generated tokens (calls still in flight count)."""
    elapsed = max(time.time() - c.started, 1e-9)
    finished = c.done + c.failed
    rate = c.violations / c.done if c.done else 0.0
    tok_s = (c.completion_tokens if generated is None else generated) / elapsed
    eta = ""
    if finished and total > finished:
        eta = f", ETA {_duration((total - finished) * elapsed / finished)}"
    return (f"{finished}/{total} dialogues ({c.failed} failed), {c.pairs} pairs ({c.verified_pairs} verified), "
            f"flagged {rate:.0%}, {tok_s:.0f} tok/s, {_duration(elapsed)} elapsed{eta}")


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """``enabled=False`` prints nothing (library use, tests)."""

    def __init__(self, *, enabled: bool = True, stream: IO[str] | None = None, interval_s: float = 15.0) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.interactive = enabled and self.stream.isatty()
        self.interval_s = interval_s
        self.counters: RunCounters | None = None
        self.meter: Any = None
        self.total = 0
        self._bar: Any = None
        self._task_id: Any = None
        self._ticker: asyncio.Task[None] | None = None
        self._last = 0.0

    def use_stream(self, stream: IO[str], *, live: bool = True) -> None:
        """Print to ``stream`` from now on (the terminal, while the engine's output goes to engine.log);
        ``live=False`` keeps to plain lines (``-v`` interleaves the engine's lines with them)."""
        self.stream = stream
        self.interactive = self.enabled and live and stream.isatty()

    def stage(self, text: str) -> None:
        """A step that is starting ("starting the backend...")."""
        if self.enabled:
            print(f"sparring: {visible(text)}...", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        """A finished fact worth a line (what an expansion produced)."""
        if self.enabled:
            print(f"sparring: {visible(text)}", file=self.stream, flush=True)

    def start(self, counters: RunCounters, total: int, meter: Any = None) -> None:
        """``meter`` (a UsageMeter) gives live token counts between finished dialogues."""
        self.counters, self.total, self.meter = counters, total, meter
        if not self.enabled:
            return
        if self.interactive:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as Bar

            self._bar = Bar(TextColumn("[bold]dialogues"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                            TextColumn("{task.description}"), console=Console(file=self.stream), transient=False)
            self._task_id = self._bar.add_task("", total=total)
            self._bar.start()
        else:
            print(f"sparring: {total} dialogues to run", file=self.stream, flush=True)
            try:
                self._ticker = asyncio.get_running_loop().create_task(self._tick())
            except RuntimeError:
                self._ticker = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._log()

    def _log(self) -> None:
        if self.counters is not None:
            generated = self.meter.completion_tokens if self.meter is not None else None
            print(f"sparring: {summary_line(self.counters, self.total, generated)}", file=self.stream, flush=True)
            self._last = time.time()

    def record(self, record: Any, pairs: list[Any]) -> None:
        c = self.counters
        if c is None or not self.enabled:
            return
        if self._bar is not None:
            elapsed = max(time.time() - c.started, 1e-9)
            rate = c.violations / c.done if c.done else 0.0
            self._bar.update(self._task_id, completed=c.done + c.failed,
                             description=f"{c.failed} failed | {c.pairs} pairs | flagged {rate:.0%} | "
                                         f"{self._generated() / elapsed:.0f} tok/s")

    def _generated(self) -> int:
        if self.meter is not None:
            return int(self.meter.completion_tokens)
        return self.counters.completion_tokens if self.counters else 0

    def stop(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.enabled and self.counters is not None:
            self._log()
