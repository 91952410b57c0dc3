"""`wfctl approve`: record a decision for a waiting human_approval step, from any terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from wfctl.cli._complete import waiting_run, waiting_step
from wfctl.cli._options import StateDirOption
from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode


def approve_command(
    directory: Path, run_id: str, step_id: str, reject: bool, comment: str, by: str | None
) -> int:
    """Record an approval decision for a waiting human_approval step, from any terminal."""
    from wfctl.durable import RunNotFound, approve_run, approver_identity, impersonation_problem
    from wfctl.records import ApprovalDecision
    from wfctl.state.lock import RunLock

    try:
        identity = approver_identity()
        problem = impersonation_problem(by, identity)
        if problem:
            raise RunNotFound(problem)
        who = by or identity
        full_id = approve_run(
            directory, run_id, step_id, ApprovalDecision(not reject, who, comment)
        )
    except RunNotFound as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID
    verdict = "rejected" if reject else "approved"
    if RunLock(directory, full_id).held_elsewhere():
        print(f"{step_id} {verdict} by {who}; the live run takes it up now")
    else:
        print(f"{step_id} {verdict} by {who}; continue the run with: wfctl resume {full_id}")
    return ExitCode.OK


def approve(
    run_id: Annotated[str, typer.Argument(help="The waiting run.", autocompletion=waiting_run)],
    step_id: Annotated[
        str, typer.Argument(help="The human_approval step.", autocompletion=waiting_step)
    ],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approving.")] = False,
    comment: Annotated[str, typer.Option("--comment", help="Why.")] = "",
    by: Annotated[
        str | None,
        typer.Option(
            "--by",
            help="Who decides [you: the OS user, or what $WFCTL_IDENTITY_COMMAND prints];"
            " only yourself, unless you are root.",
        ),
    ] = None,
    state: StateDirOption = None,
) -> None:
    """Record an approval decision; then `wfctl resume RUN_ID` continues the run."""
    from wfctl.state.store import state_dir

    raise typer.Exit(approve_command(state_dir(state), run_id, step_id, reject, comment, by))
