"""The parallel step: its children are a container the scheduler runs (at most its
`max_parallel` at once); the step succeeds if enough of them do
(`parallel_failure_threshold`). A child with `continue_on_failure` may fail without
counting against the group (`tolerated` in the output)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wfctl.engine.attempts import StepFailed
from wfctl.model import Step, StepStatus
from wfctl.model.scopes import local_id, template_of
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Run the children's container, then judge the group."""
    record.status = StepStatus.RUNNING
    ex.emit_state(step.step_id)
    children, tolerated = await _run_children(ex, step)
    if any(c.status is StepStatus.WAITING for c in children):
        record.status = StepStatus.WAITING
        record.reason = "a child step is waiting for approval"
        ex.emit_state(step.step_id)
        return None
    output = _summary(children, tolerated)
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


async def _run_children(ex: Executor, step: Step) -> tuple[list[StepRecord], set[str]]:
    """Run the group; its children's records, and those allowed to fail."""
    # Inside a group loop's iteration the group runs as that iteration's copy.
    scope = ex.scopes.get(step.step_id) if ex.scopes else None
    await ex.scheduler.run_container(ex.plan.levels[template_of(step.step_id)], scope)
    ids = [scope.sid(c.step_id) if scope else c.step_id for c in step.children]
    tolerated = {
        i for i, c in zip(ids, step.children, strict=True) if c.retry_policy.continue_on_failure
    }
    return [ex.records[i] for i in ids], tolerated


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
