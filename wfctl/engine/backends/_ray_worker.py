"""What runs inside a Ray task: one attempt of one action, on a worker.

The task never raises for an attempt's own failure: it returns an :class:`Outcome`, so the
driver tells "the action failed" (its ActionError, as the local backend would raise it)
from "Ray lost the worker" (a Ray exception). Timeouts are enforced here, on the worker, so
that a shell step's process group is killed where it runs, and a blocking sync function
is interrupted where it runs (`_ray_interrupt`), not abandoned in a thread.

Output lines: an attempt's first :data:`QUIET` seconds of lines are held here and come back
inside its Outcome, so a short attempt costs no round trip beyond its task. Past that (or at
its first tool call) the attempt goes live: what it held and every later line go to the
run's LineBox as they come (fire and forget; the Outcome says how many, so the driver's last
read waits for them all). A react attempt's tool calls go through the box to the driver,
which runs each as an attempt of its own, as locally (see `wfctl.engine.backends.ray`).
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfctl.engine.backends._ray_interrupt import Guard, guarded

__all__ = ["QUIET", "AttemptSpec", "Job", "Outcome", "Wire", "job_of", "run_attempt", "where_am_i"]

#: Seconds an attempt's lines are held on the worker before they stream to the driver.
QUIET = 0.1


@dataclass(frozen=True)
class AttemptSpec:
    """The driver's ActionContext reduced to what pickles (no callbacks, no masker)."""

    run_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    workdir: str | None  # None: the task's cwd (the runtime_env working_dir)
    secret_env: Mapping[str, str]  # only for actions that start processes
    line_key: str | None  # None: the attempt's lines are not wanted
    timeout: float | None = None
    box: Any = None  # the run's LineBox actor (with line_key)
    # The driver's values of the environment variables the action reads (react: its API
    # key and base URL), so that a worker uses what a local run would.
    environ: Mapping[str, str] | None = None
    tools: bool = False  # the attempt may call tools (through the box)
    # The run's artifacts directory (WFCTL_ARTIFACTS): the driver's path, which a worker
    # on the same machine (or sharing that file system) writes to.
    artifacts_dir: str | None = None


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
    sent: int = 0  # items put in the box (lines, tool requests)
    lines: tuple[str, ...] = ()  # the lines after those: never sent


#: What the driver sends for one attempt: (the pickled action, its rendered args, the
#: spec's fields). One Ray argument rather than three (Ray frames and serialises each on
#: its own), and plain tuples and bytes: cloudpickle spends ~5 us looking up the class of
#: each object of a class of ours, which a tuple skips. The answer is an Outcome's fields.
Job = tuple[bytes, Mapping[str, Any], tuple[Any, ...]]
Wire = tuple[Any, ...]


def job_of(action_blob: bytes, args: Mapping[str, Any], spec: AttemptSpec) -> Job:
    """The remote function's argument for one attempt."""
    return action_blob, args, tuple(spec.__dict__.values())


@functools.lru_cache(maxsize=64)
def _action(blob: bytes) -> Any:
    """The action pickled in `blob` (the same few per worker: unpickled once)."""
    import pickle

    return pickle.loads(blob)


@functools.cache
def where_am_i() -> tuple[str, str, str]:
    """(node id, worker id, node ip) of the calling Ray worker (fixed for its life)."""
    import ray

    ctx = ray.get_runtime_context()
    return ctx.get_node_id(), ctx.get_worker_id(), ray.util.get_node_ip_address()


class _Channel:
    """The worker's end of one attempt's key in the LineBox. Called on the attempt's event
    loop only (lines are reported there), so it needs no lock."""

    def __init__(self, box: Any, key: str) -> None:
        self.box = box
        self.key = key
        self.held: list[str] = []
        self.sent = 0
        self.live = False
        self._calls = 0

    def line(self, text: str) -> None:
        if self.live:
            self._put(text)
        else:
            self.held.append(text)

    def go_live(self) -> None:
        if not self.live:
            self.live = True
            for text in self.held:
                self._put(text)
            self.held.clear()

    def _put(self, item: Any) -> None:
        self.box.put.remote(self.key, item)  # fire and forget: one caller's calls keep order
        self.sent += 1

    async def call_tool(self, name: str, arguments: dict[str, Any], actx: Any) -> Any:
        """Run a tool on the driver: the request goes through the box, the answer back."""
        from wfctl.actions.base import ActionError
        from wfctl.engine.backends._ray_lines import ToolRequest

        self.go_live()  # the lines before the call come before the tool's own
        self._calls += 1
        self._put(ToolRequest(self._calls, name, dict(arguments)))
        reply = await self.box.reply.remote(self.key, self._calls)
        if reply[0] == "ok":
            return reply[1]
        _, message, kind, output, retryable = reply
        raise ActionError(message, kind, output, retryable)


