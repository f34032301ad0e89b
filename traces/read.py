"""Reading a run's spans back (traces.jsonl.zst, or an older run's traces.jsonl: ``traces.spanfile``):
the spans of some traces, as plain dicts, in file order.

A run's trace file holds every dialogue's spans interleaved, in the order
they finished. Readers here stream it once and keep only what was asked for,
so a viewer opening one dialogue of a large run never holds the whole file.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Iterator
from pathlib import Path
from typing import Any

from .spanfile import ReadStats, iter_span_lines, span_files


def iter_spans(path: Path, trace_ids: Collection[str] | None = None,
               stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """Span dicts of ``path``, a run directory (its span files) or one span file (all, or those of
    ``trace_ids``); a torn end is skipped (and counted in ``stats``)."""
    files = span_files(path) if path.is_dir() else [path]
    # A byte search for the id skips other traces' lines without parsing them;
    # the parsed id is then checked exactly.
    wanted = set(trace_ids) if trace_ids is not None else None
    needles = [t.encode() for t in wanted] if wanted is not None else []
    for file in files:
        for raw in iter_span_lines(file, stats):
            if wanted is not None and not any(n in raw for n in needles):
                continue
            line = raw.strip()
            if not line:
                continue
            span = json.loads(line)
            if wanted is None or span.get("trace_id") in wanted:
                yield span


def by_trace(spans: Iterable[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Spans grouped by trace id, each group in file order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for s in spans:
        out.setdefault(s["trace_id"], []).append(s)
    return out


def children_of(spans: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    """(roots, parent span id -> children), children in the order they started.

    A span whose parent is missing (a run killed before the parent ended)
    counts as a root, so nothing recorded is hidden.
    """
    ids = {s["span_id"] for s in spans}
    roots: list[dict[str, Any]] = []
    kids: dict[str, list[dict[str, Any]]] = {}
    for s in sorted(spans, key=lambda s: s["start_time"]):  # stable: file order breaks ties
        parent = s.get("parent_id")
        if parent and parent in ids:
            kids.setdefault(parent, []).append(s)
        else:
            roots.append(s)
    return roots, kids
