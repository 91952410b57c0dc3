"""The channel between running attempts on Ray workers and the driver: lines and tool calls.

One actor per run holds, per attempt key, what its worker has sent: output lines, and a
react attempt's tool requests (:class:`ToolRequest`), which the driver runs and answers
(:meth:`LineBox.answer`) while the worker awaits :meth:`LineBox.reply`. Reads never remove
items, so a read the driver abandons (the attempt ended meanwhile) loses nothing: the last
`drain` returns the rest and forgets the attempt.

A worker sends nothing for an attempt that ends quickly: its lines come back inside the
attempt's outcome (see `_ray_worker`), so most attempts never touch the box.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

import ray

__all__ = ["DRAIN_WAIT", "LineBox", "ToolRequest", "new_line_box"]

#: How long the final drain waits for lines the worker sent but the box has not yet seen
#: (fire-and-forget puts still in flight when the task returned).
DRAIN_WAIT = 10.0


@dataclass(frozen=True)
class ToolRequest:
    """A react attempt on a worker asks the driver to run one of its tools."""

    call_id: int
    name: str
    arguments: dict[str, Any]


#: What the driver answers a ToolRequest with: ("ok", output) or ("error", message, kind,
#: output, retryable).
Reply = tuple[Any, ...]


class LineBox:
    """Per attempt key: what its worker sent so far, and the answers to its tool calls."""

    def __init__(self) -> None:
        self._items: dict[str, list[Any]] = {}
        self._changed: dict[str, asyncio.Event] = {}
        self._replies: dict[tuple[str, int], Reply] = {}

    def _event(self, key: str) -> asyncio.Event:
        event = self._changed.get(key)
        if event is None:
            event = self._changed[key] = asyncio.Event()
        return event

    def put(self, key: str, item: str | ToolRequest) -> None:
        """A worker's next line or tool request (one worker's calls run in its order)."""
        self._items.setdefault(key, []).append(item)
        self._event(key).set()

    async def take(self, key: str, cursor: int, wait: float) -> list[Any]:
        """Items from `cursor` on, waiting up to `wait` s for one."""
        await self._wait(key, cursor + 1, wait)
        return self._items.get(key, [])[cursor:]

    async def _wait(self, key: str, count: int, wait: float) -> None:
        event = self._event(key)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(wait):
                while len(self._items.get(key, ())) < count:
                    event.clear()
                    await event.wait()

    async def drain(self, key: str, cursor: int, sent: int | None) -> list[Any]:
        """Items `cursor`..`sent` (waiting for puts still on their way; None: those here
        now); forgets the key."""
        if sent is not None:
            await self._wait(key, sent, DRAIN_WAIT)
        items = self._items.pop(key, [])
        self._changed.pop(key, None)
        return items[cursor:sent]

    def answer(self, key: str, call_id: int, reply: Reply) -> None:
        """The driver's answer to a tool request."""
        self._replies[(key, call_id)] = reply
        self._event(f"{key}#{call_id}").set()

    async def reply(self, key: str, call_id: int) -> Reply:
        """Wait for the driver's answer to a tool request (awaited by the worker)."""
        wake = f"{key}#{call_id}"
        while (key, call_id) not in self._replies:
            await self._event(wake).wait()
        self._changed.pop(wake, None)
        return self._replies.pop((key, call_id))


def new_line_box() -> Any:
    """A LineBox actor on the driver's own node (so losing a worker node keeps it).

    The affinity is hard: a soft one let Ray place the box on a worker node when the
    driver's node looked busy, and removing that node then failed every later attempt.
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    actor = ray.remote(num_cpus=0, max_concurrency=1000)(LineBox)
    return actor.options(
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=here, soft=False),
        max_restarts=0,
    ).remote()
