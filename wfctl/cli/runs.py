"""`wfctl runs`: list recent runs from the state store."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from wfctl.cli._options import StateDirOption
from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from wfctl.state.store import RunRow, StateStore

Listed = list[tuple["RunRow", str]]  # a run's row and the status to show for it


def _when(ts: float) -> str:
    """For people: the table's start time, to the second."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _iso(ts: float) -> str:
    """For scripts: ISO 8601 in UTC, as the report writes its times."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


# A shown status the store does not hold: an "interrupted" run is stored as running.
_STORED_AS = {"interrupted": "running"}


def _select(store: StateStore, workflow: str | None, status: str | None, limit: int) -> Listed:
    """The newest `limit` runs; `status` filters on the shown (effective) status, in SQL
    first, so an old match is found however many newer runs there are."""
    from wfctl.state.lock import effective_status

    listed: Listed = []
    stored = _STORED_AS.get(status, status) if status else None
    for row in store.iter_runs(workflow=workflow, status=stored):
        shown = effective_status(store.directory, row)
        if status and shown != status:
            continue
        listed.append((row, shown))
        if len(listed) >= limit:
            break
    return listed


def _as_json(listed: Listed) -> str:
    return json.dumps(
        [
            {
                "run_id": r.run_id,
                "workflow_id": r.workflow_id,
                "workflow_name": r.workflow_name,
                "file": r.file,
                "status": s,
                "started_at": _iso(r.started_at),
                "duration": r.duration,
                "report": r.report_path,
                "error": r.error,
            }
            for r, s in listed
        ],
        indent=2,
    )


def _print_table(listed: Listed) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, pad_edge=False)
    for col in ("run id", "workflow", "status", "started", "duration"):
        table.add_column(col, no_wrap=True)
    for r, s in listed:
        dur = f"{r.duration:.1f}s" if r.duration is not None else "…"
        table.add_row(r.run_id, r.workflow_id, s, _when(r.started_at), dur)
    Console(highlight=False, width=None if sys.stdout.isatty() else 200).print(table)


def _print(listed: Listed, as_json: bool) -> None:
    if as_json:
        print(_as_json(listed))
    elif not listed:
        print("no runs")
    else:
        _print_table(listed)


def runs_command(
    directory: Path, workflow: str | None, status: str | None, limit: int, as_json: bool
) -> int:
    """List recent runs, newest first."""
    from wfctl.state.store import DB_NAME, StoreError, open_store

    if not (directory / DB_NAME).exists():
        print("[]" if as_json else f"no runs in {directory}")
        return ExitCode.OK
    try:
        store = open_store(directory, create=False)
    except StoreError as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID
    try:
        _print(_select(store, workflow, status, limit), as_json)
        for problem in store.skipped:
            err(f"warning: {problem}; that run is not listed (see: wfctl doctor)")
        return ExitCode.OK
    finally:
        store.close()


def runs(
    workflow: Annotated[
        str | None, typer.Option("--workflow", help="Only this workflow_id.")
    ] = None,
    status: Annotated[
        str | None, typer.Option("--status", help="Only runs in this status.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many.")] = 20,
    json_output: Annotated[bool, typer.Option("--json", help="JSON instead of a table.")] = False,
    state: StateDirOption = None,
) -> None:
    """List recent runs: id, workflow, status, started, duration."""
    from wfctl.state.store import state_dir

    raise typer.Exit(runs_command(state_dir(state), workflow, status, limit, json_output))
