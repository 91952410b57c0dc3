"""Commands over the state store: `runs`, `show`, `approve` (read side, plus decisions)."""

from __future__ import annotations

import getpass
import io
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wfctl.state.journal import RunLock, RunNotFound, open_store, opened_run, replay
from wfctl.state.store import DB_NAME, RunRow, StateStore, StoreError

EXIT_INVALID = 2


def _err(message: str) -> None:
    sys.stderr.write(message + "\n")


def effective_status(store: StateStore, row: RunRow) -> str:
    """A run marked running whose owner is gone was interrupted (crash, kill -9)."""
    if row.status == "running" and not RunLock(store.directory, row.run_id).held_elsewhere():
        return "interrupted"
    return row.status


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def runs_command(
    directory: Path, workflow: str | None, status: str | None, limit: int, as_json: bool
) -> int:
    """List recent runs, newest first."""
    if not (directory / DB_NAME).exists():
        print("[]" if as_json else f"no runs in {directory}")
        return 0
    try:
        store = open_store(directory, create=False)
    except StoreError as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID
    try:
        rows = store.runs(workflow=workflow, status=None, limit=max(limit * 5, limit))
        listed = []
        for row in rows:
            shown = effective_status(store, row)
            if status and shown != status:
                continue
            listed.append((row, shown))
            if len(listed) >= limit:
                break
        if as_json:
            print(
                json.dumps(
                    [
                        {
                            "run_id": r.run_id,
                            "workflow_id": r.workflow_id,
                            "workflow_name": r.workflow_name,
                            "file": r.file,
                            "status": s,
                            "started_at": _when(r.started_at),
                            "duration": r.duration,
                            "report": r.report_path,
                            "error": r.error,
                        }
                        for r, s in listed
                    ],
                    indent=2,
                )
            )
            return 0
        if not listed:
            print("no runs")
            return 0
        from rich.console import Console
        from rich.table import Table

        table = Table(box=None, pad_edge=False)
        for col in ("run id", "workflow", "status", "started", "duration"):
            table.add_column(col, no_wrap=True)
        for r, s in listed:
            dur = f"{r.duration:.1f}s" if r.duration is not None else "…"
            table.add_row(r.run_id, r.workflow_id, s, _when(r.started_at), dur)
        Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)
        return 0
    finally:
        store.close()


def report_from_journal(store: StateStore, row: RunRow) -> dict[str, Any]:
    """A report-shaped dict rebuilt from the journal (for `show` of any run, even a live one)."""
    events = [e for _, e in store.events(row.run_id)]
    started = next((e for e in events if e.get("kind") == "run_started"), None)
    step_ids = list(started["step_ids"]) if started else []
    replayed = replay(step_ids, events)
    steps: dict[str, Any] = {}
    for step_id, rec in replayed.records.items():
        steps[step_id] = {
            "name": step_id,
            "status": rec.status.value,
            "attempts": [{"number": a.number} for a in rec.attempts],
            "duration": rec.duration,
            "error": rec.error,
            "skipped_reason": rec.reason,
            "parent": None,
            "output": rec.output,
        }
    for e in events:
        if e.get("kind") == "step_state" and e.get("container") and e["step_id"] in steps:
            steps[e["step_id"]]["parent"] = e["container"]
    finished = replayed.finished
    return {
        "execution_id": row.run_id,
        "workflow": {"id": row.workflow_id, "name": row.workflow_name, "file": row.file},
        "status": effective_status(store, row),
        "duration": (finished or {}).get("duration")
        or ((row.ended_at or time.time()) - row.started_at),
        "error": row.error,
        "steps": steps,
        "waiting_for": [k for k, r in replayed.records.items() if r.status.value == "waiting"],
    }


def show_command(directory: Path, run_id: str, follow: bool) -> int:
    """The table view of a past or running run, from the journal; --follow tails it."""
    from rich.console import Console

    from wfctl.view.report_view import render_report

    try:
        with opened_run(directory, run_id) as (store, row):
            console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
            if follow:
                from rich.live import Live

                with Live(console=console, refresh_per_second=4, transient=True) as live:
                    while True:
                        row = store.run(row.run_id) or row
                        live.update(_render_to_text(report_from_journal(store, row), console))
                        if effective_status(store, row) != "running":
                            break
                        time.sleep(0.5)
            render_report(report_from_journal(store, row), console)
            return 0
    except RunNotFound as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID


def _render_to_text(report: dict[str, Any], console: Any) -> Any:
    from rich.console import Console
    from rich.text import Text

    from wfctl.view.report_view import render_report

    scratch = Console(width=console.width, record=True, file=io.StringIO())
    render_report(report, scratch)
    return Text.from_ansi(scratch.export_text(styles=True))


def _approval_problem(file: str, step_id: str, who: str) -> str | None:
    """Why `who` may not decide `step_id` (not an approval step; not among its approvers)."""
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.model import StepType
    from wfctl.validate.files import load_workflow

    try:
        workflow = load_workflow(file)
    except (WorkflowError, OSError):
        return None  # resume will refuse a changed or missing file; the journal checks stand
    step = workflow.all_steps.get(step_id)
    if step is None:
        return None
    if step.step_type is not StepType.HUMAN_APPROVAL:
        return f"step '{step_id}' is a {step.step_type.value} step, not a human_approval step"
    approvers = step.raw_with.get("approvers")
    if (
        isinstance(approvers, list)
        and approvers
        and all(isinstance(a, str) and "{{" not in a for a in approvers)
        and who not in approvers
    ):
        return (
            f"'{who}' is not an approver of '{step_id}' (approvers: {', '.join(approvers)}); "
            "decide as one of them with --by NAME"
        )
    return None


def approve_command(
    directory: Path, run_id: str, step_id: str, reject: bool, comment: str, by: str | None
) -> int:
    """Record an approval decision for a waiting human_approval step, from any terminal."""
    try:
        with opened_run(directory, run_id) as (store, row):
            steps = report_from_journal(store, row)["steps"]
            if step_id not in steps:
                known = ", ".join(sorted(steps)) or "none"
                raise RunNotFound(f"run {row.run_id} has no step '{step_id}' (steps: {known})")
            status = steps[step_id]["status"]
            if status in ("completed", "failed", "skipped"):
                raise RunNotFound(f"step '{step_id}' is already {status}; nothing to decide")
            who = by or getpass.getuser()
            problem = _approval_problem(row.file, step_id, who)
            if problem:
                raise RunNotFound(problem)
            store.record_approval(row.run_id, step_id, not reject, who, comment)
            verdict = "rejected" if reject else "approved"
            print(f"{step_id} {verdict} by {who}; continue the run with: wfctl resume {row.run_id}")
            return 0
    except RunNotFound as exc:
        _err(f"error: {exc}")
        return EXIT_INVALID
