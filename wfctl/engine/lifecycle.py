"""One step from start to end: its `when`, its type's runner, then completed or failed
(output mapping, metrics, vars; error handlers, unless the scheduler runs them later),
or recorded as cancelled."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.engine.attempts import StepFailed
from wfctl.engine.step_cache import cache_digest_of, cached_output, record_cached
from wfctl.engine.step_call import invoke
from wfctl.engine.steps import RUNNERS, SLOTTED
from wfctl.events import MetricRecorded, now
from wfctl.expressions import ExpressionError, signal_pending, truthy
from wfctl.format.json_safe import json_problem, json_safe_copy
from wfctl.model import Step, StepStatus, StepType
from wfctl.records import Attempt, StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["check_storable", "complete", "execute", "fail", "handle_failure"]

_SIGNAL_GRACE = 5.0  # seconds an interrupted evaluation waits for the run to cancel it


async def execute(ex: Executor, step: Step) -> None:
    """Run one step to an end state (or to WAITING, for an approval)."""
    record = ex.records[step.step_id]
    try:
        if step.when is not None and not _when_holds(ex, step, record):
            _skip(ex, record, f"when is false: {step.when.source}")
            return
        if record.started_at is None and step.step_type not in SLOTTED:
            record.started_at = time.time()  # slotted steps start when they get a slot
        digest = None
        if step.cache is not None:
            output, digest = await _cached_action(ex, step, record)
        elif step.step_type is StepType.ACTION:  # the common case, one coroutine less
            output = await invoke(ex, step, record, ex.step_input(step), {}, hold=True)
        else:
            output = await RUNNERS[step.step_type](ex, step, record)
        if record.status is StepStatus.WAITING:
            return
        complete(ex, step, record, output)
        if digest is not None:
            record_cached(ex, step, record, digest)
    except StepFailed as exc:
        await fail(ex, step, record, str(exc), exc.kind)
    except ExpressionError as exc:
        await _expression_failed(ex, step, record, exc)
    except anyio.get_cancelled_exc_class():  # evaluated only when something propagates
        if not record.status.terminal:  # else the canceller recorded it (not started)
            with anyio.CancelScope(shield=True):
                _cancelled(ex, record)
        raise


async def _cached_action(ex: Executor, step: Step, record: StepRecord) -> tuple[Any, str | None]:
    """(output, digest to record it under): a hit's recorded output (nothing to record),
    else the action's own."""
    digest = cache_digest_of(ex, step)
    if digest is not None:
        hit, output = cached_output(ex, step, record, digest)
        if hit:
            return output, None
    return await invoke(ex, step, record, ex.step_input(step), {}, hold=True), digest


async def _expression_failed(
    ex: Executor, step: Step, record: StepRecord, exc: ExpressionError
) -> None:
    if exc.kind == "limit" and signal_pending():
        await _await_cancellation(ex, record)
    await fail(ex, step, record, f"expression error: {exc.message}", _kind(exc))


async def _await_cancellation(ex: Executor, record: StepRecord) -> None:
    """Ctrl-C/SIGTERM stopped an evaluation before the run had read the signal: the run's
    cancellation is on its way, so be cancelled by it like any running step (bounded, in
    case nothing acts on the signal)."""
    try:
        with anyio.move_on_after(_SIGNAL_GRACE):
            await anyio.sleep_forever()
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            _cancelled(ex, record)
        raise


def _kind(exc: ExpressionError) -> str:
    """The step's error kind for a failed expression: a resource limit is its own kind."""
    return "expression_limit" if exc.kind == "limit" else "validation"


def _when_holds(ex: Executor, step: Step, record: StepRecord) -> bool:
    # An approval step coming back for its decision was already let through.
    if record.status is StepStatus.WAITING or step.when is None:
        return True
    return truthy(step.when.evaluate(ex.context(step)))


def _skip(ex: Executor, record: StepRecord, reason: str) -> None:
    record.status = StepStatus.SKIPPED
    record.reason = reason
    ex.emit_state(record.step_id)
    if ex.steps[record.step_id].step_type is StepType.WORKFLOW:
        from wfctl.engine.steps.subworkflow import skip_inside

        skip_inside(ex, ex.steps[record.step_id])


