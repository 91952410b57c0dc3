"""Iterations of loops: a group loop's iteration run as a nested graph under its own ids,
and the bookkeeping of a for-each's items (fail fast or not, every item's result).

An iteration's record is ``<loop>[<index>]`` and its steps' ``<loop>[<index>].<id>``
(:mod:`wfctl.model.scopes`). A resumed run keeps the records the journal had: a completed
iteration is not run again, and inside an unfinished one only what had not completed runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.compile.plan import Container
from wfctl.engine.attempts import StepFailed
from wfctl.engine.scopes import Scope
from wfctl.model import Step, StepStatus
from wfctl.model.scopes import iteration_id, local_id
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["Items", "run_iteration"]


async def run_iteration(
    ex: Executor, step: Step, body: Container, frame: dict[str, Any], matrix: bool = False
) -> Any:
    """Iteration `frame["index"]` of group loop `step`; its output maps each body step to
    its output. Raises StepFailed when a body step failed (and may not)."""
    iid = iteration_id(step.step_id, int(frame["index"]))
    record = ex.records.get(iid)
    if record is not None and record.status is StepStatus.COMPLETED:
        return record.output  # completed before the run was resumed
    if record is None:
        record = ex.records[iid] = StepRecord(iid)
    # The iteration is a record of its own (a row, a journal entry, a report step).
    ex.steps[iid] = replace(step, step_id=iid, container=step.step_id, dependencies=())
    scope = Scope.of(iid, frame, step.body_steps, ex.scopes.get(step.step_id), matrix)
    ex.scopes[iid] = scope
    record.status = StepStatus.RUNNING
    record.started_at = record.started_at or time.time()
    record.error = record.error_kind = record.reason = None
    ex.emit_state(iid, iteration=frame["index"])
    try:
        await ex.scheduler.run_iteration(body, scope)
    except anyio.get_cancelled_exc_class():
        with anyio.CancelScope(shield=True):
            _ended(ex, record, StepStatus.FAILED, None, _why_cancelled(ex, step), "cancelled")
        raise
    return _judge(ex, step, scope, record)


def _judge(ex: Executor, step: Step, scope: Scope, record: StepRecord) -> Any:
    # Keyed by the ids of the file the body is in (a sub-workflow's own, not inlined).
    outputs = {
        local_id(t.step_id): ex.records[scope.sid(t.step_id)].output for t in step.body_steps
    }
    failed = [
        ex.records[scope.sid(t.step_id)]
        for t in step.body_steps
        if ex.records[scope.sid(t.step_id)].status is StepStatus.FAILED
        and not t.retry_policy.continue_on_failure
    ]
    masked = ex.masker.mask_data(outputs)
    if failed:
        message = "; ".join(f"{r.step_id}: {r.error}" for r in failed)
        kind = failed[0].error_kind or "error"
        _ended(ex, record, StepStatus.FAILED, masked, message, kind)
        raise StepFailed(message, kind)
    _ended(ex, record, StepStatus.COMPLETED, masked, None, None)
    return outputs


def _ended(
    ex: Executor,
    record: StepRecord,
    status: StepStatus,
    output: Any,
    error: str | None,
    kind: str | None,
) -> None:
    record.status = status
    record.output = output
    record.error, record.error_kind = error, kind
    record.ended_at = time.time()
    ex.emit_state(record.step_id, output=output if status is StepStatus.COMPLETED else None)


def _why_cancelled(ex: Executor, step: Step) -> str:
    if ex.stop_reason == "timeout":
        return "cancelled: workflow timed out"
    if ex.stop_reason == "cancelled":
        return "cancelled: run cancelled"
    return f"cancelled: {ex.scheduler.stop_why.get(step.step_id, 'loop stopped')}"


class Items:
    """The items of one for-each run: which is next, their results, which failed."""

    def __init__(
        self, ex: Executor, step: Step, items: Any, fail_fast: bool, tolerance: int = 0
    ) -> None:
        self.ex = ex
        self.step = step
        self.items = list(items)
        self.fail_fast = fail_fast
        self.tolerance = tolerance  # failures allowed with the step still succeeding
        self.results: list[Any] = [None] * len(self.items)
        self.failures: dict[int, StepFailed] = {}
        self.started: set[int] = set()
        self.done: set[int] = set()
        self.scope: anyio.CancelScope | None = None
        self.stopped = False
        self.stopped_at: float | None = None

    def next_items(self) -> Iterator[tuple[int, Any]]:
        """Hand out the items one by one (shared by the workers) until stopped."""
        while not self.stopped and len(self.started) < len(self.items):
            index = len(self.started)
            self.started.add(index)
            yield index, self.items[index]

    def failed(self, index: int, exc: StepFailed) -> None:
        """Item `index` failed: with fail_fast, stop the others (recorded as cancelled)."""
        self.failures[index] = exc
        if self.fail_fast and not self.stopped and len(self.failures) > self.tolerance:
            # Stop handing out items; cancel the running ones (their records say why).
            self.stopped = True
            self.stopped_at = time.time()
            self.ex.scheduler.stop_why[self.step.step_id] = f"item {index} failed (fail_fast)"
            if self.scope is not None:
                self.scope.cancel()

    def outcome(self) -> Any:
        """The step's output; raises StepFailed (the output kept) if an item failed."""
        n = len(self.items)
        output = {"iterations": n, "outputs": self.results, "last": self.results[-1] if n else None}
        if not self.failures:
            return output
        output["failed"] = sorted(self.failures)
        if len(self.failures) <= self.tolerance:
            return output  # within tolerated_failures: the step succeeds, saying which
        cancelled = [i for i in range(n) if i not in self.failures and self._cancelled(i)]
        if cancelled:
            output["cancelled"] = cancelled
        self._record_not_started(cancelled)
        self.ex.records[self.step.step_id].output = self.ex.masker.mask_data(output)
        index = min(self.failures)
        exc = self.failures[index]
        if len(self.failures) == 1:
            raise StepFailed(f"item {index}: {exc}", exc.kind)
        which = ", ".join(map(str, sorted(self.failures)))
        raise StepFailed(
            f"{len(self.failures)} of {n} items failed ({which}); item {index}: {exc}", exc.kind
        )

    def _cancelled_attempts(self) -> None:
        if self.stopped_at is None:
            return
        why = f"cancelled: {self.ex.scheduler.stop_why.get(self.step.step_id, 'loop stopped')}"
        for attempt in self.ex.records[self.step.step_id].attempts:
            ended = attempt.ended_at
            if attempt.error is None and (ended is None or ended >= self.stopped_at):
                attempt.ended_at = ended or time.time()
                attempt.error, attempt.error_kind = why, "cancelled"

    def _cancelled(self, index: int) -> bool:
        return index not in self.done

    def _record_not_started(self, cancelled: list[int]) -> None:
        """Group form: items stopped before they started get a record saying why. Single
        action: the attempts the stop cancelled say why (they share the loop's record)."""
        ex, step = self.ex, self.step
        if not step.body_steps:
            self._cancelled_attempts()
            return
        why = f"cancelled: {ex.scheduler.stop_why.get(step.step_id, 'loop stopped')}"
        for index in cancelled:
            iid = iteration_id(step.step_id, index)
            if iid in ex.records:
                continue
            record = ex.records[iid] = StepRecord(iid, status=StepStatus.SKIPPED, reason=why)
            ex.steps[iid] = replace(step, step_id=iid, container=step.step_id, dependencies=())
            ex.emit_state(record.step_id)
