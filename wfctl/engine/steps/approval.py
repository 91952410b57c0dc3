"""The human_approval step: a decision given, asked of the approval handler, or waited
for (the run pauses; `wfctl approve` + `wfctl resume` continue it)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.engine.attempts import StepFailed
from wfctl.model import Step, StepStatus
from wfctl.records import ApprovalDecision, ApprovalRequest, Attempt, StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["POLL_SECONDS", "approval_due", "run"]

# How often a live run looks for a decision recorded by another process.
POLL_SECONDS = 0.2
_ACTIVE = frozenset({StepStatus.RUNNING, StepStatus.RETRYING})


def approval_due(ex: Executor, step_id: str) -> bool:
    """Can a waiting approval step be decided now (a decision, or its window closed)?"""
    if step_id in ex.approvals:
        return True
    step = ex.workflow.all_steps[step_id]
    started = ex.records[step_id].started_at
    return (
        step.timeout is not None and started is not None and time.time() - started >= step.timeout
    )


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Approved: the decision as output. Rejected: StepFailed. Else the step waits."""
    rendered = step.with_.render(ex.context(step))
    on_timeout = str(rendered.get("on_timeout", "reject"))
    decision = ex.approvals.get(step.step_id)
    if decision is None and approval_due(ex, step.step_id):
        # The approval window closed while nobody was running the workflow.
        decision = ApprovalDecision(on_timeout == "approve", by="timeout")
    if decision is None and ex.approval_handler is not None:
        decision = await _ask(ex, step, record, rendered, on_timeout)
    poll = getattr(ex.approval_handler, "poll", None)
    if decision is None and poll is not None:
        decision = await _wait_live(ex, step, record, poll, on_timeout)
    if decision is None:
        if record.status is not StepStatus.WAITING or record.reason != "waiting for approval":
            record.status = StepStatus.WAITING
            record.reason = "waiting for approval"
            ex.emit_state(step.step_id)
        return None
    return _decided(record, decision)


async def _ask(
    ex: Executor, step: Step, record: StepRecord, rendered: Any, on_timeout: str
) -> ApprovalDecision | None:
    assert ex.approval_handler is not None
    request = ApprovalRequest(
        run_id=ex.run_id,
        step_id=step.step_id,
        message=str(rendered.get("message", f"Approve step '{step.step_id}'?")),
        approvers=tuple(rendered.get("approvers", ())),
        timeout=step.timeout,
        on_timeout=on_timeout,
    )
    record.status = StepStatus.WAITING
    record.reason = "asking for approval"
    ex.emit_state(step.step_id)
    if step.timeout is None:
        return await _asked(ex, step.step_id, request)
    decision = None
    remaining = step.timeout - (time.time() - (record.started_at or time.time()))
    with anyio.move_on_after(max(0.0, remaining)) as window:
        decision = await _asked(ex, step.step_id, request)
    if window.cancelled_caught:
        return ApprovalDecision(on_timeout == "approve", by="timeout")
    return decision  # None: not decided here (skipped, or no prompt): the step waits


async def _asked(ex: Executor, step_id: str, request: ApprovalRequest) -> ApprovalDecision | None:
    """The handler's answer, or a decision recorded elsewhere meanwhile (`wfctl approve`
    from another terminal), whichever comes first."""
    assert ex.approval_handler is not None
    poll: Callable[[str], ApprovalDecision | None] | None = getattr(
        ex.approval_handler, "poll", None
    )
    if poll is None:
        return await ex.approval_handler(request)
    found: list[ApprovalDecision | None] = []

    async def first(get: Callable[[], Awaitable[ApprovalDecision | None]]) -> None:
        found.append(await get())
        tg.cancel_scope.cancel()

    async def polled() -> ApprovalDecision | None:
        assert poll is not None
        while (decision := poll(step_id)) is None:
            await anyio.sleep(POLL_SECONDS)
        return decision

    handler = ex.approval_handler
    async with anyio.create_task_group() as tg:
        tg.start_soon(first, lambda: handler(request))
        tg.start_soon(first, polled)
    return found[0] if found else None


def _others_active(ex: Executor, step: Step) -> bool:
    """Is the run doing something besides waiting on `step` (and its containers)?"""
    mine = {step.step_id}
    parent = step.container
    while parent is not None and parent not in mine:
        mine.add(parent)
        parent = ex.workflow.all_steps[parent].container
    return any(r.status in _ACTIVE and sid not in mine for sid, r in ex.records.items())


async def _wait_live(
    ex: Executor,
    step: Step,
    record: StepRecord,
    poll: Callable[[str], ApprovalDecision | None],
    on_timeout: str,
) -> ApprovalDecision | None:
    """While the rest of the run goes on, watch the journal for a decision recorded from
    another terminal and for the approval window to close; None once nothing else runs
    (the run then pauses: `wfctl approve` + `wfctl resume`)."""
    if record.status is not StepStatus.WAITING or record.reason != "waiting for approval":
        record.status = StepStatus.WAITING
        record.reason = "waiting for approval"
        ex.emit_state(step.step_id)
    while True:
        decision = poll(step.step_id)
        if decision is not None:
            return decision
        if approval_due(ex, step.step_id):
            return ApprovalDecision(on_timeout == "approve", by="timeout")
        if not _others_active(ex, step):
            return None
        await anyio.sleep(POLL_SECONDS)


def _decided(record: StepRecord, decision: ApprovalDecision) -> Any:
    # The decision ends the wait: the step now completes or fails like any other.
    record.status = StepStatus.RUNNING
    attempt = Attempt(1, record.started_at or time.time(), time.time())
    record.attempts.append(attempt)
    if not decision.approved:
        reason = f"rejected by {decision.by}" + (
            f": {decision.comment}" if decision.comment else ""
        )
        attempt.error, attempt.error_kind = reason, "rejected"
        raise StepFailed(reason, "rejected")
    return {"approved": True, "by": decision.by, "comment": decision.comment}
