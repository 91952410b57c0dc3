"""Where one attempt of one action runs.

The driver (the attempt loop) keeps scheduling, retries, breakers, routing and the
journal; a backend only runs the attempt it is given. Output lines stream back through
``ctx.on_output``. `local` (this process) is the default; a remote backend (Ray) plugs in
behind the same protocol.

Which one: `RunOptions.backend` (an object), else `RunOptions.executor` (the CLI's
`--executor` / `WFCTL_EXECUTOR`), else the workflow's `executor:`; see :func:`select_backend`.
A backend may also have ``bind(executor)``: called once per run before the first attempt
(the Ray backend connects there, checks placement and learns the run's steps and agents).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from wfctl.actions.base import Action, ActionContext, ActionError
from wfctl.format.extras import install_hint

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor
    from wfctl.engine.options import RunOptions
    from wfctl.model import Workflow

__all__ = [
    "EXECUTORS",
    "RAY_MISSING",
    "Backend",
    "BackendUnavailable",
    "bind_backend",
    "default_backend",
    "ensure_json",
    "executor_name",
    "make_backend",
    "select_backend",
]

#: The names `executor:`, `--executor` and `WFCTL_EXECUTOR` take.
EXECUTORS = ("local", "ray")
RAY_MISSING = "the ray executor needs Ray: " + install_hint("ray")


class BackendUnavailable(Exception):
    """The chosen executor cannot run this workflow (not installed, no cluster, a step no
    node can place): a usage error, exit 2, before anything ran."""


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


def make_backend(name: str, ray_address: str | None = None) -> Backend:
    """A backend by executor name (Ray imported only for `ray`)."""
    if name == "local":
        return default_backend()
    if name != "ray":
        raise BackendUnavailable(f"unknown executor {name!r}; one of {', '.join(EXECUTORS)}")
    try:
        from wfctl.engine.backends.ray import RayBackend
    except ImportError:
        raise BackendUnavailable(RAY_MISSING) from None
    return RayBackend(address=ray_address)


def select_backend(workflow: Workflow, opts: RunOptions) -> Backend:
    """The run's backend: the options' object, else the executor named by the options,
    else by the workflow."""
    if opts.backend is not None:
        return opts.backend
    return make_backend(opts.executor or workflow.executor, opts.ray_address)


def executor_name(workflow: Workflow, opts: RunOptions) -> str:
    """The name of the run's executor (journaled, so that a resume runs where it started)."""
    if opts.backend is not None:
        return opts.backend.name
    return opts.executor or workflow.executor


def bind_backend(executor: Executor) -> None:
    """Let the run's backend prepare for this run (a remote one connects and checks)."""
    bind = getattr(executor.attempts.backend, "bind", None)
    if bind is not None:
        bind(executor)


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
