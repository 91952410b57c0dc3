"""Journaled runs from Python: decide a waiting approval from any process (what `wfctl
approve` does, without the terminal). `RunOptions(store=..., resume=...)` continues a run.
"""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl.records import ApprovalDecision
from wfctl.state.store import RunNotFound, opened_run

if TYPE_CHECKING:
    from wfctl.model import Step

__all__ = ["RunNotFound", "approve_run"]

# A step in one of these states has nothing left to decide.
_DECIDED = ("completed", "failed", "skipped")


def approve_run(
    state_dir: Path, run_id: str, step_id: str, decision: ApprovalDecision | None = None
) -> str:
    """Record `decision` (default: approved by the current user) for a waiting
    human_approval step of a journaled run; the run's full id. The run picks it up when it
    is resumed. Raises RunNotFound saying why nothing was recorded."""
    from wfctl.report.from_journal import report_from_journal

    decision = decision or ApprovalDecision(True, by=getpass.getuser())
    with opened_run(state_dir, run_id) as (store, row):
        steps = report_from_journal(store, row)["steps"]
        problem = _step_problem(steps, row.run_id, step_id) or _approval_problem(
            row.file, step_id, decision.by
        )
        if problem:
            raise RunNotFound(problem)
        store.record_approval(row.run_id, step_id, decision.approved, decision.by, decision.comment)
        return row.run_id


def _static_approvers(step: Step) -> list[str] | None:
    """The step's approvers when they are plain names (templated ones are checked at run time)."""
    from wfctl.model import ApprovalBody

    body = step.body
    approvers = list(body.approvers) if isinstance(body, ApprovalBody) else []
    if not approvers:
        return None
    if all(isinstance(a, str) and "{{" not in a for a in approvers):
        return approvers
    return None


def _approval_problem(file: str, step_id: str, who: str) -> str | None:
    """Why `who` may not decide `step_id` (not an approval step; not among its approvers)."""
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.model import StepType
    from wfctl.model.load import load_workflow

    try:
        workflow = load_workflow(file)
    except (WorkflowError, OSError):
        return None  # resume will refuse a changed or missing file; the journal checks stand
    step = workflow.all_steps.get(step_id)
    if step is None:
        return None
    if step.step_type is not StepType.HUMAN_APPROVAL:
        return f"step '{step_id}' is a {step.step_type.value} step, not a human_approval step"
    approvers = _static_approvers(step)
    if approvers is not None and who not in approvers:
        return (
            f"'{who}' is not an approver of '{step_id}' (approvers: {', '.join(approvers)}); "
            "decide as one of them with --by NAME"
        )
    return None


def _step_problem(steps: dict[str, Any], run_id: str, step_id: str) -> str | None:
    """Why the run's journal says there is nothing to decide for `step_id`."""
    if step_id not in steps:
        known = ", ".join(sorted(steps)) or "none"
        return f"run {run_id} has no step '{step_id}' (steps: {known})"
    status = steps[step_id]["status"]
    if status in _DECIDED:
        return f"step '{step_id}' is already {status}; nothing to decide"
    return None
