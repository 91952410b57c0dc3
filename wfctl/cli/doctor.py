"""`wfctl doctor`: check the state file (integrity, schema, every run's journal)."""

from __future__ import annotations

from pathlib import Path

import typer

from wfctl.cli._options import StateDirOption
from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode


def doctor_command(directory: Path) -> int:
    """Print what is damaged in the state file; 0 when nothing is, 1 when something is."""
    from wfctl.state.check import check_state
    from wfctl.state.store import StoreError, open_store

    try:
        store = open_store(directory, create=False)
    except StoreError as exc:
        err(f"error: {exc}")
        return ExitCode.INVALID
    try:
        result = check_state(store)
    finally:
        store.close()
    for problem in result.problems:
        print(problem if problem.startswith(str(store.path)) else f"{store.path}: {problem}")
    verdict = "ok" if result.ok else f"damaged ({len(result.problems)} problems)"
    print(f"{store.path}: {verdict}: {result.runs} runs, {result.events} journal events read")
    return ExitCode.OK if result.ok else ExitCode.FAILED


def doctor(state: StateDirOption = None) -> None:
    """Check the state file: SQLite integrity, the schema, every run's journal. Exit 0
    when it is sound, 1 when something is damaged (each problem is named)."""
    from wfctl.state.store import state_dir

    raise typer.Exit(doctor_command(state_dir(state)))
