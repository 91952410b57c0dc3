"""What runs inside a Ray task: one attempt of one action, on a worker.

The task never raises for an attempt's own failure: it returns an :class:`Outcome`, so the
driver tells "the action failed" (its ActionError, as the local backend would raise it)
from "Ray lost the worker" (a Ray exception). Output lines go to the run's LineBox actor as
they come; the box is closed before the task returns, so the driver's last read has them
all. Timeouts are enforced here, on the worker, so that a shell step's process group is
killed where it runs.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["AttemptSpec", "Outcome", "run_attempt", "where_am_i"]


@dataclass(frozen=True)
class AttemptSpec:
    """The driver's ActionContext reduced to what pickles (no callbacks, no masker)."""

    run_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    workdir: str | None  # None: the task's cwd (the runtime_env working_dir)
    secret_env: Mapping[str, str]  # only for actions that start processes
    line_key: str | None  # None: the attempt's lines are not streamed


@dataclass(frozen=True)
class Outcome:
    """How the attempt ended on the worker and where it ran."""

    status: str  # "ok" | "error" | "timeout"
    output: Any
    error: tuple[str, str, Any, bool] | None  # (message, kind, output, retryable)
    node_id: str
    worker_id: str
    node_ip: str
    pid: int


@functools.cache
def where_am_i() -> tuple[str, str, str]:
    """(node id, worker id, node ip) of the calling Ray worker (fixed for its life)."""
    import ray

    ctx = ray.get_runtime_context()
    return ctx.get_node_id(), ctx.get_worker_id(), ray.util.get_node_ip_address()


def run_attempt(action: Any, args: Mapping[str, Any], spec: AttemptSpec, timeout: float | None,
                box: Any) -> Outcome:  # fmt: skip
    """Run `action` once here; the outcome (a Ray cancel still raises KeyboardInterrupt)."""
    import anyio

    from wfctl.actions.base import ActionContext, ActionError
    from wfctl.secrets import Masker

    ctx = ActionContext(
        run_id=spec.run_id,
        step_id=spec.step_id,
        attempt=spec.attempt,
        idempotency_key=spec.idempotency_key,
        workdir=Path(spec.workdir) if spec.workdir else Path.cwd(),
        secret_env=spec.secret_env,
        masker=Masker(spec.secret_env.values()),
        on_output=_sender(box, spec.line_key),
    )

    async def attempt() -> Any:
        if timeout is None:
            return await action.run(args, ctx)
        with anyio.fail_after(timeout):
            return await action.run(args, ctx)

    status, output, error = "ok", None, None
    try:
        # A fresh anyio.run per attempt: it turns Ray's cancel (a KeyboardInterrupt) into
        # the attempt's cancellation, so the action's cleanup runs (a reused asyncio.Runner
        # did not: the shell's process group outlived a Ctrl-C).
        output = anyio.run(attempt)
    except ActionError as exc:
        status, error = "error", (exc.message, exc.kind, exc.output, exc.retryable)
    except TimeoutError:
        status = "timeout"
    except Exception as exc:  # a bug in an action is still that attempt's failure
        status, error = "error", (f"{type(exc).__name__}: {exc}", "error", None, True)
    finally:
        _close(box, spec.line_key)
    node_id, worker_id, node_ip = where_am_i()
    return Outcome(status, output, error, node_id, worker_id, node_ip, os.getpid())


def _sender(box: Any, key: str | None) -> Any:
    if box is None or key is None:
        return None

    def send(line: str) -> None:
        box.put.remote(key, line)  # fire and forget: the close below orders after it

    return send


def _close(box: Any, key: str | None) -> None:
    if box is not None and key is not None:
        import ray
        from ray import exceptions as rex

        # Waited for: once the task returns, the box has every line. A box that is gone
        # costs only lines, never the attempt's own outcome.
        with contextlib.suppress(rex.RayError):
            ray.get(box.close.remote(key))
