"""Error handlers and rollback: steps that run only when another step invokes them."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from wfctl.engine.attempts import StepFailed
from wfctl.engine.step_call import invoke
from wfctl.events import HandlerRan, now
from wfctl.expressions import ExpressionError
from wfctl.model import StepStatus

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["mark_not_started", "mark_unused_handlers", "rollback", "run_handler"]


async def run_handler(
    ex: Executor, handler_id: str, for_step: str, purpose: str, error: dict[str, Any] | None
) -> dict[str, Any]:
    """Run one handler step for `for_step` (its record shows its latest run)."""
    handler = ex.workflow.all_steps[handler_id]
    record = ex.records[handler_id]
    record.status = StepStatus.RUNNING
    record.started_at = record.started_at or time.time()
    extra_ctx = {"error": error} if error else {}
    result: dict[str, Any] = {"step_id": handler_id, "for_step": for_step, "purpose": purpose}
    from wfctl.engine.lifecycle import check_storable

    try:
        output = await invoke(ex, handler, record, ex.step_input(handler), {}, extra_ctx)
        record.output = ex.masker.mask_data(output)
        updates: dict[str, Any] = {}
        if ex.actions.sets_vars(handler.action) and isinstance(output, dict):
            updates.update(output)
        if handler.output_mapping:
            ctx = ex.context(handler, output=record.output, **extra_ctx)
            updates.update({n: expr.evaluate(ctx) for n, expr in handler.output_mapping.items()})
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
    record.handler_runs.append(result)
    ex.emit_state(handler_id)
    ex.bus.emit(
        HandlerRan(
            ex.run_id,
            now(),
            handler_id,
            for_step,
            purpose,
            record.status,
            record.error,
            record.output,
        )
    )
    return result


async def rollback(ex: Executor) -> None:
    """Run rollback_actions of every completed step, newest completion first."""
    for step_id in reversed(ex.completion_order):
        step = ex.workflow.all_steps[step_id]
        for handler in step.rollback_actions:
            ex.rollbacks.append(await run_handler(ex, handler, step_id, "rollback", None))


def mark_not_started(ex: Executor, why: str) -> None:
    """Steps that never started when the run stopped: skipped, with the reason."""
    for step_id, record in ex.records.items():
        if record.status is StepStatus.PENDING and step_id not in ex.workflow.handlers:
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
