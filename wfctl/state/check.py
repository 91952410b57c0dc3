"""`wfctl doctor`'s checks of a state file: SQLite's own integrity check, the schema, and
every run's index row, journal and approvals readable. Read only."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Final

from wfctl.state.store import StateStore, StoreError

__all__ = ["StateCheck", "check_state"]

# The columns each table must have (extra ones are a newer wfctl's business).
_TABLES: Final[dict[str, frozenset[str]]] = {
    "runs": frozenset(
        (
            "run_id",
            "workflow_id",
            "workflow_name",
            "file",
            "sha256",
            "status",
            "started_at",
            "ended_at",
            "inputs",
            "options",
            "report_path",
            "error",
        )
    ),
    "events": frozenset(("run_id", "seq", "ts", "kind", "step_id", "data")),
    "approvals": frozenset(("run_id", "step_id", "approved", "by", "comment", "ts")),
}


@dataclass
class StateCheck:
    """What the check found: problems (each naming what is damaged) and what it read."""

    problems: list[str] = field(default_factory=list)
    runs: int = 0
    events: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _integrity(store: StateStore) -> Iterator[str]:
    rows = store.conn.execute("PRAGMA integrity_check").fetchall()
    if [r[0] for r in rows] != ["ok"]:
        yield from (f"integrity check: {r[0]}" for r in rows[:20])


def _schema(store: StateStore) -> Iterator[str]:
    for table, wanted in _TABLES.items():
        columns = {r[1] for r in store.conn.execute(f"PRAGMA table_info({table})")}
        if not columns:
            yield f"table '{table}' is missing"
        elif missing := sorted(wanted - columns):
            yield f"table '{table}' lacks column(s) {', '.join(missing)}"


def _runs(store: StateStore, result: StateCheck) -> Iterator[str]:
    run_ids = [r[0] for r in store.conn.execute("SELECT run_id FROM runs ORDER BY started_at")]
    for run_id in run_ids:
        result.runs += 1
        try:
            store.run(run_id)
            result.events += sum(1 for _ in store.events(run_id))
            store.approvals(run_id)
        except StoreError as exc:
            yield str(exc)  # it names the file and the run


_CHECKS: Final[tuple[Callable[[StateStore], Iterator[str]], ...]] = (_integrity, _schema)


def check_state(store: StateStore) -> StateCheck:
    """Every problem of the state file (a damaged file is reported, never changed)."""
    result = StateCheck()
    for check in _CHECKS:
        try:
            result.problems.extend(check(store))
        except sqlite3.DatabaseError as exc:
            result.problems.append(f"{check.__name__.strip('_')}: {exc}")
    if not any(p.startswith("table ") for p in result.problems):
        try:
            result.problems.extend(_runs(store, result))
        except sqlite3.DatabaseError as exc:
            result.problems.append(f"runs: {exc}")
    return result
