"""`wfctl show`: a past or running run as a table, from its journal."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Annotated, Any

import typer

from wfctl.cli._complete import any_run
from wfctl.cli._options import StateDirOption
from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from rich.console import Console

    from wfctl.events import Event
    from wfctl.state.store import RunRow, StateStore


def _render_to_text(report: dict[str, Any], console: Console) -> Any:
    from rich.console import Console
    from rich.text import Text

    from wfctl.view.report_view import render_report

    scratch = Console(width=console.width, record=True, file=io.StringIO())
    render_report(report, scratch)
    return Text.from_ansi(scratch.export_text(styles=True))


class _JournalLog:
    """Journal events as the plain log's lines (the ones it can rebuild from a row)."""

    def __init__(self, run_id: str, out: IO[str]) -> None:
        from wfctl.view.plain import PlainLog

        self.run_id = run_id
        self.log = PlainLog(out)
        self.seq = 0

    def feed(self, events: Iterable[tuple[int, dict[str, Any]]]) -> None:
        """Print the lines of `events` ((seq, event) in order) and remember the last seq."""
        for seq, e in events:
            self.seq = seq
            event = self._event(e)
            if event is not None:
                self.log(event)

    def _event(self, e: dict[str, Any]) -> Event | None:
        from wfctl.events import RunFinished, RunStarted, StepStateChanged
        from wfctl.model import StepStatus, WorkflowState

        fields = {k: v for k, v in e.items() if k != "kind"}
        try:
            match e.get("kind"):
                case "step_state":
                    fields["status"] = StepStatus(fields["status"])
                    return StepStateChanged(self.run_id, **fields)
                case "run_started":
                    return RunStarted(self.run_id, **fields)
                case "run_finished":
                    fields["status"] = WorkflowState(fields["status"])
                    return RunFinished(self.run_id, **fields)
        except (TypeError, ValueError, KeyError):
            return None  # a row from another wfctl version: no line rather than a crash
        return None


def _ended(store: StateStore, row: RunRow) -> tuple[RunRow, bool]:
    """The row as it is now, and whether its run stopped running."""
    from wfctl.state.lock import effective_status

    row = store.run(row.run_id) or row
    return row, effective_status(store.directory, row) != "running"


def _follow_live(store: StateStore, row: RunRow, console: Console) -> RunRow:
    """Redraw the run until it stops running; the row as it last was."""
    from rich.live import Live

    from wfctl.report.from_journal import report_from_journal

    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            row, ended = _ended(store, row)
            live.update(_render_to_text(report_from_journal(store, row), console))
            if ended:
                return row
            time.sleep(0.5)


def _follow_plain(store: StateStore, row: RunRow, out: IO[str]) -> RunRow:
    """In a pipe: the run's journal as log lines, as they come, until it stops running."""
    log = _JournalLog(row.run_id, out)
    while True:
        row, ended = _ended(store, row)
        # Read after the status: whatever the run wrote before it ended is printed.
        log.feed(store.events(row.run_id, after=log.seq))
        if ended:
            return row
        time.sleep(0.25)


def _exit_code(store: StateStore, row: RunRow) -> int:
    """What `wfctl run` exits with for the run's status (interrupted: as a Ctrl-C)."""
    from wfctl.cli.exit_codes import for_state
    from wfctl.state.lock import effective_status

    status = effective_status(store.directory, row)
    return int(ExitCode.INTERRUPTED if status == "interrupted" else for_state(status))


def show_command(directory: Path, run_id: str, follow: bool) -> int:
    """The table view of a past or running run, from the journal; --follow tails it and
    exits as the run's result."""
    from rich.console import Console

    from wfctl.report.from_journal import report_from_journal
    from wfctl.state.store import RunNotFound, opened_run
    from wfctl.view.report_view import render_report

    try:
        with opened_run(directory, run_id) as (store, row):
            tty = sys.stdout.isatty()
            console = Console(highlight=False, width=None if tty else 200)
            if follow:
                row = (
                    _follow_live(store, row, console)
                    if tty
                    else _follow_plain(store, row, sys.stdout)
                )
            render_report(report_from_journal(store, row), console)
            return _exit_code(store, row) if follow else ExitCode.OK
    except RunNotFound as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID


def show(
    run_id: Annotated[
        str,
        typer.Argument(help="The run to show (a unique prefix works).", autocompletion=any_run),
    ],
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Tail a run in progress until it ends; exit as its result."
        ),
    ] = False,
    state: StateDirOption = None,
) -> None:
    """Show a past or running run as a table, from its journal."""
    from wfctl.state.store import state_dir

    raise typer.Exit(show_command(state_dir(state), run_id, follow))
