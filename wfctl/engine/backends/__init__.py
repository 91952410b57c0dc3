"""Where one attempt of one action runs.

The driver (the attempt loop) keeps scheduling, retries, breakers, routing and the
journal; a backend only runs the attempt it is given. Output lines stream back through
``ctx.on_output``. `local` (this process) is the default; a remote backend (Ray) plugs in
behind the same protocol.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from typing import Any, Protocol

from wfctl.actions.base import Action, ActionContext, ActionError

__all__ = ["Backend", "default_backend", "ensure_json"]


class Backend(Protocol):
    """Runs one attempt of one action."""

    name: str

    def run(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Awaitable[Any]:
        """An awaitable of the action's output (an ``async def`` will do). It raises
        ActionError for a failed attempt, TimeoutError once `timeout` seconds pass; any
        other exception fails the attempt with kind `error`. Cancelling it must stop the
        attempt (and whatever it started)."""
        ...


def default_backend() -> Backend:
    """The local backend (attempts run in this process)."""
    from wfctl.engine.backends.local import LocalBackend

    return LocalBackend()


_JSON_SAFE = (str, int, float, bool, type(None))


def ensure_json(value: Any) -> Any:
    """Raise a non-retryable ActionError if an output cannot be stored as JSON."""
    if isinstance(value, _JSON_SAFE):
        return value
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ActionError(
            f"step output is not JSON-serialisable: {exc}", kind="error", retryable=False
        ) from None
    return value
