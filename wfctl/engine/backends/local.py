"""The local backend: an attempt runs in this process (shell steps in subprocesses)."""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any

import anyio

from wfctl.actions.base import Action, ActionContext

__all__ = ["LocalBackend"]


class LocalBackend:
    """Awaits the action here, under the attempt's timeout."""

    name = "local"

    def run(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Awaitable[Any]:
        """The action's own coroutine (no frame of ours per attempt without a timeout)."""
        if timeout is None:
            return action.run(args, ctx)
        return _within(action.run(args, ctx), timeout)


async def _within(attempt: Awaitable[Any], timeout: float) -> Any:
    with anyio.fail_after(timeout):
        return await attempt