def _cancelled(ex: Executor, record: StepRecord) -> None:
    record.status = StepStatus.FAILED
    record.ended_at = time.time()
    record.error = _why_cancelled(ex, record.step_id)
    record.error_kind = "cancelled"
    if record.attempts and record.attempts[-1].error is None:
        last = record.attempts[-1]
        last.ended_at = last.ended_at or record.ended_at
        last.error = record.error
        last.error_kind = "cancelled"
    ex.emit_state(record.step_id)


def _why_cancelled(ex: Executor, step_id: str) -> str:
    if ex.stop_reason == "timeout":
        return "workflow timed out while running"
    # A container that stopped its children (fail_fast) says why.
    step = ex.steps.get(step_id)
    container = step.container if step is not None else None
    why = ex.scheduler.stop_why.get(container) if container and ex.stop_reason is None else None
    return f"cancelled: {why}" if why else "cancelled while running"


def complete(ex: Executor, step: Step, record: StepRecord, output: Any) -> None:
    """Record success; a failing output_mapping raises StepFailed instead (no retry)."""
    if step.file_outputs and not record.cached:
        from wfctl.engine.file_outputs import with_files

        output = with_files(ex, step, output)
    masked = ex.masker.mask_data(output)
    updates = _set_values(step, output) if ex.actions.sets_vars(step.action) else {}
    ctx = (
        ex.context(step, output=masked, input=ex.built_inputs.get(step.step_id, {}))
        if step.output_mapping or step.custom_metrics
        else {}
    )
    for name, expr in step.output_mapping.items():
        try:
            updates[name] = expr.evaluate(ctx)
        except ExpressionError as exc:
            record.output = masked
            raise StepFailed(f"output_mapping.{name}: {exc.message}", _kind(exc)) from None
    check_storable(record, masked, updates)
    record.output = masked
    record.status = StepStatus.COMPLETED
    record.ended_at = time.time()
    record.error = None
    record.error_kind = None
    ex.completion_order.append(step.step_id)
    if step.metrics_enabled and step.custom_metrics:
        _metrics(ex, step, record, ctx)
    ex.store_vars(step.step_id, updates)
    ex.emit_state(step.step_id, output=record.output)


def check_storable(record: StepRecord, output: Any, updates: dict[str, Any]) -> None:
    """Numbers that JSON, SQLite and the checkpointer cannot hold fail the step here, not
    the run later (and not every resume after it): StepFailed naming where they are."""
    problem = json_problem(output, "output") or json_problem(updates, "vars")
    if problem is not None:
        record.output = json_safe_copy(output)
        raise StepFailed(problem, "validation")


def _set_values(step: Step, output: Any) -> dict[str, Any]:
    """What an action that declares `sets_vars` (e.g. `set`) merges into vars."""
    # A looping one stores what its last iteration set, not the loop summary.
    values = output.get("last") if step.step_type is StepType.LOOP else output
    return dict(values) if isinstance(values, dict) else {}


def _metrics(ex: Executor, step: Step, record: StepRecord, ctx: dict[str, Any]) -> None:
    for name, expr in step.custom_metrics.items():
        try:
            value = expr.evaluate(ctx)
        except ExpressionError as exc:
            value = None
            record.metrics[f"{name}_error"] = exc.message
        value = ex.masker.mask_data(value)
        record.metrics[name] = value
        ex.bus.emit(MetricRecorded(ex.run_id, now(), step.step_id, name, value))


async def fail(ex: Executor, step: Step, record: StepRecord, message: str, kind: str) -> None:
    """Record the failure, run the step's error handlers, maybe fail the run."""
    record.status = StepStatus.FAILED
    record.ended_at = time.time()
    record.error = ex.masker.mask(message)
    record.error_kind = kind
    if not record.attempts:
        # Failed before its action could run (input validation, a bad expression):
        # still one attempt, so the report says what happened and when.
        started = record.started_at or record.ended_at
        record.attempts.append(Attempt(1, started, record.ended_at, record.error, kind))
    ex.emit_state(step.step_id, output=record.output)
    if step.error_handlers and ex.scheduler.defers_handlers(step.step_id):
        return  # its own node runs them (the compiled graph's edge to error recovery)
    await handle_failure(ex, step, record)


async def handle_failure(ex: Executor, step: Step, record: StepRecord) -> None:
    """After a step failed: its error handlers (one may recover it), else maybe the
    run's failure."""
    if step.error_handlers:
        from wfctl.engine.handlers import handle_error

        if await handle_error(ex, step, record):
            return  # recovered: completed after all
    ex.mark_fatal(step, record)
