"""The Ray backend: each attempt of a remote-capable action is one Ray task.

The driver (this process) keeps scheduling, the journal, retries and breakers; Ray's own
task retries are off (`max_retries=0`), so the workflow's retry policy is the one that
counts. Placement: a step's and its agent's `resources:` and the routed capability (a Ray
custom resource of that name) become the task's resource request. Actions that do not
declare :attr:`~wfctl.actions.base.Capability.REMOTE` (the pure built-ins, react, whose
tools call back into the engine) run here on the driver, as locally; their tool calls
are attempts like any other and run on Ray.

A worker process or node lost mid-attempt fails the attempt with the retryable kind
`worker_lost`. Cancelling an attempt (Ctrl-C, a sibling's failure) cancels its task, which
raises KeyboardInterrupt in the worker: the action's own cleanup runs there (a shell
step's process group is killed on its node).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import ray
import ray.exceptions as rex

from wfctl.actions.base import Action, ActionContext, ActionError, Capability, capabilities_of
from wfctl.engine.backends import BackendUnavailable
from wfctl.engine.backends._ray_connect import (
    Connection,
    attempt_resources,
    check_placement,
    connect,
    task_options,
)
from wfctl.engine.backends._ray_lines import new_line_box
from wfctl.engine.backends._ray_worker import AttemptSpec, Outcome, run_attempt
from wfctl.engine.backends.local import LocalBackend
from wfctl.events import AttemptPlaced, StepOutputLine, now

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor
    from wfctl.model import Workflow

__all__ = ["DRIVER_GRACE", "RayBackend"]

#: Seconds past a step's timeout before the driver gives up on its worker (the worker
#: enforces the timeout itself; this only covers a worker that cannot report back).
DRIVER_GRACE = 30.0
#: How long one read of the line box waits for a line.
_LINE_WAIT = 0.5

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
        self._remote = ray.remote(run_attempt)
        self._options: dict[tuple[str, str | None], Any] = {}
        self._remote_caps: dict[str, bool] = {}

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
        known = self._remote_caps.get(action.name)
        if known is None:
            known = self._remote_caps[action.name] = Capability.REMOTE in capabilities_of(action)
        return known

    async def _on_ray(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Any:
        if self._ex is None:
            raise BackendUnavailable("the Ray backend was not bound to a run")
        caps = capabilities_of(action)
        streams = Capability.STREAMS_OUTPUT in caps and ctx.on_output is not None
        if streams and self._box is None:
            self._box = new_line_box()
        spec = AttemptSpec(
            run_id=ctx.run_id,
            step_id=ctx.step_id,
            attempt=ctx.attempt,
            idempotency_key=ctx.idempotency_key,
            workdir=None if self.connection is None else self.connection.workdir,
            # Secrets go only where they are used: to the processes a step starts.
            secret_env=dict(ctx.secret_env) if Capability.PROCESS in caps else {},
            line_key=f"{ctx.step_id}:{ctx.attempt}:{uuid.uuid4().hex[:8]}" if streams else None,
        )
        ref = self._task(ctx.step_id).remote(
            action, dict(args), spec, timeout, self._box if streams else None
        )
        try:
            outcome = await self._await(ref, spec, ctx, timeout)
        except rex.RayError as exc:
            raise lost(exc) from None
        return self._result(outcome, ctx)

    def _task(self, step_id: str) -> Any:
        """The remote function with this attempt's placement (cached per step and agent)."""
        ex = self._ex
        assert ex is not None
        record = ex.records.get(step_id)
        agent_name = record.agent if record is not None else None
        key = (step_id, agent_name)
        task = self._options.get(key)
        if task is None:
            step = ex.workflow.all_steps.get(step_id)
            agent = next((a for a in ex.workflow.agents if a.name == agent_name), None)
            wanted = (
                attempt_resources(step, step.agent_capability if agent else None, agent)
                if step is not None
                else {}
            )
            task = self._options[key] = self._remote.options(**task_options(wanted))
        return task

    async def _await(
        self, ref: Any, spec: AttemptSpec, ctx: ActionContext, timeout: float | None
    ) -> Outcome:
        """The task's outcome, its lines streamed meanwhile; cancelled with the attempt."""
        limit = None if timeout is None else timeout + DRIVER_GRACE
        cursor = [0]
        try:
            with anyio.fail_after(limit):
                if spec.line_key is None:
                    outcome: Outcome = await ref
                    return outcome
                return await self._streamed(ref, spec.line_key, cursor, ctx)
        except BaseException:
            with anyio.CancelScope(shield=True):
                ray.cancel(ref)  # KeyboardInterrupt on the worker: its cleanup runs there
            raise
        finally:
            if spec.line_key is not None:
                with anyio.CancelScope(shield=True):
                    await self._drain(spec.line_key, cursor, ctx)

    async def _streamed(self, ref: Any, key: str, cursor: list[int], ctx: ActionContext) -> Outcome:
        """Await `ref` while its lines are shown; a Ray error is raised as itself."""
        got: list[Outcome] = []
        failed: list[BaseException] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump, key, cursor, ctx)
            try:
                got.append(await ref)
            except rex.RayError as exc:  # raised outside the group: not an ExceptionGroup
                failed.append(exc)
            tg.cancel_scope.cancel()
        if failed:
            raise failed[0]
        return got[0]

    async def _pump(self, key: str, cursor: list[int], ctx: ActionContext) -> None:
        try:
            while True:
                lines, closed = await self._box.take.remote(key, cursor[0], _LINE_WAIT)
                self._show(lines, cursor, ctx)
                if closed:
                    return
        except rex.RayError:
            return  # the box is gone: the attempt's own outcome says what happened

    async def _drain(self, key: str, cursor: list[int], ctx: ActionContext) -> None:
        try:
            lines = await self._box.drain.remote(key, cursor[0])
        except rex.RayError:
            return  # the box is gone with its node: the lines so far were shown
        self._show(lines, cursor, ctx)

    def _show(self, lines: list[str], cursor: list[int], ctx: ActionContext) -> None:
        cursor[0] += len(lines)
        if ctx.on_output is not None:
            for line in lines:
                ctx.on_output(ctx.masker.mask(line))

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


def lost(exc: BaseException) -> ActionError:
    """The attempt's error for a Ray failure of the task itself."""
    if isinstance(exc, _LOST):
        return ActionError(f"Ray worker lost: {type(exc).__name__}", kind="worker_lost")
    if isinstance(exc, rex.TaskCancelledError):
        return ActionError("Ray task cancelled", kind="cancelled")
    if isinstance(exc, rex.RuntimeEnvSetupError):
        return ActionError(f"Ray runtime_env setup failed: {exc}", retryable=False)
    return ActionError(f"Ray: {type(exc).__name__}: {exc}", kind="error")
