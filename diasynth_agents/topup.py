"""Generate a list, deduplicate it, and ask again for what is missing: the loop both generators share."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sparring.errors import BackendError

from .dedup import Embedder, dedup
from .expansion_report import DroppedItem, ListReport

T = TypeVar("T")

# ask(call, kept_so_far, how_many) -> candidates. ``call`` is 0 for the first
# request and 1.. for top-ups, so the prompt can name what is already taken.
Ask = Callable[[int, list[T], int], Awaitable[list[T]]]


async def generate_distinct(ask: Ask[T], *, wanted: int, threshold: float, text: Callable[[T], str],
                            max_topups: int, report: ListReport,
                            embedder: Embedder | None = None) -> list[T]:
    """Up to ``wanted`` distinct items in at most ``1 + max_topups`` calls; ``report`` records the rest.

    A call that fails for good (BackendError after the backend's own retries)
    uses up one attempt and is recorded, it does not end the expansion.
    """
    kept: list[T] = []
    for call in range(1 + max_topups):
        needed = wanted - len(kept)
        if needed <= 0:
            break
        report.calls += 1
        try:
            candidates = await ask(call, list(kept), needed)
        except BackendError as exc:
            report.errors.append(f"call {call + 1}: {exc}")
            continue
        nonblank = []
        for item in candidates:
            if text(item).strip():
                nonblank.append(item)
            else:
                report.dropped.append(DroppedItem(text="", reason="blank", call=call + 1))
        # Encoding is CPU work: off the event loop, so model calls keep flowing.
        result = await asyncio.to_thread(dedup, nonblank, threshold, text=text, existing=kept, embedder=embedder)
        for d in result.dropped:
            report.dropped.append(DroppedItem(text=d.text, reason=d.reason, duplicate_of=d.duplicate_of_text,
                                              similarity=round(d.similarity, 4), call=call + 1))
        kept.extend(result.kept[:needed])  # the sized schema already caps a reply at ``needed``
    report.kept = len(kept)
    return kept
