"""`wfctl approve`: record a decision for a waiting human_approval step, from any terminal."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated, Any

import typer

from wfctl.cli._options import StateDirOption
from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode

# A step in one of these states has nothing left to decide.
_DECIDED = ("completed", "failed", "skipped")


def _static_approvers(step: Any) -> list[str] | None:
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


def approve_command(
    directory: Path, run_id: str, step_id: str, reject: bool, comment: str, by: str | None
) -> int:
    """Record an approval decision for a waiting human_approval step, from any terminal."""
    from wfctl.report.from_journal import report_from_journal
    from wfctl.state.store import RunNotFound, opened_run

    try:
        with opened_run(directory, run_id) as (store, row):
            steps = report_from_journal(store, row)["steps"]
            problem = _step_problem(steps, row.run_id, step_id)
            if problem:
                raise RunNotFound(problem)
            who = by or getpass.getuser()
            problem = _approval_problem(row.file, step_id, who)
            if problem:
                raise RunNotFound(problem)
            store.record_approval(row.run_id, step_id, not reject, who, comment)
            verdict = "rejected" if reject else "approved"
            print(f"{step_id} {verdict} by {who}; continue the run with: wfctl resume {row.run_id}")
            return ExitCode.OK
    except RunNotFound as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID


def approve(
    run_id: Annotated[str, typer.Argument(help="The waiting run.")],
    step_id: Annotated[str, typer.Argument(help="The human_approval step.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    comment: Annotated[str, typer.Option("--comment", help="Why.")] = "",
    by: Annotated[str | None, typer.Option("--by", help="Who decides [current user].")] = None,
    state: StateDirOption = None,
) -> None:
    """Record an approval decision; then `wfctl resume RUN_ID` continues the run."""
    from wfctl.state.store import state_dir

    raise typer.Exit(approve_command(state_dir(state), run_id, step_id, reject, comment, by))
