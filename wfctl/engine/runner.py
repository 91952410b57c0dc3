"""`run_workflow`: inputs resolved, plan compiled, the graph invoked, a RunResult returned."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Mapping
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.compile.plan import compile_plan
from wfctl.engine.executor import Executor
from wfctl.engine.options import RunOptions
from wfctl.events import EventBus, RunFinished, RunStarted, now
from wfctl.model import StepStatus, Workflow, WorkflowState
from wfctl.model.inputs import InputError, resolve_inputs
from wfctl.records import RunResult
from wfctl.secrets import Masker

if TYPE_CHECKING:
    from wfctl.state.store import StateStore

__all__ = ["ROLLBACK_TIME_LIMIT", "load_engine", "new_run_id", "read_secrets", "run_workflow"]

ROLLBACK_TIME_LIMIT = 300.0  # seconds for all rollbacks after a workflow timeout
_DEFAULTS = RunOptions()


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def read_secrets(workflow: Workflow, env: Mapping[str, str]) -> dict[str, str]:
    """Secret values from the environment; a missing one is a usage error (exit 2)."""
    missing = [var for var in workflow.secrets.values() if var not in env]
    if missing:
        raise InputError(
            "missing secret environment variable"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(missing)
        )
    return {name: env[var] for name, var in workflow.secrets.items()}


def load_engine(durable: bool) -> None:
    """Import what a run needs that is slow to import (LangGraph: about a second)."""
    import langgraph.graph

    if durable:
        import langgraph.checkpoint.sqlite.aio  # noqa: F401


async def run_workflow(
    workflow: Workflow,
    inputs: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Run a workflow to an end state (completed, failed, timeout, waiting_approval, cancelled).

    With `options.store`, the run is durable: every event is journaled before subscribers
    see it and the control graph is checkpointed (LangGraph, durability="sync") in the
    same SQLite file. With `options.resume` (a journal replay), completed steps keep their
    recorded outputs and only the rest runs.
    """
    opts = options or _DEFAULTS
    env = os.environ if opts.env is None else opts.env
    resolved = resolve_inputs(workflow.inputs, inputs or {})
    secrets = read_secrets(workflow, env)  # before the run is recorded: a usage error
    run_id = opts.run_id or new_run_id()
    shown_inputs = {k: ("***" if k in workflow.secret_inputs else v) for k, v in resolved.items()}
    inner = EventBus()
    if opts.store is not None:
        _journal(workflow, run_id, shown_inputs, opts, opts.store, inner)
    inner.subscribe((opts.bus or EventBus()).emit)
    executor = _executor(workflow, resolved, secrets, env, run_id, inner, opts)
    # Before the clock starts: start-up is not run time.
    load_engine(durable=opts.store is not None)
    started = _started(opts, executor)
    inner.emit(
        RunStarted(
            run_id, time.time(), workflow.workflow_id, workflow.name,
            tuple(workflow.all_steps), shown_inputs,
        )
    )  # fmt: skip
    await _drive(executor, opts)
    status, error = await _outcome(executor)
    result = _finish(executor, status, error, started)
    inner.emit(RunFinished(run_id, now(), result.status, result.error, result.duration))
    if opts.store is not None:
        opts.store.set_status(run_id, result.status.value, result.error)
    return result


def _executor(
    workflow: Workflow,
    resolved: dict[str, Any],
    secrets: dict[str, str],
    env: Mapping[str, str],
    run_id: str,
    bus: EventBus,
    opts: RunOptions,
) -> Executor:
    """The run's executor: its plan, secrets (masked everywhere) and options."""
    masker = Masker([*secrets.values(), *(str(resolved[n]) for n in workflow.secret_inputs)])
    return Executor(
        compile_plan(workflow, opts.estimates),
        run_id,
        resolved,
        bus,
        secrets=secrets,
        secret_env={var: env[var] for var in workflow.secrets.values()},
        masker=masker,
        workdir=opts.workdir or Path.cwd(),
        max_parallel=opts.max_parallel,
        approvals=opts.approvals,
        approval_handler=opts.approval_handler,
        rng=random.Random(opts.seed),
        backend=opts.backend,
    )


def _started(opts: RunOptions, executor: Executor) -> float:
    """When the run started (a resumed run keeps its first start); restores the replay."""
    if opts.resume is None:
        return time.time()
    executor.restore(opts.resume)
    return float(opts.resume.started["ts"]) if opts.resume.started is not None else time.time()


def _journal(
    workflow: Workflow,
    run_id: str,
    shown_inputs: dict[str, Any],
    opts: RunOptions,
    store: StateStore,
    inner: EventBus,
) -> None:
    """Record the run in the store; the journal subscribes first: an event is written
    before anything shows it."""
    from wfctl.engine.catalog import ActionCatalog
    from wfctl.state.journal import Journal

    if opts.resume is None:
        store.create_run(
            run_id,
            workflow.workflow_id,
            workflow.name,
            # Absolute, so `wfctl resume` works from any directory.
            str(Path(workflow.source_file).resolve()),
            workflow.sha256,
            shown_inputs,
            {
                "max_parallel": opts.max_parallel,
                "workdir": str((opts.workdir or Path.cwd()).resolve()),
            },
        )
    else:
        store.set_status(run_id, "running", None, ended=False)
    catalog = ActionCatalog()
    pure = frozenset(
        s.step_id
        for s in workflow.all_steps.values()
        if s.action is not None and not catalog.has_outside_effects(s.action)
    )
    inner.subscribe(Journal(store, run_id, pure))


