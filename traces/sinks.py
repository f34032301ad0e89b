"""Where finished spans go: a JSONL file (the run's traces.jsonl) or a list (tests)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from .spans import Span


class JsonlSpanSink:
    """Appends each finished span as one JSON line, with one ``write`` per line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def open(self) -> JsonlSpanSink:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def __call__(self, span: Span) -> None:
        if self._fd is None:
            self.open()
        line = json.dumps(span.to_dict(), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
        os.write(self._fd, line.encode("utf-8"))  # type: ignore[arg-type]

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class ListSpanSink(list[Span]):
    """Collects spans in memory."""

    def __call__(self, span: Span) -> None:
        self.append(span)
