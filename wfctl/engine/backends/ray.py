"""The Ray backend: each attempt of a remote-capable action is one Ray task.

The driver (this process) keeps scheduling, the journal, retries and breakers; Ray's own
task retries are off (`max_retries=0`), so the workflow's retry policy is the one that
counts. Placement: a step's and its agent's `resources:` and the routed capability (a Ray
custom resource of that name) become the task's resource request. Actions that do not
declare :attr:`~wfctl.actions.base.Capability.REMOTE` (the pure built-ins) run here on the
driver, as locally.

A react attempt is a Ray task too: its model client is made on the worker, which gets the
driver's values of the variables the action names (`environment`: API key, base URL) and
no other secret. Its tools call back into the driver through the run's LineBox: each tool
call runs here through the engine's attempt loop, exactly as in a local run (the tool's
retry policy, timeout, breaker, agent routing, the `step:` tool's record), and the tool's
own action is a Ray task of its own when remote-capable, placed by its own resources. We
chose this over running the tools inside the react task: that would need the run's
context on the worker to render each tool's `with` and a second attempt loop there, and a
tool would lose its own placement. The price is one round trip through the box per tool
call, small beside a model call. A react task asks for no CPU unless its step or agent
says so (it waits on the model and on its tools, which take their own): with a CPU held
per react task, react steps could take every CPU and leave none for their tools.

A worker process or node lost mid-attempt fails the attempt with the retryable kind
`worker_lost`. Cancelling an attempt (Ctrl-C, a sibling's failure) cancels its task, which
raises KeyboardInterrupt in the worker, even inside a blocking system call
(`_ray_interrupt`): the action's own cleanup runs there (a shell step's process group is
killed on its node).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import ray
import ray.exceptions as rex
from ray import cloudpickle

from wfctl.actions.base import Action, ActionContext, ActionError, Capability, capabilities_of
from wfctl.engine.backends import BackendUnavailable
from wfctl.engine.backends._ray_connect import (
    Connection,
    attempt_resources,
    check_placement,
    connect,
    task_options,
)
from wfctl.engine.backends._ray_feed import Feed
from wfctl.engine.backends._ray_lines import new_line_box
from wfctl.engine.backends._ray_worker import AttemptSpec, Outcome, job_of, run_attempt
from wfctl.engine.backends.local import LocalBackend
from wfctl.events import AttemptPlaced, StepOutputLine, now

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor
    from wfctl.model import Workflow

__all__ = ["DRIVER_GRACE", "RayBackend"]

#: Seconds past a step's timeout before the driver gives up on its worker (the worker
#: enforces the timeout itself; this only covers a worker that cannot report back).
DRIVER_GRACE = 30.0

#: Ray errors meaning the process or node running the task is gone: the attempt did not
#: fail by itself, another worker may well succeed.
_LOST = (
    rex.WorkerCrashedError,
    rex.NodeDiedError,
    rex.LocalRayletDiedError,
    rex.OwnerDiedError,
    rex.ObjectLostError,
    rex.OutOfMemoryError,
    rex.ActorDiedError,
)


class RayBackend:
    """Runs attempts as Ray tasks; see the module docstring."""

    name = "ray"

    def __init__(
        self, address: str | None = None, announce: Callable[[str], None] | None = None
    ) -> None:
        self.address = address
        self.announce = announce or (lambda message: None)
        self.connection: Connection | None = None
        self._local = LocalBackend()
        self._ex: Executor | None = None
        self._box: Any = None
        self._shapes: dict[tuple[str, str | None, bool], tuple[tuple[str, float], ...]] = {}
        self._options: dict[tuple[tuple[str, float], ...], Any] = {}
        self._capabilities: dict[str, frozenset[Capability]] = {}
        self._blobs: dict[str, tuple[Action, bytes]] = {}

    # -- before the run ------------------------------------------------------------
    def prepare(self, workflow: Workflow, workdir: Path) -> Connection:
        """Connect (once) and check that every step can be placed (BackendUnavailable)."""
        if self.connection is None:
            capabilities = frozenset(c for a in workflow.agents for c in a.capabilities)
            self.connection = connect(self.address, workdir, self.announce, capabilities)
        check_placement(workflow, self.connection.nodes)
        return self.connection

    def bind(self, executor: Executor) -> None:
        """Called once per run before its first attempt."""
        self.prepare(executor.workflow, executor.workdir)
        self._ex = executor
        self._shapes.clear()
        self._options.clear()
        self._box = None

    # -- one attempt ---------------------------------------------------------------
    def run(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Any:
        """The attempt: a Ray task for a remote-capable action, else run here."""
        if not self._is_remote(action):
            return self._local.run(action, args, ctx, timeout)
        return self._on_ray(action, args, ctx, timeout)

    def _is_remote(self, action: Action) -> bool:
        return Capability.REMOTE in self._caps(action)

    async def _on_ray(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Any:
        if self._ex is None:
            raise BackendUnavailable("the Ray backend was not bound to a run")
        caps = self._caps(action)
        tools = ctx.call_tool is not None  # a react attempt: its tools run here
        feed = None
        if tools or (Capability.STREAMS_OUTPUT in caps and ctx.on_output is not None):
            if self._box is None:
                self._box = new_line_box()
            feed = Feed(self._box, f"{ctx.step_id}:{ctx.attempt}:{uuid.uuid4().hex[:8]}",
                        ctx, tools)  # fmt: skip
        spec = AttemptSpec(
            run_id=ctx.run_id,
            step_id=ctx.step_id,
            attempt=ctx.attempt,
            idempotency_key=ctx.idempotency_key,
            workdir=None if self.connection is None else self.connection.workdir,
            # Secrets go only where they are used: to the processes a step starts, and to
            # an action the variables it names (react: its API key and base URL).
            secret_env=dict(ctx.secret_env) if Capability.PROCESS in caps else {},
            line_key=None if feed is None else feed.key,
            timeout=timeout,
            box=None if feed is None else feed.box,
            environ=_environ(action, args, ctx),
            tools=tools,
            artifacts_dir=_artifacts_dir(ctx),
        )
        ref = self._task(ctx.step_id, tools).remote(job_of(self._blob(action), dict(args), spec))
        try:
            outcome = await self._await(ref, feed, timeout)
        except rex.RayError as exc:
            raise lost(exc) from None
        return self._result(outcome, ctx)

    def _blob(self, action: Action) -> bytes:
        """The action pickled (once per action object: they live as long as the run)."""
        cached = self._blobs.get(action.name)
        if cached is None or cached[0] is not action:
            cached = self._blobs[action.name] = (action, cloudpickle.dumps(action))
        return cached[1]

    def _caps(self, action: Action) -> frozenset[Capability]:
        caps = self._capabilities.get(action.name)
        if caps is None:
            caps = self._capabilities[action.name] = capabilities_of(action)
        return caps

    def _task(self, step_id: str, tools: bool) -> Any:
        """The remote function with this attempt's placement (worked out once per step and
        agent; one `.options` per resource shape)."""
        ex = self._ex
        assert ex is not None
        record = ex.records.get(step_id)
        agent_name = record.agent if record is not None else None
        key = (step_id, agent_name, tools)
        shape = self._shapes.get(key)
        if shape is None:
            step = ex.workflow.all_steps.get(step_id)
            agent = next((a for a in ex.workflow.agents if a.name == agent_name), None)
            wanted = (
                attempt_resources(step, step.agent_capability if agent else None, agent)
                if step is not None
                else {}
            )
            if tools:  # see the module docstring: its tools take the CPUs
                wanted.setdefault("num_cpus", 0.0)
            shape = self._shapes[key] = tuple(sorted(wanted.items()))
        task = self._options.get(shape)
        if task is None:
            task = self._options[shape] = _remote().options(**task_options(dict(shape)))
        return task

    async def _await(self, ref: Any, feed: Feed | None, timeout: float | None) -> Outcome:
        """The task's outcome, its lines shown meanwhile; cancelled with the attempt."""
        outcome: Outcome | None = None
        try:
            if timeout is None:  # no cancel scope to enter and leave on every attempt
                outcome = Outcome(*await (ref if feed is None else feed.outcome(ref)))
            else:
                with anyio.fail_after(timeout + DRIVER_GRACE):
                    outcome = Outcome(*await (ref if feed is None else feed.outcome(ref)))
            return outcome
        except BaseException:
            with anyio.CancelScope(shield=True):
                ray.cancel(ref)  # KeyboardInterrupt on the worker: its cleanup runs there
            raise
        finally:
            if feed is not None:
                with anyio.CancelScope(shield=True):
                    await feed.finish(outcome)

    def _result(self, outcome: Outcome, ctx: ActionContext) -> Any:
        """The output, or the attempt's error as the local backend would raise it."""
        self._placed(outcome, ctx)
        masker = ctx.masker
        match outcome.status:
            case "ok":
                return masker.mask_data(outcome.output)
            case "timeout":
                raise TimeoutError
        assert outcome.error is not None
        message, kind, output, retryable = outcome.error
        raise ActionError(masker.mask(message), kind, masker.mask_data(output), retryable)

    def _placed(self, outcome: Outcome, ctx: ActionContext) -> None:
        """Record where the attempt ran: on its attempt record and in the event stream."""
        ex = self._ex
        assert ex is not None
        worker = f"{outcome.node_ip} pid {outcome.pid} worker {outcome.worker_id[:12]}"
        record = ex.records.get(ctx.step_id)
        for attempt in reversed(record.attempts if record is not None else []):
            if attempt.number == ctx.attempt:
                attempt.node, attempt.worker = outcome.node_id, worker
                break
        ex.bus.emit(AttemptPlaced(ex.run_id, now(), ctx.step_id, ctx.attempt, outcome.node_id,
                                  worker))  # fmt: skip
        line = f"ran on Ray node {outcome.node_id[:12]} ({worker})"
        ex.bus.emit(StepOutputLine(ex.run_id, now(), ctx.step_id, line))


