"""SIGINT and SIGTERM during a run: the first cancels it cleanly, the second exits at once."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import anyio

from wfctl.cli._output import err
from wfctl.cli.exit_codes import ExitCode
from wfctl.expressions import signal_handled


def _exit_now() -> None:
    """Exit at once, but leave no step processes behind."""
    shell = sys.modules.get("wfctl.actions.shell")
    if shell is not None:
        shell.kill_all_now()
    os._exit(ExitCode.INTERRUPTED)


async def watch_signals(signals: AsyncIterator[int], cancel: anyio.Event) -> None:
    """Set `cancel` on the first signal (Python's default SIGTERM would leave steps running)."""
    count = 0
    async for signum in signals:
        count += 1
        if count > 1:
            _exit_now()
        name = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        err(f"\ninterrupted ({name}): cancelling running steps (Ctrl-C again to exit at once)")
        cancel.set()
        # Evaluations begun from now on (exit hooks, rollbacks) are not interrupted.
        signal_handled()


def stop_on_store_failure(store: Any, cancel: anyio.Event) -> list[Exception]:
    """Stop the run when the state file cannot be written (disk full, I/O error): what
    is not journaled cannot be resumed, so nothing more should run. The failures seen."""
    failures: list[Exception] = []

    def failed(error: Exception) -> None:
        if not failures:
            err(f"error: {error}; stopping the run")
        failures.append(error)
        cancel.set()

    store.on_write_error = failed
    return failures


def journal_failed(error: Exception, run_id: str) -> int:
    """The end of a run stopped by a state file it could not write: how to go on."""
    err(
        f"error: {error}. Every step the journal recorded as completed is kept; "
        f"make space, then continue with: wfctl resume {run_id}"
    )
    return ExitCode.INTERNAL
