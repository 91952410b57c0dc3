"""`run_workflow`: inputs resolved, plan compiled, the graph invoked, a RunResult returned."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from wfctl.engine.executor import ApprovalDecision, ApprovalHandler, Executor
from wfctl.engine.plan import compile_plan
from wfctl.engine.records import RunResult
from wfctl.events import EventBus, RunFinished, RunStarted, now
from wfctl.inputs import InputError, resolve_inputs
from wfctl.model import StepStatus, Workflow, WorkflowState
from wfctl.secrets import Masker


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


async def run_workflow(
    workflow: Workflow,
    inputs: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
    bus: EventBus | None = None,
    max_parallel: int | None = None,
    approvals: Mapping[str, ApprovalDecision] | None = None,
    approval_handler: ApprovalHandler | None = None,
    workdir: Path | None = None,
    env: Mapping[str, str] | None = None,
    seed: int | None = None,
    estimates: Mapping[str, float] | None = None,
    cancel: anyio.Event | None = None,
) -> RunResult:
    """Run a workflow to an end state (completed, failed, timeout, waiting_approval, cancelled)."""
    env = os.environ if env is None else env
    resolved = resolve_inputs(workflow.inputs, inputs or {})
    secrets = read_secrets(workflow, env)
    masker = Masker([*secrets.values(), *(str(resolved[n]) for n in workflow.secret_inputs)])
    bus = bus or EventBus()
    run_id = run_id or new_run_id()
    plan = compile_plan(workflow, estimates)
    executor = Executor(
        plan,
        run_id,
        resolved,
        bus,
        secrets=secrets,
        secret_env={var: env[var] for var in workflow.secrets.values()},
        masker=masker,
        workdir=workdir or Path.cwd(),
        max_parallel=max_parallel,
        approvals=approvals,
        approval_handler=approval_handler,
        rng=random.Random(seed),
    )
    shown_inputs = {k: ("***" if k in workflow.secret_inputs else v) for k, v in resolved.items()}
    started = time.time()
    bus.emit(
        RunStarted(
            run_id,
            started,
            workflow.workflow_id,
            workflow.name,
            tuple(workflow.all_steps),
            shown_inputs,
        )
    )
    from wfctl.engine.graph import build_graph

    graph = build_graph(executor)
    status = WorkflowState.RUNNING
    error: str | None = None

    async with anyio.create_task_group() as tg:

        async def stop_when(reason: str, waiter: Any) -> None:
            await waiter()
            # Set the reason first so cancelled steps record why they stopped.
            executor.stop_reason = executor.stop_reason or reason
            tg.cancel_scope.cancel()

        tg.start_soon(stop_when, "timeout", lambda: anyio.sleep(workflow.timeout))
        if cancel is not None:
            tg.start_soon(stop_when, "cancelled", cancel.wait)
        await graph.ainvoke({"passes": 0}, {"recursion_limit": 10_000})
        tg.cancel_scope.cancel()

    if executor.stop_reason == "timeout":
        status = WorkflowState.TIMEOUT
        error = f"workflow timed out after {workflow.timeout:g}s"
        with anyio.CancelScope(shield=True):
            await executor.rollback()
    elif executor.stop_reason == "cancelled":
        status = WorkflowState.CANCELLED
        error = "run cancelled"
    if status is WorkflowState.RUNNING:
        waiting = [k for k, r in executor.records.items() if r.status is StepStatus.WAITING]
        if executor.fatal is not None:
            status, error = WorkflowState.FAILED, executor.fatal
        elif waiting:
            status = WorkflowState.WAITING_APPROVAL
            error = "waiting for approval: " + ", ".join(waiting)
        else:
            status = WorkflowState.COMPLETED
    if status is not WorkflowState.WAITING_APPROVAL:
        executor.mark_unused_handlers()
    result = _finish(executor, status, error, started)
    bus.emit(RunFinished(run_id, now(), result.status, result.error, result.duration))
    return result


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
