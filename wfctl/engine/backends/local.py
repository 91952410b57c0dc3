"""The local backend: an attempt runs in this process (shell steps in subprocesses)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import anyio

from wfctl.actions.base import Action, ActionContext, ActionError

__all__ = ["LocalBackend", "ensure_json"]

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


class LocalBackend:
    """Awaits the action here, under the attempt's timeout."""

    name = "local"

    async def run(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Any:
        """One attempt: the output, or ActionError (timeouts and bugs become one too)."""
        try:
            if timeout is None:
                return ensure_json(await action.run(args, ctx))
            with anyio.fail_after(timeout):
                output = await action.run(args, ctx)
            return ensure_json(output)
        except TimeoutError:
            limit = f" after {timeout:g}s" if timeout is not None else ""
            raise ActionError(f"timed out{limit}", kind="timeout") from None
        except ActionError:
            raise
        except Exception as exc:  # a bug in an action is still that step's failure
            raise ActionError(f"{type(exc).__name__}: {exc}", kind="error") from None
