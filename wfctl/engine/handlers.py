"""Error handlers and rollback: steps that run only when another step invokes them."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final

import anyio

from wfctl.engine.attempts import StepFailed
from wfctl.engine.step_call import invoke
from wfctl.events import HandlerRan, now
from wfctl.expressions import ExpressionError, truthy
from wfctl.model import Step, StepStatus
from wfctl.records import StepRecord, error_info

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = [
    "handle_error",
    "mark_not_started",
    "mark_unused_handlers",
    "rollback",
    "run_exit_hooks",
    "run_handler",
]

EXIT_HOOK_TIME_LIMIT: Final = 300.0  # seconds for all on_exit steps together


async def run_handler(
    ex: Executor, handler_id: str, for_step: str, purpose: str, error: dict[str, Any] | None
) -> dict[str, Any]:
    """Run one handler step for `for_step` (its record shows its latest run)."""
    handler = ex.workflow.all_steps[handler_id]
    record = ex.records[handler_id]
    extra_ctx = {"error": error} if error else {}
    result: dict[str, Any] = {"step_id": handler_id, "for_step": for_step, "purpose": purpose}
    from wfctl.engine.lifecycle import check_storable

    try:
        if handler.when is not None and not truthy(
            handler.when.evaluate(ex.context(handler, **extra_ctx))
        ):
            return _handler_skipped(ex, handler, record, result)
        record.status = StepStatus.RUNNING
        record.started_at = record.started_at or time.time()
        output = await invoke(ex, handler, record, ex.step_input(handler), {}, extra_ctx)
        record.output = ex.masker.mask_data(output)
        updates = _updates(ex, handler, output, record.output, extra_ctx)
        check_storable(record, record.output, updates)
        ex.store_vars(handler_id, updates)
        record.status = StepStatus.COMPLETED
        record.error = None
        result.update(status="completed", output=record.output)
    except (StepFailed, ExpressionError) as exc:
        message = exc.message if isinstance(exc, ExpressionError) else str(exc)
        record.status = StepStatus.FAILED
        record.error = message
        result.update(status="failed", error=message)
    record.ended_at = time.time()
    _announce(ex, record, result)
    return result


def _updates(
    ex: Executor, handler: Step, output: Any, masked: Any, extra_ctx: dict[str, Any]
) -> dict[str, Any]:
    """What a handler that completed merges into `vars`."""
    updates: dict[str, Any] = {}
    if ex.actions.sets_vars(handler.action) and isinstance(output, dict):
        updates.update(output)
    if handler.output_mapping:
        ctx = ex.context(handler, output=masked, **extra_ctx)
        updates.update({n: expr.evaluate(ctx) for n, expr in handler.output_mapping.items()})
    return updates


def _handler_skipped(
    ex: Executor, handler: Step, record: StepRecord, result: dict[str, Any]
) -> dict[str, Any]:
    """A handler whose `when` is false for this invocation: skipped, and said so."""
    assert handler.when is not None
    reason = f"when is false: {handler.when.source}"
    if not record.status.terminal or not record.handler_runs:
        # Its record shows its latest run; a handler that never ran shows this skip.
        record.status = StepStatus.SKIPPED
        record.reason = reason
    result.update(status="skipped", reason=reason)
    _announce(ex, record, result, StepStatus.SKIPPED)
    return result


def _announce(
    ex: Executor, record: StepRecord, result: dict[str, Any], status: StepStatus | None = None
) -> None:
    record.handler_runs.append(result)
    ex.emit_state(record.step_id)
    ex.bus.emit(
        HandlerRan(
            ex.run_id,
            now(),
            record.step_id,
            result["for_step"],
            result["purpose"],
            status or record.status,
            record.error if status is None else None,
            record.output if status is None else None,
        )
    )


async def handle_error(ex: Executor, step: Step, record: StepRecord) -> bool:
    """Run a failed step's error handlers in order; True if one with `recover` succeeded
    and so recovered the step (completed, with the fallback output; later ones not run)."""
    error = error_info(record.error or "", record.error_kind, record.output, step.step_id)
    error_ctx = {**error.as_dict(), "output": record.output}
    for handler_id in step.error_handlers:
        result = await run_handler(ex, handler_id, step.step_id, "error_handler", error_ctx)
        handler = ex.workflow.all_steps[handler_id]
        if handler.recover and result["status"] == "completed":
            return _recover(ex, step, record, handler, result, error_ctx)
    return False


def _recover(
    ex: Executor,
    step: Step,
    record: StepRecord,
    handler: Step,
    result: dict[str, Any],
    error_ctx: dict[str, Any],
) -> bool:
    """Un-fail `step`: completed with the handler's fallback output (the failure kept)."""
    from wfctl.engine.lifecycle import complete

    failure = {"error": record.error, "error_kind": record.error_kind, "by": handler.step_id}
    try:
        output = result.get("output")
        if handler.recover_output is not None:
            ctx = ex.context(handler, error=error_ctx, output=output)
            output = handler.recover_output.render(ctx)
        complete(ex, step, record, output)
    except (StepFailed, ExpressionError) as exc:
        message = exc.message if isinstance(exc, ExpressionError) else str(exc)
        record.status = StepStatus.FAILED
        record.error = f"recovery by '{handler.step_id}' failed: {message}"
        ex.emit_state(step.step_id)
        return False
    record.recovered = failure
    return True


