"""Journaled runs from Python: decide a waiting approval from any process and continue a
run (what `wfctl approve` and `wfctl resume` do, without the terminal)."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl.records import ApprovalDecision
from wfctl.state.store import RunNotFound, opened_run

if TYPE_CHECKING:
    from wfctl.engine.options import RunOptions
    from wfctl.model import Step, Workflow
    from wfctl.records import RunResult
    from wfctl.state.replay import Replayed
    from wfctl.state.store import RunRow, StateStore

__all__ = [
    "ResumeRefused",
    "RunNotFound",
    "approve_run",
    "journaled_state",
    "resume_run",
    "stored_inputs",
]


class ResumeRefused(RunNotFound):
    """The run cannot be continued: it ended, its workflow changed, or another process owns it."""


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


async def resume_run(
    state_dir: Path,
    run_id: str,
    inputs: Mapping[str, Any] | None = None,
    options: RunOptions | None = None,
    *,
    force: bool = False,
) -> RunResult:
    """Continue a crashed, killed, cancelled or waiting run: completed steps keep their
    outputs, in-flight ones run again. `inputs` gives secret inputs again (they are never
    stored) or overrides; `options` as for run_workflow (its store, resume and run id are
    the journal's). Raises RunNotFound, ResumeRefused, or WorkflowError when the file
    no longer validates."""
    from wfctl.engine.options import RunOptions
    from wfctl.engine.runner import run_workflow
    from wfctl.model.load import load_workflow
    from wfctl.state.lock import RunLock

    with opened_run(state_dir, run_id) as (store, row):
        if row.status in ("completed", "failed", "timeout"):
            raise ResumeRefused(f"run {row.run_id} already ended ({row.status})")
        workflow = load_workflow(row.file)
        if workflow.sha256 != row.sha256 and not force:
            raise ResumeRefused(f"{row.file} changed since run {row.run_id} started")
        lock = RunLock(store.directory, row.run_id)
        if not lock.acquire():
            raise ResumeRefused(f"run {row.run_id} is being run by another wfctl process now")
        try:
            _stop_orphans(row.run_id)
            replayed, decisions = journaled_state(store, row, workflow)
            base = options or RunOptions()
            resumed = replace(
                base,
                run_id=row.run_id,
                store=store,
                resume=replayed,
                approvals={**decisions, **(base.approvals or {})},
                workdir=base.workdir or _workdir(row),
            )
            given = {**stored_inputs(row, workflow), **(inputs or {})}
            return await run_workflow(workflow, given, resumed)
        finally:
            lock.release()


def _stop_orphans(run_id: str) -> None:
    # The lock is ours: whoever ran the run before is dead; its steps' processes may not be.
    from wfctl.engine.orphans import stop_orphans

    stop_orphans(run_id)


def journaled_state(
    store: StateStore, row: RunRow, workflow: Workflow
) -> tuple[Replayed, dict[str, ApprovalDecision]]:
    """What the journal knows of a run: its replayed steps and the decisions recorded."""
    from wfctl.state.replay import replay

    replayed = replay(workflow.all_steps, (e for _, e in store.events(row.run_id)))
    decisions = {
        step: ApprovalDecision(ok, by=by, comment=comment)
        for step, (ok, by, comment) in store.approvals(row.run_id).items()
    }
    return replayed, decisions


def stored_inputs(row: RunRow, workflow: Workflow) -> dict[str, Any]:
    """The run's journaled inputs, without the secret ones (never stored: their defaults
    apply again, or they must be given again)."""
    return {k: v for k, v in row.inputs.items() if not (k in workflow.secret_inputs and v == "***")}


def _workdir(row: RunRow) -> Path | None:
    # Relative paths in the workflow meant the directory the run started in.
    workdir = row.options.get("workdir")
    return Path(workdir) if workdir else None


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
