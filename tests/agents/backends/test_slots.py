"""FairSlots: the bound on requests in flight, and the order waiters are served in when it binds."""

from __future__ import annotations

import asyncio

import pytest

from sparring.agents.backends._slots import FairSlots


async def _hold(slots: FairSlots, progress: int, log: list[int], release: asyncio.Event) -> None:
    await slots.acquire(progress)
    log.append(progress)
    try:
        await release.wait()
    finally:
        slots.release()


async def test_the_least_advanced_waiter_goes_first_then_first_come():
    slots = FairSlots(1)
    await slots.acquire()  # the one slot is taken
    served: list[int] = []
    go = asyncio.Event()
    go.set()  # each waiter releases as soon as it is served
    waiters = [asyncio.create_task(_hold(slots, p, served, go)) for p in (5, 2, 9, 2, 0)]
    await asyncio.sleep(0)  # all queued
    slots.release()
    await asyncio.gather(*waiters)
    assert served == [0, 2, 2, 5, 9]


async def test_never_more_holders_than_the_limit():
    slots = FairSlots(3)
    holding = peak = 0

    async def one(progress: int) -> None:
        nonlocal holding, peak
        await slots.acquire(progress)
        holding += 1
        peak = max(peak, holding)
        await asyncio.sleep(0.001)
        holding -= 1
        slots.release()

    await asyncio.gather(*(one(i % 4) for i in range(40)))
    assert peak == 3
    # every slot came back: three can be taken at once without waiting
    for _ in range(3):
        await asyncio.wait_for(slots.acquire(), 0.1)


@pytest.mark.parametrize("when", ["while-waiting", "after-the-handover"])
async def test_a_cancelled_waiter_does_not_lose_a_slot(when: str):
    slots = FairSlots(1)
    await slots.acquire()
    waiter = asyncio.create_task(slots.acquire(1))
    await asyncio.sleep(0)
    if when == "after-the-handover":
        slots.release()  # the slot is handed to the waiter, which has not resumed yet
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    if when == "while-waiting":
        slots.release()
    # the slot is free again, not held by the cancelled waiter
    await asyncio.wait_for(slots.acquire(), 0.1)