async def rollback(ex: Executor) -> None:
    """Run rollback_actions of every completed step, newest completion first."""
    for step_id in reversed(ex.completion_order):
        step = ex.workflow.all_steps[step_id]
        for handler in step.rollback_actions:
            ex.rollbacks.append(await run_handler(ex, handler, step_id, "rollback", None))


def failures_of(records: Iterable[tuple[str, StepRecord]]) -> list[dict[str, Any]]:
    """`workflow.failures`: the structured error of each failed record, under the id
    given with it (the one the workflow's expressions know it by)."""
    return [
        error_info(r.error or "", r.error_kind, r.output, step_id).as_dict()
        for step_id, r in records
        if r.status is StepStatus.FAILED
    ]


async def run_exit_hooks(ex: Executor, status: str) -> str | None:
    """Run the workflow's on_exit steps in order, whatever the outcome (`status`, seen as
    `workflow.status`); the first one's failure, or None. Shielded from the cancellation
    that may have stopped the run, and bounded."""
    from wfctl.engine.lifecycle import execute

    own = ((r.step_id, r) for r in ex.records.values() if r.step_id not in ex.workflow.handlers)
    ex.set_outcome(status, failures_of(own))
    first: str | None = None
    with anyio.CancelScope(shield=True), anyio.move_on_after(EXIT_HOOK_TIME_LIMIT):
        for step in ex.workflow.on_exit:
            record = ex.records[step.step_id]
            try:
                await execute(ex, step)
            finally:
                ex.scheduler.drop_slot(step.step_id)  # held for dependents it has none of
            if record.status is StepStatus.FAILED and first is None:
                first = f"on_exit step '{step.step_id}' failed: {record.error}"
    return first


def mark_not_started(ex: Executor, why: str) -> None:
    """Steps that never started when the run stopped: skipped, with the reason."""
    hooks = {s.step_id for s in ex.workflow.on_exit}  # they run after this, whatever
    for step_id, record in ex.records.items():
        if (
            record.status is StepStatus.PENDING
            and step_id not in ex.workflow.handlers
            and step_id not in hooks
        ):
            record.status = StepStatus.SKIPPED
            record.reason = f"not started: {why}"
            ex.emit_state(step_id)


def mark_unused_handlers(ex: Executor) -> None:
    """Handler steps nobody invoked: skipped."""
    for handler in ex.workflow.handlers:
        record = ex.records[handler]
        if record.status is StepStatus.PENDING:
            record.status = StepStatus.SKIPPED
            record.reason = "handler not invoked"
            ex.emit_state(handler)
