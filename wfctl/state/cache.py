"""The step cache: completed steps' outputs by key, in the run's state file (its own
table, created on first use, so older state files need no migration)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from typing import Any

from wfctl.state.store import StateStore

__all__ = ["StepCacheTable", "cache_digest"]

_TABLE = """
CREATE TABLE IF NOT EXISTS step_cache (
    digest TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    output TEXT NOT NULL
)
"""


def cache_digest(workflow_id: str, step_id: str, definition: str, rendered_key: Any) -> str:
    """The stored key: a hash, so a secret in the rendered key is never kept in clear."""
    text = json.dumps([workflow_id, step_id, definition, rendered_key], default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class StepCacheTable:
    """Lookups and records of cached step outputs; `read=False` (`--no-cache`) records
    without ever reading. `clock` is injectable so tests expire entries without waiting."""

    def __init__(
        self, store: StateStore, read: bool = True, clock: Callable[[], float] = time.time
    ) -> None:
        self.store = store
        self.read = read
        self.clock = clock
        try:
            store.conn.execute(_TABLE)
        except sqlite3.DatabaseError:
            self.store = store  # an unusable table: lookups miss, records are dropped

    def lookup(self, digest: str, ttl: float | None) -> tuple[str, Any] | None:
        """(run id, output) of a live entry, else None."""
        if not self.read:
            return None
        try:
            row = self.store.conn.execute(
                "SELECT run_id, recorded_at, output FROM step_cache WHERE digest = ?", (digest,)
            ).fetchone()
        except sqlite3.DatabaseError:
            return None
        if row is None or (ttl is not None and self.clock() - float(row[1]) > ttl):
            return None
        return str(row[0]), json.loads(row[2])

    def record(self, digest: str, run_id: str, step_id: str, output: Any) -> None:
        """Keep a completed step's (masked) output under `digest`."""
        self.store.conn.execute(
            "INSERT OR REPLACE INTO step_cache (digest, run_id, step_id, recorded_at, output)"
            " VALUES (?, ?, ?, ?, ?)",
            (digest, run_id, step_id, self.clock(), json.dumps(output, default=str)),
        )
