"""Concurrency slots handed out by priority (longest remaining path first), not FIFO."""

from __future__ import annotations

import heapq
import itertools

import anyio


class PrioritySlots:
    """Like anyio.CapacityLimiter, but waiters with a higher priority are served first."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self._waiters: list[tuple[float, int, anyio.Event]] = []
        self._seq = itertools.count()

    async def acquire(self, priority: float) -> None:
        if self.in_use < self.total and not self._waiters:
            self._take()
            return
        event = anyio.Event()
        entry = (-priority, next(self._seq), event)
        heapq.heappush(self._waiters, entry)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                # The slot was handed to us as we were cancelled: pass it on.
                self.release()
            else:
                self._waiters.remove(entry)
                heapq.heapify(self._waiters)
            raise

    def _take(self) -> None:
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self) -> None:
        # Hand the slot straight to the best waiter so nobody can overtake it.
        if self._waiters:
            _, _, event = heapq.heappop(self._waiters)
            event.set()
            return
        self.in_use -= 1