@functools.cache
def _remote() -> Any:
    """`run_attempt` as a Ray remote function, one per process: Ray exports a remote function
    to the cluster at its first call and each worker imports it before its first task of it
    (milliseconds each, on the critical path), so one per run cost that on every run."""
    return ray.remote(run_attempt)


def _environ(action: Action, args: Mapping[str, Any], ctx: ActionContext) -> dict[str, str]:
    """The driver's values of the variables the action says it reads (`environment`)."""
    names = getattr(action, "environment", None)
    if names is None:
        return {}
    here = {**os.environ, **ctx.secret_env}
    return {name: here[name] for name in names(args) if name in here}


def lost(exc: BaseException) -> ActionError:
    """The attempt's error for a Ray failure of the task itself."""
    if isinstance(exc, _LOST):
        return ActionError(f"Ray worker lost: {type(exc).__name__}", kind="worker_lost")
    if isinstance(exc, rex.TaskCancelledError):
        return ActionError("Ray task cancelled", kind="cancelled")
    if isinstance(exc, rex.RuntimeEnvSetupError):
        return ActionError(f"Ray runtime_env setup failed: {exc}", retryable=False)
    return ActionError(f"Ray: {type(exc).__name__}: {exc}", kind="error")


def _artifacts_dir(ctx: ActionContext) -> str | None:
    """The run's artifacts directory as the worker gets it (the driver's path)."""
    path = ctx.artifacts_dir
    return None if path is None else str(path)
