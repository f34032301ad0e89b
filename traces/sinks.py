"""Where finished spans go: a span file (the run's traces.jsonl.zst, or a plain traces.jsonl; see
``traces.spanfile``) or a list (tests)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import orjson

from .spanfile import FrameEncoder, is_compressed, repair
from .spans import Span


def encode_line(obj: Any) -> bytes:
    """One JSON line, UTF-8; what JSON cannot encode is written as its ``str``."""
    return orjson.dumps(obj, default=str, option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS)


class JsonlSpanSink:
    """Appends each finished span as one JSON line, with one ``write`` per line; to a ``.zst`` path
    compressed (a zstd block per line, ``traces.spanfile``), to any other path as plain text."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._encoder = FrameEncoder() if is_compressed(self.path) else None
        self._fd: int | None = None
        self._failed: OSError | None = None
        """The write that failed (a full disk): nothing is written after it, so a torn line stays last."""

    def open(self) -> JsonlSpanSink:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            repair(self.path)  # a frame a kill left open is closed before anything follows it
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self

    def __call__(self, span: Span) -> None:
        # A span with its prompts is the biggest line a run writes, hundreds a second: orjson
        # encodes it ~5x faster than json.
        self.write_lines(encode_line(span.to_dict()))

    def write_lines(self, data: bytes) -> None:
        """Append spans encoded elsewhere (``encode_line``; a worker process's batch of whole lines)."""
        if self._failed is not None:
            raise self._failed
        if self._fd is None:
            self.open()
        self._write(self._encoder.encode(data) if self._encoder is not None else data)

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        try:
            while view:  # one batch can be larger than a single write takes
                view = view[os.write(self._fd, view):]  # type: ignore[arg-type]
        except OSError as exc:
            self._failed = exc
            raise

    def close(self) -> None:
        """Close the file; a compressed one gets the end of its last frame first (unless a write failed)."""
        if self._fd is not None:
            try:
                if self._encoder is not None and self._failed is None:
                    self._write(self._encoder.finish())
            finally:
                os.close(self._fd)
                self._fd = None


class ListSpanSink(list[Span]):
    """Collects spans in memory."""

    def __call__(self, span: Span) -> None:
        self.append(span)
