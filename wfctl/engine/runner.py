"""`run_workflow`: inputs resolved, plan compiled, the graph invoked, a RunResult returned."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.compile.plan import compile_plan
from wfctl.engine.backends import bind_backend, executor_name, select_backend
from wfctl.engine.executor import Executor
from wfctl.engine.options import RunOptions
from wfctl.events import EventBus, RunFinished, RunStarted, now
from wfctl.model import StepStatus, StepType, Workflow, WorkflowState
from wfctl.model.inputs import InputError, resolve_inputs
from wfctl.records import RunResult
from wfctl.secrets import Masker
from wfctl.state.artifacts import RunArtifacts

if TYPE_CHECKING:
    from wfctl.state.store import StateStore

__all__ = [
    "ENGINES",
    "ROLLBACK_TIME_LIMIT",
    "build_executor",
    "engine_name",
    "load_engine",
    "new_run_id",
    "read_secrets",
    "run_workflow",
    "settled",
]

#: The engines that run a compiled workflow: the event-driven scheduler (default) and
#: the workflow's own LangGraph graph.
ENGINES = ("events", "langgraph")

ROLLBACK_TIME_LIMIT = 300.0  # seconds for all rollbacks after a workflow timeout
_DEFAULTS = RunOptions()


def new_run_id() -> str:
    """Sortable, unique run id: UTC time plus random suffix."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()) + "-" + uuid.uuid4().hex[:8]


def read_secrets(workflow: Workflow, env: Mapping[str, str]) -> dict[str, str]:
    """Secret values from the environment; a missing one is a usage error (exit 2)."""
    missing = workflow.missing_secrets(env)
    if missing:
        raise InputError(
            "missing secret environment variable"
            + ("s " if len(missing) > 1 else " ")
            + ", ".join(missing)
        )
    return {name: env[var] for name, var in workflow.secrets.items()}


def load_engine(durable: bool, engine: str | None = None) -> None:
    """Import what a run needs that is slow to import (LangGraph: about a second; only
    the langgraph engine needs it)."""
    if (engine or os.environ.get("WFCTL_ENGINE") or "events") != "langgraph":
        return
    import langgraph.graph

    if durable:
        import langgraph.checkpoint.sqlite.aio  # noqa: F401


def engine_name(opts: RunOptions, env: Mapping[str, str]) -> str:
    """Which engine runs: a resumed run's own, else `RunOptions.engine`, else
    `WFCTL_ENGINE`, else `events`. An unknown name is an InputError (exit 2)."""
    name = opts.engine or env.get("WFCTL_ENGINE") or "events"
    if opts.resume is not None and opts.store is not None and opts.run_id is not None:
        row = opts.store.run(opts.run_id)
        # The checkpoints a langgraph run resumes from are its engine's own.
        name = str((row.options if row is not None else {}).get("engine") or "events")
    if name not in ENGINES:
        raise InputError(f"unknown engine {name!r} (choose {' or '.join(ENGINES)})")
    return name


async def run_workflow(
    workflow: Workflow,
    inputs: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
) -> RunResult:
    """Run a workflow to an end state (completed, failed, timeout, waiting_approval, cancelled).

    With `options.store`, the run is durable: every event is journaled before subscribers
    see it. On the `events` engine (default) the journal is the record resume reads; on
    `langgraph` the graph is also checkpointed (durability="sync") in the run's own file
    and resume continues from the checkpoint. With `options.resume` (a journal replay),
    completed steps keep their recorded outputs and only the rest runs.
    """
    opts = options or _DEFAULTS
    env = os.environ if opts.env is None else opts.env
    resolved = resolve_inputs(workflow.inputs, inputs or {})
    secrets = read_secrets(workflow, env)  # before the run is recorded: a usage error
    engine = engine_name(opts, env)
    run_id = opts.run_id or new_run_id()
    shown_inputs = {k: ("***" if k in workflow.secret_inputs else v) for k, v in resolved.items()}
    inner = EventBus()
    if opts.store is not None:
        _journal(workflow, run_id, shown_inputs, opts, opts.store, inner, engine)
    inner.subscribe((opts.bus or EventBus()).emit)
    executor = build_executor(workflow, resolved, secrets, env, run_id, inner, opts)
    if opts.store is not None:
        from wfctl.state.cache import StepCacheTable

        executor.cache = StepCacheTable(opts.store, read=opts.use_cache)
        executor.artifacts.get()  # a durable run's is there from its start (`wfctl show`)
    # Before the clock starts: start-up is not run time.
    load_engine(durable=opts.store is not None, engine=engine)
    bind_backend(executor)  # a remote backend connects here (Ray start-up is not run time)
    started = _started(opts, executor, engine)
    inner.emit(
        RunStarted(
            run_id, time.time(), workflow.workflow_id, workflow.name,
            _step_ids(workflow), shown_inputs,
        )
    )  # fmt: skip
    await _drive(executor, opts, engine)
    status, error = await _outcome(executor, opts)
    result = _finish(executor, status, error, started)
    inner.emit(RunFinished(run_id, now(), result.status, result.error, result.duration))
    if opts.store is not None:
        opts.store.set_status(run_id, result.status.value, result.error)
    return result