async def _drive(executor: Executor, opts: RunOptions) -> None:
    """Invoke the control graph until the run ends, times out or is cancelled."""
    from wfctl.engine.control_graph import build_graph

    workflow = executor.workflow
    async with AsyncExitStack() as stack:
        checkpointer = None
        if opts.store is not None:
            checkpointer = await _checkpointer(stack, opts.store)
        graph = build_graph(executor, checkpointer)
        config: dict[str, Any] = {
            "configurable": {"thread_id": executor.run_id},
            "recursion_limit": 10_000,
        }
        graph_input = await _graph_input(graph, config, executor, opts.resume is not None)

        async with anyio.create_task_group() as tg:

            async def stop_when(reason: str, waiter: Any) -> None:
                await waiter()
                # Set the reason first so cancelled steps record why they stopped.
                executor.stop_reason = executor.stop_reason or reason
                tg.cancel_scope.cancel()

            # The workflow timeout counts running time: waiting for approval between
            # processes does not use it up.
            used = opts.resume.active_seconds if opts.resume is not None else 0.0
            remaining = max(0.0, workflow.timeout - used)
            tg.start_soon(stop_when, "timeout", lambda: anyio.sleep(remaining))
            if opts.cancel is not None:
                tg.start_soon(stop_when, "cancelled", opts.cancel.wait)
            if checkpointer is not None:
                await graph.ainvoke(graph_input, config, durability="sync")
            else:
                await graph.ainvoke(graph_input, config)
            tg.cancel_scope.cancel()


async def _checkpointer(stack: AsyncExitStack, store: StateStore) -> Any:
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    conn = await stack.enter_async_context(aiosqlite.connect(str(store.path)))
    # As the journal's connection: WAL + NORMAL survives a killed process, and without it
    # (the default FULL) every checkpoint waits for an fsync.
    await conn.execute("PRAGMA synchronous = NORMAL")
    await conn.execute("PRAGMA busy_timeout = 30000")
    return AsyncSqliteSaver(conn)


async def _outcome(executor: Executor) -> tuple[WorkflowState, str | None]:
    """The run's end state and error; a timed-out run is rolled back first."""
    workflow = executor.workflow
    status, error = WorkflowState.RUNNING, None
    if executor.stop_reason == "timeout":
        status = WorkflowState.TIMEOUT
        error = f"workflow timed out after {workflow.timeout:g}s"
        executor.mark_not_started("run timed out")
        # Shielded from the cancellation that stopped the run, but bounded: a hanging
        # rollback must not keep a timed-out run alive for ever.
        with anyio.CancelScope(shield=True), anyio.move_on_after(ROLLBACK_TIME_LIMIT):
            await executor.rollback()
    elif executor.stop_reason == "cancelled":
        status, error = WorkflowState.CANCELLED, "run cancelled"
        executor.mark_not_started("run cancelled")
    if status is WorkflowState.RUNNING:
        status, error = _settled(executor)
    if status is not WorkflowState.WAITING_APPROVAL:
        status, error = await executor.run_exit_hooks(status, error)
        executor.mark_unused_handlers()
    return status, error


def _settled(executor: Executor) -> tuple[WorkflowState, str | None]:
    waiting = [k for k, r in executor.records.items() if r.status is StepStatus.WAITING]
    if executor.fatal is not None:
        return WorkflowState.FAILED, executor.fatal
    if waiting:
        return WorkflowState.WAITING_APPROVAL, "waiting for approval: " + ", ".join(waiting)
    return WorkflowState.COMPLETED, None


async def _graph_input(
    graph: Any, config: dict[str, Any], executor: Executor, resuming: bool
) -> Any:
    """Fresh input, or what continues the checkpointed graph of a resumed run."""
    if not resuming:
        return {"passes": 0}
    from langgraph.types import Command

    snapshot = await graph.aget_state(config)
    if not snapshot.values:
        return {"passes": 0}  # killed before the first checkpoint
    if snapshot.interrupts:
        # Paused at human_approval: hand it the decisions recorded since.
        return Command(resume={"decided": sorted(executor.approvals)})
    if not snapshot.next:
        # The graph had finished (e.g. cancelled run): go round again from the start.
        return {"passes": 0}
    return None


def _finish(
    executor: Executor, status: WorkflowState, error: str | None, started: float
) -> RunResult:
    waiting = tuple(k for k, r in executor.records.items() if r.status is StepStatus.WAITING)
    return RunResult(
        run_id=executor.run_id,
        workflow_id=executor.workflow.workflow_id,
        status=status,
        steps=executor.records,
        vars=dict(executor.vars),
        started_at=started,
        ended_at=time.time(),
        error=error,
        waiting_for=waiting,
        rollbacks=tuple(executor.rollbacks),
    )
