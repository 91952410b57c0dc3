"""A parallel group's `max_parallel` on the LangGraph engine.

LangGraph starts every ready child of a group in one superstep (in node-name order); the
event-driven scheduler starts the best-ranked ones, in declaration order among equals,
and holds the rest. Here the children ask for a place first and are let in once all of
the superstep have asked, by the same order: both engines start the same children.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.model import Step, StepStatus

if TYPE_CHECKING:
    from wfctl.compile.plan import Container
    from wfctl.engine.executor import Executor


class GroupLimit:
    """At most `limit` children of one group at once, the best-ranked first."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self._waiters: list[tuple[float, int, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()
        self._granting = False

    @asynccontextmanager
    async def place(self, rank: float, order: int) -> AsyncIterator[None]:
        """Hold a place while the body runs; waits (not started) while the group is full."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiters, (-rank, order, next(self._seq), future))
        self._soon()
        try:
            await future
        except BaseException:
            if future.done() and not future.cancelled():
                self._release()
            raise
        try:
            yield
        finally:
            self._release()

    def _soon(self) -> None:
        # After the tasks already scheduled (the rest of the superstep) have asked.
        if not self._granting:
            self._granting = True
            asyncio.get_running_loop().call_soon(self._grant)

    def _grant(self) -> None:
        self._granting = False
        while self.active < self.limit and self._waiters:
            *_, future = heapq.heappop(self._waiters)
            if future.done():
                continue  # cancelled while waiting
            self.active += 1
            future.set_result(None)

    def _release(self) -> None:
        self.active -= 1
        self._soon()


class GroupControl:
    """The LangGraph runtime's hold over a group's children, which run as node tasks of
    the group's subgraph: its limit, and stopping them (fail_fast)."""

    _ex: Executor
    _nodes: dict[str, asyncio.Task[Any]]
    _groups: dict[str, GroupLimit]

    def _group_limit(self, step: Step) -> AbstractAsyncContextManager[Any]:
        """A parallel group's `max_parallel` (its excess children wait, not started)."""
        ex = self._ex
        level = ex.plan.levels.get(step.container) if step.container is not None else None
        if step.container is None or level is None or level.limit is None:
            return nullcontext()
        if step.container not in self._groups:
            self._groups[step.container] = GroupLimit(level.limit)
        order = [s.step_id for s in level.steps].index(step.step_id)
        return self._groups[step.container].place(ex.plan.priority.get(step.step_id, 0.0), order)

    def stop_nodes(self, container: Container, why: str) -> None:
        """Cancel the node tasks of `container`'s steps now (fail_fast): those still
        waiting for a slot are skipped, the running ones record their cancellation."""
        ex = self._ex
        for child in container.steps:
            task = self._nodes.get(child.step_id)
            if task is None:
                continue
            record = ex.records[child.step_id]
            if record.status is StepStatus.PENDING and record.started_at is None:
                record.status, record.reason = StepStatus.SKIPPED, f"cancelled: {why}"
                ex.emit_state(child.step_id)
            task.cancel()

    async def cancel_nodes(self, container: Container) -> None:
        """Cancel the node tasks of `container`'s steps and wait until each recorded how
        it stopped: a cancelled subgraph `ainvoke` leaves them running (fail_fast)."""
        tasks = [t for s in container.steps if (t := self._nodes.get(s.step_id)) is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            with anyio.CancelScope(shield=True):
                await asyncio.wait(tasks)