@functools.lru_cache(maxsize=64)
def _workdir(path: str | None) -> Path:
    """The attempt's working directory (the same few per worker: parsed once)."""
    return Path(path) if path else Path.cwd()


def _masker(secrets: Mapping[str, str]) -> Any:
    """A masker of the attempt's secrets (one shared empty masker for most attempts)."""
    from wfctl.secrets import Masker

    return Masker(secrets.values()) if secrets else _empty_masker()


@functools.cache
def _empty_masker() -> Any:
    from wfctl.secrets import Masker

    return Masker.empty()


def _on_this_thread(blocking: Any, args: Mapping[str, Any], ctx: Any, timeout: float | None) -> Any:
    """`run_blocking` here under the interrupt guard (TimeoutError past the deadline);
    NotImplemented when it cannot run so."""
    guard: Guard | None = None
    try:
        with guarded(timeout) as guard:
            if guard is None and timeout is not None:
                return NotImplemented  # nothing here could stop it at its deadline
            done = blocking(args, ctx)
        _checkpoint()
    except KeyboardInterrupt:
        if guard is not None and guard.timed_out:
            raise TimeoutError from None
        raise  # Ray's cancel
    if guard is not None and guard.timed_out:
        raise TimeoutError  # the function swallowed the interrupt and ran on
    return done


def _checkpoint() -> None:
    """A call: Python raises an interrupt still pending from the guard here at the latest
    (inside the caller's try), never later in Ray's code."""


def run_attempt(job: Job) -> Wire:
    """Run the job's action once here; the outcome's fields (a Ray cancel still raises
    KeyboardInterrupt)."""
    import anyio

    from wfctl.actions.base import ActionContext, ActionError

    blob, args, fields = job
    action, spec = _action(blob), AttemptSpec(*fields)
    channel = _Channel(spec.box, spec.line_key) if spec.box and spec.line_key else None
    artifacts = spec.artifacts_dir
    environ = spec.environ
    ctx = ActionContext(
        run_id=spec.run_id,
        step_id=spec.step_id,
        attempt=spec.attempt,
        idempotency_key=spec.idempotency_key,
        workdir=_workdir(spec.workdir),
        secret_env={**environ, **spec.secret_env} if environ else spec.secret_env,
        masker=_masker(spec.secret_env),
        on_output=None if channel is None else channel.line,
        call_tool=channel.call_tool if channel is not None and spec.tools else None,
        artifacts=None if artifacts is None else functools.partial(Path, artifacts),
    )

    async def attempt() -> Any:
        # Lines stream once the attempt has run QUIET seconds (anyio.run runs asyncio).
        later = None if channel is None else asyncio.get_running_loop().call_later(
            QUIET, channel.go_live
        )  # fmt: skip
        try:
            if spec.timeout is None:
                return await action.run(args, ctx)
            with anyio.fail_after(spec.timeout):
                return await action.run(args, ctx)
        finally:
            if later is not None:
                later.cancel()

    def call() -> Any:
        # Without lines, an action that can block runs on this thread: no event loop, no
        # thread hop (each GIL release costs ~0.1 ms in a Ray worker), and Ray's cancel or
        # the deadline stops the function itself, even in a system call (_ray_interrupt).
        blocking = getattr(action, "run_blocking", None)
        if blocking is not None and channel is None:
            done = _on_this_thread(blocking, args, ctx, spec.timeout)
            if done is not NotImplemented:
                return done
        # A fresh anyio.run per attempt: it turns Ray's cancel (a KeyboardInterrupt) into
        # the attempt's cancellation, so the action's cleanup runs (a reused asyncio.Runner
        # did not: the shell's process group outlived a Ctrl-C). The guard wakes its loop
        # for the cancel; the attempt's own fail_after keeps its deadline.
        with guarded(None):
            return anyio.run(attempt)

    status, output, error = "ok", None, None
    try:
        output = call()
    except ActionError as exc:
        status, error = "error", (exc.message, exc.kind, exc.output, exc.retryable)
    except TimeoutError:
        status = "timeout"
    except Exception as exc:  # a bug in an action is still that attempt's failure
        status, error = "error", (f"{type(exc).__name__}: {exc}", "error", None, True)
    node_id, worker_id, node_ip = where_am_i()
    sent, lines = (0, ()) if channel is None else (channel.sent, tuple(channel.held))
    return status, output, error, node_id, worker_id, node_ip, os.getpid(), sent, lines
