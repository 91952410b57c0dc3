"""Concurrency slots handed out by priority (longest remaining path first), not FIFO."""

from __future__ import annotations

import heapq
import itertools

import anyio


class Ticket:
    """A place in the slot queue; granted now or later, awaited with `PrioritySlots.wait`."""

    __slots__ = ("cancelled", "event", "granted", "priority")

    def __init__(self, priority: float) -> None:
        self.priority = priority
        self.granted = False
        self.cancelled = False
        self.event: anyio.Event | None = None


class PrioritySlots:
    """Like anyio.CapacityLimiter, but waiters with a higher priority are served first.

    `request` is synchronous so the scheduler can queue a step the moment it becomes
    ready, before its task first runs: a slot freed in between then goes to the best
    step, not to whichever task happened to ask first.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.in_use = 0
        self.peak = 0
        self._waiters: list[tuple[float, int, Ticket]] = []
        self._seq = itertools.count()

    def request(self, priority: float) -> Ticket:
        ticket = Ticket(priority)
        if self.in_use < self.total and not self._waiters:
            self._grant(ticket)
        else:
            heapq.heappush(self._waiters, (-priority, next(self._seq), ticket))
        return ticket

    async def wait(self, ticket: Ticket) -> None:
        if ticket.granted:
            return
        ticket.event = anyio.Event()
        try:
            await ticket.event.wait()
        except BaseException:
            self.cancel(ticket)
            raise

    async def acquire(self, priority: float) -> Ticket:
        ticket = self.request(priority)
        await self.wait(ticket)
        return ticket

    def cancel(self, ticket: Ticket) -> None:
        """Give up a ticket: pass its slot on if it had one, else leave the queue."""
        if ticket.granted:
            ticket.granted = False
            self.release()
        else:
            ticket.cancelled = True  # removed lazily when it reaches the top of the heap

    def _grant(self, ticket: Ticket) -> None:
        ticket.granted = True
        self.in_use += 1
        self.peak = max(self.peak, self.in_use)

    def release(self) -> None:
        self.in_use -= 1
        # Hand the slot straight to the best live waiter so nobody can overtake it.
        while self._waiters:
            _, _, ticket = heapq.heappop(self._waiters)
            if ticket.cancelled:
                continue
            self._grant(ticket)
            if ticket.event is not None:
                ticket.event.set()
            return
