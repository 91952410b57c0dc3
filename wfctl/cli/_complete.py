"""Shell completion of run ids and step ids from the journal (`wfctl --install-completion`).

Each function runs in a `wfctl` process the shell starts on Tab: it opens the journal
read-only (never creating a state directory), answers from it, and answers nothing
rather than fail: a traceback in the middle of a command line helps nobody.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from wfctl.state.store import RunRow, StateStore

#: How many of the newest runs are offered.
_RUNS = 50
# Statuses a run can no longer be resumed from (wfctl resume refuses them).
_ENDED = frozenset({"completed", "failed", "timeout"})
Completion = list[tuple[str, str]]


def _state_dir(ctx: typer.Context) -> Path:
    given = ctx.params.get("state")
    return Path(given or os.environ.get("WFCTL_HOME") or ".wfctl")


@contextmanager
def _journal(ctx: typer.Context) -> Iterator[StateStore | None]:
    """The run journal, or None where there is none (or it cannot be read)."""
    import sqlite3

    from wfctl.state.store import StoreError, open_store

    store = None
    with suppress(OSError, StoreError, sqlite3.Error):
        store = open_store(_state_dir(ctx), create=False)
    try:
        yield store
    finally:
        if store is not None:
            store.close()


def _runs(ctx: typer.Context, incomplete: str, keep: Callable[[RunRow], bool]) -> Completion:
    import sqlite3

    with _journal(ctx) as store:
        if store is None:
            return []
        try:
            rows = store.runs(limit=_RUNS)
        except sqlite3.Error:
            return []
    return [
        (row.run_id, f"{row.workflow_id} {row.status}")
        for row in rows
        if row.run_id.startswith(incomplete) and keep(row)
    ]


def any_run(ctx: typer.Context, incomplete: str) -> Completion:
    """Run ids for `wfctl show`: every recent run, newest first."""
    return _runs(ctx, incomplete, lambda row: True)


def resumable_run(ctx: typer.Context, incomplete: str) -> Completion:
    """Run ids for `wfctl resume`: runs that have not ended."""
    return _runs(ctx, incomplete, lambda row: row.status not in _ENDED)


def waiting_run(ctx: typer.Context, incomplete: str) -> Completion:
    """Run ids for `wfctl approve`: runs waiting for an approval."""
    return _runs(ctx, incomplete, lambda row: row.status == "waiting_approval")


def waiting_step(ctx: typer.Context, incomplete: str) -> Completion:
    """Step ids for `wfctl approve RUN_ID`: the run's steps waiting for a decision."""
    import sqlite3

    run_id = ctx.params.get("run_id")
    if not run_id:
        return []
    with _journal(ctx) as store:
        if store is None:
            return []
        try:
            row = store.run(str(run_id))
            events = [e for _, e in store.events(row.run_id)] if row else []
        except sqlite3.Error:
            return []
    return [(step, "waiting for approval") for step in _waiting(events, incomplete)]


def _waiting(events: list[dict[str, Any]], prefix: str) -> list[str]:
    """Steps whose last state in `events` is `waiting`, starting with `prefix`."""
    last: dict[str, str] = {}
    for e in events:
        if e.get("kind") == "step_state":
            last[e["step_id"]] = e.get("status", "")
    return [
        step for step, status in last.items() if status == "waiting" and step.startswith(prefix)
    ]
