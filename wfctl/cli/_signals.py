"""SIGINT and SIGTERM during a run: the first cancels it cleanly, the second exits at once."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator

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
