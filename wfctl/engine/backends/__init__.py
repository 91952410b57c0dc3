"""Where one attempt of one action runs.

The driver (the attempt loop) keeps scheduling, retries, breakers, routing and the
journal; a backend only runs the attempt it is given and returns the action's output or
raises :class:`~wfctl.actions.base.ActionError`. Output lines stream back through
``ctx.on_output``. `local` (this process) is the default; a remote backend (Ray) plugs in
behind the same protocol.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from wfctl.actions.base import Action, ActionContext

__all__ = ["Backend", "default_backend"]


class Backend(Protocol):
    """Runs one attempt of one action."""

    name: str

    async def run(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Any:
        """The action's JSON-able output, or raise ActionError (kind `timeout` when
        `timeout` seconds pass; kind `error` for any other exception)."""
        ...


def default_backend() -> Backend:
    """The local backend (attempts run in this process)."""
    from wfctl.engine.backends.local import LocalBackend

    return LocalBackend()
