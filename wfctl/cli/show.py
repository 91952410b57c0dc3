"""`wfctl show`: a past or running run as a table, from its journal."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wfctl.cli._complete import any_run
from wfctl.cli._options import StateDirOption
from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode

if TYPE_CHECKING:
    from rich.console import Console

    from wfctl.state.store import RunRow, StateStore


def _render_to_text(report: dict[str, Any], console: Console) -> Any:
    from rich.console import Console
    from rich.text import Text

    from wfctl.view.report_view import render_report

    scratch = Console(width=console.width, record=True, file=io.StringIO())
    render_report(report, scratch)
    return Text.from_ansi(scratch.export_text(styles=True))


def _follow(store: StateStore, row: RunRow, console: Console) -> RunRow:
    """Redraw the run until it stops running; the row as it last was."""
    from rich.live import Live

    from wfctl.report.from_journal import report_from_journal
    from wfctl.state.lock import effective_status

    with Live(console=console, refresh_per_second=4, transient=True) as live:
        while True:
            row = store.run(row.run_id) or row
            live.update(_render_to_text(report_from_journal(store, row), console))
            if effective_status(store.directory, row) != "running":
                return row
            time.sleep(0.5)


def show_command(directory: Path, run_id: str, follow: bool) -> int:
    """The table view of a past or running run, from the journal; --follow tails it."""
    from rich.console import Console

    from wfctl.report.from_journal import report_from_journal
    from wfctl.state.store import RunNotFound, opened_run
    from wfctl.view.report_view import render_report

    try:
        with opened_run(directory, run_id) as (store, row):
            console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)
            if follow:
                row = _follow(store, row, console)
            render_report(report_from_journal(store, row), console)
            return ExitCode.OK
    except RunNotFound as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID


def show(
    run_id: Annotated[
        str,
        typer.Argument(help="The run to show (a unique prefix works).", autocompletion=any_run),
    ],
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Tail a run in progress until it ends.")
    ] = False,
    state: StateDirOption = None,
) -> None:
    """Show a past or running run as a table, from its journal."""
    from wfctl.state.store import state_dir

    raise typer.Exit(show_command(state_dir(state), run_id, follow))
