"""The bound on a backend's requests in flight, and who goes next when it binds.

When every slot is taken, the waiting request of the dialogue that has made the
fewest calls goes first (first come among equals). A plain FIFO semaphore lets
dialogues drift apart: the ones whose fan-out (critique, revision, verification
of several turns) happened to be served first run ahead, and when the job list
runs out the stragglers finish alone with the server half idle. Serving the
least advanced dialogue first keeps the dialogues in flight moving together, so
the batch stays full to the end of the run. Nobody starves: a dialogue that
waits is overtaken only by dialogues with fewer calls than it, and every call
they make brings them closer to it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools


class FairSlots:
    """At most ``limit`` holders at once; waiters served by ascending ``progress``, then arrival."""

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self, progress: int = 0) -> None:
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (progress, next(self._arrivals), granted))
        try:
            await granted
        except asyncio.CancelledError:
            # Cancelled after the slot was handed over but before this task resumed: pass it on.
            # (A waiter cancelled earlier stays in the heap, done; ``release`` skips it.)
            if granted.done() and not granted.cancelled():
                self.release()
            raise

    def release(self) -> None:
        while self._waiters:
            granted = heapq.heappop(self._waiters)[2]
            if not granted.done():
                granted.set_result(None)  # the slot goes straight to the waiter, never through _free
                return
        self._free += 1
