"""The parallel step: its children are a container the scheduler runs (at most its
`max_parallel` at once); the step succeeds if enough of them do
(`parallel_failure_threshold`). A child with `continue_on_failure` may fail without
counting against the group (`tolerated` in the output). With `fail_fast`, the failure
that puts the threshold out of reach stops the other children (:class:`_FailFast`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from wfctl.compile.plan import Container
from wfctl.engine.attempts import StepFailed
from wfctl.engine.scopes import Scope
from wfctl.engine.steps.subworkflow import skip_inside
from wfctl.model import ParallelBody, Step, StepStatus, StepType
from wfctl.model.scopes import local_id, template_of
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Run the children's container, then judge the group."""
    record.status = StepStatus.RUNNING
    ex.emit_state(step.step_id)
    children, tolerated, stopped = await _run_children(ex, step)
    if any(c.status is StepStatus.WAITING for c in children):
        record.status = StepStatus.WAITING
        record.reason = "a child step is waiting for approval"
        ex.emit_state(step.step_id)
        return None
    output = _summary(children, tolerated)
    if stopped is not None:
        record.output = output | {"cancelled": _cancelled(children)}
        raise StepFailed(f"{stopped.step_id}: {stopped.error}", stopped.error_kind or "error")
    threshold = step.retry_policy.parallel_failure_threshold
    rate = output["success_rate"]
    if rate + 1e-9 < threshold:
        failed = [c.step_id for c in children if c.status is StepStatus.FAILED]
        record.output = output
        done = output["succeeded"] + output["failed"]
        raise StepFailed(
            f"{len(failed)} of {done} children failed ({', '.join(failed)}); "
            f"success rate {rate:.0%} is below the threshold {threshold:.0%}",
            "error",
        )
    return output


async def _run_children(
    ex: Executor, step: Step
) -> tuple[list[StepRecord], set[str], StepRecord | None]:
    """Run the group; its children's records, those allowed to fail, and the failed child
    that stopped the others (fail_fast), if one did."""
    # Inside a group loop's iteration the group runs as that iteration's copy.
    scope = ex.scopes.get(step.step_id) if ex.scopes else None
    level = ex.plan.levels[template_of(step.step_id)]
    ids = [scope.sid(c.step_id) if scope else c.step_id for c in step.children]
    tolerated = {
        i for i, c in zip(ids, step.children, strict=True) if c.retry_policy.continue_on_failure
    }
    stopped = None
    if isinstance(step.body, ParallelBody) and step.body.fail_fast:
        stopped = await _FailFast(ex, step, len(ids)).run(level, scope)
    else:
        await ex.scheduler.run_container(level, scope)
    return [ex.records[i] for i in ids], tolerated, stopped


class _FailFast:
    """A fail_fast group's watch over its children: the first failure that puts the
    failure threshold out of reach (with the default 1.0, any failure not tolerated by
    `continue_on_failure`) cancels the running children, and those not started never
    start. It is the for-each's mechanism: the scheduler's `stop_why` gives the cancelled
    children's records their reason."""

    def __init__(self, ex: Executor, step: Step, children: int) -> None:
        self.ex = ex
        self.step = step
        self.children = children
        self.failures = 0
        self.first: StepRecord | None = None
        self.cancel = anyio.CancelScope()

    def child_failed(self, child: Step, record: StepRecord) -> None:
        """A child finally failed (its handlers ran and did not recover it)."""
        if self.first is not None or child.retry_policy.continue_on_failure:
            return
        self.failures += 1
        # The best rate still possible: every child yet to end succeeds.
        best = (self.children - self.failures) / self.children
        if best + 1e-9 >= self.step.retry_policy.parallel_failure_threshold:
            return
        self.first = record
        why = f"child '{local_id(template_of(child.step_id))}' failed (fail_fast)"
        self.ex.scheduler.stop_why[self.step.step_id] = why
        self.cancel.cancel()
        self.ex.scheduler.stopping(self.step.step_id)

    async def run(self, level: Container, scope: Scope | None) -> StepRecord | None:
        """Run the container under the watch; the child that stopped it, if one did."""
        scheduler = self.ex.scheduler
        scheduler.on_failure[self.step.step_id] = self.child_failed
        try:
            with self.cancel:
                await scheduler.run_container(level, scope)
            if self.first is not None:
                self._not_started(self.step, scope)
        finally:
            del scheduler.on_failure[self.step.step_id]
            scheduler.stop_why.pop(self.step.step_id, None)
        return self.first

    def _not_started(self, group: Step, scope: Scope | None) -> None:
        """Children (and their nested groups' children) the stop kept from starting:
        skipped, with the reason."""
        ex = self.ex
        why = f"cancelled: {ex.scheduler.stop_why[self.step.step_id]}"
        for child in group.children:
            record = ex.records.get(scope.sid(child.step_id) if scope else child.step_id)
            if record is None or record.status is not StepStatus.PENDING:
                continue
            record.status, record.reason = StepStatus.SKIPPED, why
            ex.emit_state(record.step_id)
            if child.step_type is StepType.WORKFLOW:
                skip_inside(ex, ex.steps[record.step_id])
            self._not_started(child, scope)


def _cancelled(children: list[StepRecord]) -> list[str]:
    """The children a fail_fast stop cancelled or kept from starting."""
    return [
        local_id(template_of(c.step_id))
        for c in children
        if c.error_kind == "cancelled" or (c.reason or "").startswith("cancelled:")
    ]


def _summary(children: list[StepRecord], tolerated: set[str]) -> dict[str, Any]:
    count = {status: 0 for status in StepStatus}
    allowed = 0
    for c in children:
        if c.status is StepStatus.FAILED and c.step_id in tolerated:
            allowed += 1  # continue_on_failure: its failure does not count against the group
        else:
            count[c.status] += 1
    succeeded = count[StepStatus.COMPLETED]
    done = succeeded + count[StepStatus.FAILED]
    return {
        "succeeded": succeeded,
        "failed": count[StepStatus.FAILED],
        "tolerated": allowed,
        "skipped": count[StepStatus.SKIPPED],
        "success_rate": succeeded / done if done else 1.0,
        "children": {
            local_id(template_of(c.step_id)): {
                "status": c.status.value,
                "output": c.output,
                "error": c.error,
            }
            for c in children
        },
    }
