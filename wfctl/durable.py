"""Journaled runs from Python: decide a waiting approval from any process and continue a
run (what `wfctl approve` and `wfctl resume` do, without the terminal)."""

from __future__ import annotations

import getpass
import os
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
    "IDENTITY_COMMAND_VAR",
    "IdentityError",
    "JournalDecisions",
    "ResumeRefused",
    "RunNotFound",
    "approve_run",
    "approver_identity",
    "approver_problem",
    "changed_plan_problem",
    "impersonation_problem",
    "journaled_state",
    "resume_run",
    "stored_inputs",
    "trusted_root",
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
        changed = changed_plan_problem(store, row, workflow)
        if changed:
            raise ResumeRefused(changed)
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


# The hook for a real identity: a command printing who is deciding (from an SSO session,
# a signed token, ...); without it the OS user decides.
IDENTITY_COMMAND_VAR = "WFCTL_IDENTITY_COMMAND"


class IdentityError(RunNotFound):
    """Who is deciding cannot be told (the identity command failed)."""


def approver_identity() -> str:
    """Who is deciding an approval: the first line $WFCTL_IDENTITY_COMMAND prints, else
    the OS user. Raises IdentityError when the command fails."""
    import shlex
    import subprocess

    command = os.environ.get(IDENTITY_COMMAND_VAR, "").strip()
    if not command:
        return getpass.getuser()
    try:
        done = subprocess.run(
            shlex.split(command), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, ValueError, subprocess.TimeoutExpired) as exc:
        raise IdentityError(f"${IDENTITY_COMMAND_VAR} ({command}) failed: {exc}") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise IdentityError(
            f"${IDENTITY_COMMAND_VAR} ({command}) exited {done.returncode} without an identity"
        )
    return lines[0].strip()


def trusted_root() -> bool:
    """Root without an identity command: it can write the state file anyway, so its
    decisions are not checked against approvers (with the command, they are)."""
    return os.geteuid() == 0 and not os.environ.get(IDENTITY_COMMAND_VAR, "").strip()


def impersonation_problem(by: str | None, identity: str) -> str | None:
    """Why `identity` may not record a decision as `by` (None: it may). A decision is
    recorded as whoever makes it; only root without an identity command (who can write
    the state file anyway) may record one on someone's behalf."""
    if by is None or by == identity or trusted_root():
        return None
    return (
        f"--by {by}: you are '{identity}', and a decision is recorded as whoever makes it "
        "(see the README, approvals: trust model)"
    )


def approver_problem(workflow: Workflow, step_id: str, who: str) -> str | None:
    """Why `who` is not among the approvers of `step_id` (None when it may decide)."""
    step = workflow.all_steps.get(step_id)
    approvers = None if step is None else _static_approvers(step)
    if approvers is None or who in approvers or trusted_root():
        return None
    return f"'{who}' is not an approver of '{step_id}' (approvers: {', '.join(approvers)})"


class JournalDecisions:
    """The approval handler of a live journaled run: a decision recorded by `wfctl approve`
    from any terminal reaches the run (`poll`, read from the journal's approvals); a
    terminal prompt, when there is one, is asked too."""

    def __init__(self, store: StateStore, run_id: str, prompt: Any = None) -> None:
        self.store = store
        self.run_id = run_id
        self.prompt = prompt

    async def __call__(self, request: Any) -> ApprovalDecision | None:
        """The prompt's answer (None without a prompt: the run watches the journal)."""
        if self.prompt is None:
            return None
        answer: ApprovalDecision | None = await self.prompt(request)
        return answer

    def poll(self, step_id: str) -> ApprovalDecision | None:
        """A decision recorded for `step_id` since the run began, if any."""
        found = self.store.approvals(self.run_id).get(step_id)
        if found is None:
            return None
        ok, by, comment = found
        return ApprovalDecision(ok, by=by, comment=comment)


def changed_plan_problem(store: StateStore, row: RunRow, workflow: Workflow) -> str | None:
    """Why a changed workflow cannot continue the run (`--force`): steps the journal knows
    are gone from it (renamed or removed), so what they did or wait for cannot be told."""
    if workflow.sha256 == row.sha256:
        return None
    started = next((e for _, e in store.events(row.run_id) if e.get("kind") == "run_started"), None)
    known = list(started.get("step_ids") or []) if started else []
    gone = [s for s in known if s not in workflow.all_steps]
    if not gone:
        return None
    return (
        f"{row.file} no longer has step(s) {', '.join(gone)} of run {row.run_id} (renamed or "
        "removed); resuming would skip or re-decide them silently. Start a new run instead"
    )


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
