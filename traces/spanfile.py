"""A run's span file: one home for how spans lie on disk, written and read.

Runs write ``traces.jsonl.zst``: the JSON lines of the spans (one per span, as ``traces.jsonl`` held
them), compressed with zstd as a sequence of frames. Each span is written at once, as before: its
line is compressed and the block flushed in one ``write``, so a span is on disk (and readable) as
soon as it ends, while later spans still refer back to earlier ones (the prompts repeat) and
compress well. A frame is closed (end mark and checksum) once it holds ``FRAME_BYTES`` of JSON and
when the run ends; any zstd tool reads a closed file (``zstd -dc traces.jsonl.zst``).

Crash safety: a kill can tear the block being written, and leaves the last frame unclosed. Readers
take every whole block of it and drop the torn tail (``ReadStats.torn`` counts dropped span
lines). Before a run appends to the file again, ``repair`` closes that frame (its readable spans
re-encoded, the file replaced atomically), so frames only ever follow closed frames.

Older run directories hold a plain ``traces.jsonl``: readers read it, and a run resumed in such a
directory keeps appending to it (``span_path``), so a directory never holds both.

Example::

    from sparring.traces.spanfile import iter_span_lines, span_files

    for path in span_files(run_dir):
        for line in iter_span_lines(path):
            ...
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import zstandard

from sparring.errors import InputError

PLAIN = "traces.jsonl"
"""The span file of runs made before compression (and of a plan's expansion)."""
COMPRESSED = "traces.jsonl.zst"
"""The span file runs write."""
FRAME_BYTES = 4 << 20
"""JSON bytes after which a frame is closed: what ``repair`` may re-encode after a kill is bounded."""
LEVEL = 3
_MAGIC = b"\x28\xb5\x2f\xfd"


def span_files(run_dir: Path) -> list[Path]:
    """The span files of ``run_dir`` that exist, in the order to read them (plain, then compressed)."""
    return [p for p in (run_dir / PLAIN, run_dir / COMPRESSED) if p.is_file()]


def span_path(run_dir: Path) -> Path:
    """The file a run in ``run_dir`` appends its spans to: the plain one of an older directory that has
    it, else the compressed one."""
    plain = run_dir / PLAIN
    return plain if plain.is_file() and not (run_dir / COMPRESSED).exists() else run_dir / COMPRESSED


def is_compressed(path: Path) -> bool:
    return path.name.endswith(".zst")


@dataclass
class ReadStats:
    """What a reading found damaged: span lines dropped from a torn end."""

    torn: int = 0


@dataclass
class _Frame:
    start: int
    end: int
    closed: bool
    torn: bool = False
    """An unclosed frame that ends inside a block (a write cut short), not between two."""


def _frames(data: bytes | mmap.mmap) -> Iterator[_Frame]:
    """The frames of ``data`` found by walking the block headers (nothing is decompressed): each
    frame's byte range, and whether it is closed. An unclosed one (a kill's) is the last."""
    pos, size = 0, len(data)
    while pos < size:
        start = pos
        head = bytes(data[pos:pos + 18])
        try:
            if not head.startswith(_MAGIC):
                raise zstandard.ZstdError("no frame starts here")
            params = zstandard.get_frame_parameters(head)
            pos += zstandard.frame_header_size(head)
        except zstandard.ZstdError:  # a header cut short (or garbage): nothing of it is readable
            yield _Frame(start, size, closed=False, torn=True)
            return
        last = False
        while not last:
            if pos == size:
                yield _Frame(start, size, closed=False)
                return
            if pos + 3 > size:
                yield _Frame(start, size, closed=False, torn=True)
                return
            header = int.from_bytes(data[pos:pos + 3], "little")
            last, kind, length = bool(header & 1), (header >> 1) & 3, header >> 3
            pos += 3 + (1 if kind == 1 else length)  # an RLE block stores its one byte
            if pos > size:
                yield _Frame(start, size, closed=False, torn=True)
                return
        pos += 4 if params.has_checksum else 0
        if pos > size:  # every block whole, the checksum cut short: no span lost
            yield _Frame(start, size, closed=False)
            return
        yield _Frame(start, pos, closed=True)


def _decoded(data: bytes | mmap.mmap, frame: _Frame, stats: ReadStats) -> bytes:
    """The whole lines a frame holds; of an unclosed frame, those of its whole blocks (a torn block or
    line counted in ``stats``)."""
    obj = zstandard.ZstdDecompressor().decompressobj()
    out: list[bytes] = []
    step = 1 << 20
    try:
        for pos in range(frame.start, frame.end, step):
            out.append(obj.decompress(bytes(data[pos:min(pos + step, frame.end)])))
    except zstandard.ZstdError:
        if frame.closed:
            raise
    text = b"".join(out)
    whole = text[:text.rfind(b"\n") + 1]
    stats.torn += int(frame.torn or len(whole) != len(text))
    return whole


def iter_span_lines(path: Path, stats: ReadStats | None = None) -> Iterator[bytes]:
    """The whole JSON lines of a span file (plain or compressed), newline included, in file order; a
    torn end is left out (and counted in ``stats``)."""
    stats = stats if stats is not None else ReadStats()
    if not path.is_file():
        return
    if not is_compressed(path):
        with path.open("rb") as fh:
            for raw in fh:
                if not raw.endswith(b"\n"):
                    stats.torn += 1
                    return
                yield raw
        return
    with path.open("rb") as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            return
        with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
            for frame in _frames(data):
                try:
                    text = _decoded(data, frame, stats)
                except zstandard.ZstdError as exc:
                    raise InputError(f"the zstd frame at byte {frame.start} is damaged ({exc})",
                                     source=str(path)) from None
                yield from text.splitlines(keepends=True)


def repair(path: Path) -> int:
    """Close the unclosed last frame of a compressed span file (a kill's): its whole spans re-encoded as
    a closed frame, the torn rest dropped; the file is replaced atomically. Returns the span lines
    dropped (0 when the file was whole)."""
    if not is_compressed(path) or not path.is_file() or path.stat().st_size == 0:
        return 0
    with path.open("rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
        last = None
        for frame in _frames(data):
            last = frame
        if last is None or last.closed:
            return 0
        stats = ReadStats()
        lines = _decoded(data, last, stats)
        tmp = path.with_name(f".{path.name}.tmp")
        with tmp.open("wb") as out:
            out.write(data[:last.start])
            if lines:
                out.write(zstandard.ZstdCompressor(level=LEVEL, write_checksum=True).compress(lines))
            out.flush()
            os.fsync(out.fileno())
    os.replace(tmp, path)
    return stats.torn


class FrameEncoder:
    """Turns whole JSON lines into the bytes to append: a block per call, a frame closed every
    ``FRAME_BYTES`` and by ``finish``."""

    def __init__(self) -> None:
        self._compressor = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True)
        self._frame: zstandard.ZstdCompressionObj | None = None
        self._in_frame = 0

    def encode(self, lines: bytes) -> bytes:
        if self._frame is None:
            self._frame = self._compressor.compressobj()
        out = self._frame.compress(lines) + self._frame.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        self._in_frame += len(lines)
        if self._in_frame >= FRAME_BYTES:
            out += self.finish()
        return out

    def finish(self) -> bytes:
        """The end of the open frame (nothing when none is open)."""
        if self._frame is None:
            return b""
        end = self._frame.flush(zstandard.COMPRESSOBJ_FLUSH_FINISH)
        self._frame, self._in_frame = None, 0
        return end


def write_span_file(path: Path, lines: Iterable[bytes]) -> None:
    """Write whole JSON ``lines`` as the compressed span file ``path``, swapped in atomically (a filtered
    copy, a merge): a reader sees no file or the whole one."""
    encoder = FrameEncoder()
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb", buffering=1 << 20) as out:
        batch: list[bytes] = []
        size = 0
        for line in lines:
            batch.append(line)
            size += len(line)
            if size >= 1 << 20:  # blocks of ~1 MB: no per-span flush needed for a file written whole
                out.write(encoder.encode(b"".join(batch)))
                batch, size = [], 0
        out.write(encoder.encode(b"".join(batch)) + encoder.finish())
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
