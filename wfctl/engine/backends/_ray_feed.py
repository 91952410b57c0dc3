"""The driver's end of one attempt's key in the run's LineBox (see `_ray_lines`).

While a task runs longer than the worker's quiet time, its lines are read from the box and
shown; a react attempt's tool requests are run here, each through the engine's attempt loop
(`ctx.call_tool`, as locally: the tool's retry policy, timeout, breaker and record, and its
action a Ray task of its own when it is remote-capable), and answered through the box.
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
import ray.exceptions as rex

from wfctl.actions.base import ActionContext, ActionError
from wfctl.engine.backends._ray_lines import ToolRequest
from wfctl.engine.backends._ray_worker import QUIET, Outcome, Wire

__all__ = ["Feed"]

#: How long one read of the box waits for an item.
_READ_WAIT = 0.5
#: How long the last read may take when the attempt did not end by itself (a gone box).
_LAST_READ = 5.0


class Feed:
    """Shows one attempt's lines and serves its tool calls while its task runs."""

    def __init__(self, box: Any, key: str, ctx: ActionContext, tools: bool) -> None:
        self.box = box
        self.key = key
        self.ctx = ctx
        self.tools = tools
        self.cursor = 0  # items of the key read so far

    async def outcome(self, ref: Any) -> Wire:
        """Await `ref`, reading the box once the task has run its quiet time (at once for
        an attempt with tools); a Ray error is raised as itself."""
        if not self.tools:
            with anyio.move_on_after(QUIET):
                done: Wire = await ref  # most attempts end here: no read at all
                return done
        got: list[Wire] = []
        failed: list[BaseException] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump, tg)
            try:
                got.append(await ref)
            except rex.RayError as exc:  # raised outside the group: not an ExceptionGroup
                failed.append(exc)
            tg.cancel_scope.cancel()
        if failed:
            raise failed[0]
        return got[0]

    async def _pump(self, tg: anyio.abc.TaskGroup) -> None:
        try:
            while True:
                items = await self.box.take.remote(self.key, self.cursor, _READ_WAIT)
                self._show(items, tg)
        except rex.RayError:
            return  # the box is gone: the attempt's own outcome says what happened

    def _show(self, items: list[Any], tg: anyio.abc.TaskGroup | None) -> None:
        self.cursor += len(items)
        on_output, masker = self.ctx.on_output, self.ctx.masker
        for item in items:
            if isinstance(item, ToolRequest):
                if tg is not None:
                    tg.start_soon(self._tool, item)
            elif on_output is not None:
                on_output(masker.mask(item))

    async def _tool(self, request: ToolRequest) -> None:
        call_tool = self.ctx.call_tool
        assert call_tool is not None  # the worker asks only when the attempt has tools
        reply: tuple[Any, ...]
        try:
            reply = ("ok", await call_tool(request.name, request.arguments, self.ctx))
        except ActionError as exc:
            reply = ("error", exc.message, exc.kind, exc.output, exc.retryable)
        except Exception as exc:  # the engine's bug is still this tool call's failure
            reply = ("error", f"{type(exc).__name__}: {exc}", "error", None, False)
        self.box.answer.remote(self.key, request.call_id, reply)  # the worker awaits it

    async def finish(self, outcome: Outcome | None) -> None:
        """Show the lines not shown yet: those in the box, then the outcome's own. Without
        an outcome (lost, cancelled, timed out) whatever the box has."""
        sent = None if outcome is None else outcome.sent
        if sent is None or sent > self.cursor:
            # A box gone with its node costs the lines not shown yet, nothing else.
            wait = None if outcome is not None else _LAST_READ
            with anyio.move_on_after(wait), contextlib.suppress(rex.RayError):
                self._show(await self.box.drain.remote(self.key, self.cursor, sent), None)
        elif sent:
            self.box.drain.remote(self.key, sent, sent)  # forget the key; nothing to show
        if outcome is not None:
            self._show(list(outcome.lines), None)
