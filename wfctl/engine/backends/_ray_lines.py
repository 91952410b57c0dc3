"""Output lines of running attempts, carried from Ray workers to the driver.

One actor per run holds, per attempt, the lines its worker has sent; the driver reads them
from a cursor while the attempt runs. Reads never remove lines, so a read the driver
abandons (the attempt ended meanwhile) loses nothing: the last `drain` returns the rest.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import ray

__all__ = ["LineBox", "new_line_box"]


class LineBox:
    """Per attempt key: its lines so far and whether its worker is done writing."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}
        self._closed: set[str] = set()
        self._changed: dict[str, asyncio.Event] = {}

    def _event(self, key: str) -> asyncio.Event:
        event = self._changed.get(key)
        if event is None:
            event = self._changed[key] = asyncio.Event()
        return event

    def put(self, key: str, line: str) -> None:
        """A worker's next line (calls from one worker run in the order it made them)."""
        self._lines.setdefault(key, []).append(line)
        self._event(key).set()

    def close(self, key: str) -> None:
        """The worker sent its last line."""
        self._closed.add(key)
        self._event(key).set()

    async def take(self, key: str, cursor: int, wait: float) -> tuple[list[str], bool]:
        """Lines from `cursor` on (waiting up to `wait` s for one), and whether closed."""
        event = self._event(key)
        if len(self._lines.get(key, ())) <= cursor and key not in self._closed:
            event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), wait)
        return self._lines.get(key, [])[cursor:], key in self._closed

    def drain(self, key: str, cursor: int) -> list[str]:
        """The lines from `cursor` on; the attempt is forgotten."""
        lines = self._lines.pop(key, [])[cursor:]
        self._closed.discard(key)
        self._changed.pop(key, None)
        return lines


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