def _step_ids(workflow: Workflow) -> tuple[str, ...]:
    """The steps a run announces (group loop bodies run as their iterations' copies)."""
    return tuple(s for s in workflow.all_steps if s not in workflow.templates)


def build_executor(
    workflow: Workflow,
    resolved: dict[str, Any],
    secrets: dict[str, str],
    env: Mapping[str, str],
    run_id: str,
    bus: EventBus,
    opts: RunOptions,
) -> Executor:
    """The run's executor: its plan, secrets (masked everywhere) and options."""
    # Secret inputs of any type: the masker masks numbers and lists by value (issue 15).
    masker = Masker([*secrets.values(), *(resolved[n] for n in workflow.secret_inputs)])
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
        backend=select_backend(workflow, opts),
        artifacts=RunArtifacts(opts.store.directory if opts.store is not None else None, run_id),
    )


def _started(opts: RunOptions, executor: Executor, engine: str) -> float:
    """When the run started (a resumed run keeps its first start); restores the replay
    (the langgraph engine restores from its own checkpoint instead)."""
    if opts.resume is None:
        return time.time()
    if engine == "events":
        executor.restore(opts.resume)
    return float(opts.resume.started["ts"]) if opts.resume.started is not None else time.time()


def _journal(
    workflow: Workflow,
    run_id: str,
    shown_inputs: dict[str, Any],
    opts: RunOptions,
    store: StateStore,
    inner: EventBus,
    engine: str,
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
                "executor": executor_name(workflow, opts),
                "engine": engine,
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
    inner.subscribe(Journal(store, run_id, pure, opts.journal_output_limit))


async def _drive(executor: Executor, opts: RunOptions, engine: str) -> None:
    """Run the engine until the run ends, times out or is cancelled."""
    workflow = executor.workflow
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
        if engine == "langgraph":
            from wfctl.engine.langgraph_engine import run

            await run(executor, opts.store, opts.resume)
        else:
            await _run_events(executor)
        tg.cancel_scope.cancel()


async def _run_events(executor: Executor) -> None:
    """The event-driven scheduler over the top level, again while approvals can be
    decided (a timeout passed); on failure, the rollback."""
    while True:
        await executor.run_level(None)
        if executor.stop_reason is not None:
            return
        if executor.fatal is not None:
            await executor.rollback()
            return
        waiting = [k for k, r in executor.records.items() if r.status is StepStatus.WAITING]
        if not any(executor.approval_due(k) for k in waiting):
            return


async def _outcome(executor: Executor, opts: RunOptions) -> tuple[WorkflowState, str | None]:
    """The run's end state and error; a timed-out run is rolled back first, then the
    on_sla_breach handlers run if a target was missed."""
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
        status, error = settled(executor)
    if executor.workflow.on_sla_breach:
        from wfctl.engine.sla_handlers import run_breach_handlers

        await run_breach_handlers(executor, status, opts.sla_breaches)
    if status is not WorkflowState.WAITING_APPROVAL:
        status, error = await executor.run_exit_hooks(status, error)
        executor.mark_unused_handlers()
    return status, error


def settled(executor: Executor) -> tuple[WorkflowState, str | None]:
    """The end state of a run that was neither stopped nor timed out."""
    waiting = _approvals_waiting(executor)
    if executor.fatal is not None:
        return WorkflowState.FAILED, executor.fatal
    if waiting:
        return WorkflowState.WAITING_APPROVAL, "waiting for approval: " + ", ".join(waiting)
    return WorkflowState.COMPLETED, None


def _approvals_waiting(executor: Executor) -> list[str]:
    """The approval steps a run waits for (not the parallel steps waiting on them: only
    an approval step can be approved)."""
    steps = executor.steps
    return [
        k
        for k, r in executor.records.items()
        if r.status is StepStatus.WAITING and steps[k].step_type is StepType.HUMAN_APPROVAL
    ]


def _finish(
    executor: Executor, status: WorkflowState, error: str | None, started: float
) -> RunResult:
    waiting = tuple(_approvals_waiting(executor))
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
        artifacts_dir=executor.artifacts.made,
    )
