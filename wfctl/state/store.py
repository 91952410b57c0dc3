"""The state store: one SQLite file (WAL) holding the run journal and run index.

Several wfctl processes use it at once (one runs, others list or approve), so every
connection sets a busy timeout and writes are short transactions. LangGraph's
checkpoints live in the same file (their own tables, written by the checkpointer).
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import stat
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

APPLICATION_ID = 0x77666374  # "wfct": marks the file as ours
SCHEMA_VERSION = 1
DB_NAME = "state.db"

# A journal row holding several consecutive events (a JSON array); see append_batch.
BATCH_KIND: Final = "batch"
MAX_BATCH: Final = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    file TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at REAL NOT NULL,
    ended_at REAL,
    inputs TEXT NOT NULL,
    options TEXT NOT NULL,
    report_path TEXT,
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    ts REAL NOT NULL,
    kind TEXT NOT NULL,
    step_id TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS approvals (
    run_id TEXT NOT NULL,
    step_id TEXT NOT NULL,
    approved INTEGER NOT NULL,
    by TEXT NOT NULL,
    comment TEXT NOT NULL,
    ts REAL NOT NULL,
    PRIMARY KEY (run_id, step_id)
);
"""


class StoreError(Exception):
    """The state file cannot be used (corrupt, foreign, newer version, unwritable)."""


@dataclass(frozen=True)
class RunRow:
    run_id: str
    workflow_id: str
    workflow_name: str
    file: str
    sha256: str
    status: str
    started_at: float
    ended_at: float | None
    inputs: dict[str, Any]
    options: dict[str, Any]
    report_path: str | None
    error: str | None

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--state-dir`, else $WFCTL_HOME, else ./.wfctl."""
    return Path(explicit or os.environ.get("WFCTL_HOME") or ".wfctl")


class StateStore:
    """Run index, journal and approvals in `<state dir>/state.db`."""

    def __init__(self, directory: str | os.PathLike[str], create: bool = True) -> None:
        self.directory = Path(directory)
        self.path = self.directory / DB_NAME
        if not self.path.exists():
            if not create:
                raise StoreError(f"no wfctl state in {self.directory} (nothing has run here yet)")
            # Checkpoints hold step outputs in plain text: keep the directory private.
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            _private_file(self.path)
        if create:
            make_private(self.directory, self.path)
        self.conn = self._connect()
        # Told of every failed write before it raises (the CLI stops the run on it).
        self.on_write_error: Callable[[StoreError], None] | None = None
        self.skipped: list[str] = []  # damaged index rows iter_runs passed over

    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 30000")
            app_id = conn.execute("PRAGMA application_id").fetchone()[0]
            tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
            if app_id not in (0, APPLICATION_ID) or (app_id == 0 and tables):
                conn.close()
                raise StoreError(
                    f"{self.path} is not a wfctl state file (it was left untouched); "
                    "use --state-dir to choose another directory"
                )
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.close()
                raise StoreError(
                    f"{self.path} was written by a newer wfctl (state version {version})"
                )
            conn.execute("PRAGMA journal_mode = WAL")
            # WAL + NORMAL: a commit survives the process being killed (not power loss).
            conn.execute("PRAGMA synchronous = NORMAL")
            if app_id == 0:
                conn.executescript(
                    "BEGIN IMMEDIATE;"
                    + _SCHEMA
                    + f"PRAGMA application_id = {APPLICATION_ID};"
                    + f"PRAGMA user_version = {SCHEMA_VERSION};"
                    + "COMMIT;"
                )
            return conn
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is not a usable wfctl state file ({exc}); it was left untouched"
            ) from None

    def close(self) -> None:
        self.conn.close()

    def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        with self._writing():
            self.conn.execute(sql, params)

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """SQLite's errors while writing as one StoreError, told to `on_write_error`."""
        try:
            yield
        except (sqlite3.DatabaseError, OverflowError) as exc:
            error = StoreError(f"cannot write {self.path}: {exc}")
            if self.on_write_error is not None:
                self.on_write_error(error)
            raise error from None

    @contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """SQLite's errors while reading `what` as one StoreError naming the file."""
        try:
            yield
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path} is damaged: {exc} (reading {what}); "
                "`wfctl doctor` checks the whole file"
            ) from None

    def _decode(self, data: str, what: str) -> Any:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StoreError(f"{self.path}: {what} is damaged (not JSON: {exc})") from None

    # -- runs -------------------------------------------------------------
    def create_run(
        self,
        run_id: str,
        workflow_id: str,
        workflow_name: str,
        file: str,
        sha256: str,
        inputs: dict[str, Any],
        options: dict[str, Any],
    ) -> None:
        self._write(
            "INSERT INTO runs (run_id, workflow_id, workflow_name, file, sha256, status,"
            " started_at, inputs, options) VALUES (?, ?, ?, ?, ?, 'running', ?, ?, ?)",
            (
                run_id,
                workflow_id,
                workflow_name,
                file,
                sha256,
                time.time(),
                json.dumps(inputs, default=str),
                json.dumps(options, default=str),
            ),
        )

    def set_status(
        self,
        run_id: str,
        status: str,
        error: str | None = None,
        ended: bool = True,
        report_path: str | None = None,
    ) -> None:
        self._write(
            "UPDATE runs SET status = ?, error = ?, ended_at = ?,"
            " report_path = coalesce(?, report_path) WHERE run_id = ?",
            (status, error, time.time() if ended else None, report_path, run_id),
        )

    def run(self, run_id: str) -> RunRow | None:
        if not run_id.strip():
            return None  # an empty id is a prefix of every run: never a choice
        with self._reading("the run index"):
            row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row is None:
                # Let people type a unique prefix of a long run id.
                rows = self.conn.execute(
                    "SELECT * FROM runs WHERE run_id LIKE ? ESCAPE '\\' LIMIT 2",
                    (run_id.replace("%", "\\%").replace("_", "\\_") + "%",),
                ).fetchall()
                row = rows[0] if len(rows) == 1 else None
        return self._row(row) if row else None

    def runs(
        self, workflow: str | None = None, status: str | None = None, limit: int = 20
    ) -> list[RunRow]:
        """The newest `limit` runs, filtered on the stored status."""
        rows = self.iter_runs(workflow, status)
        return [row for _, row in zip(range(limit), rows, strict=False)]

    def iter_runs(self, workflow: str | None = None, status: str | None = None) -> Iterator[RunRow]:
        """Runs newest first, filtered in SQL (so an old match is found however many newer
        runs there are), read lazily: stop iterating when enough were taken."""
        sql = "SELECT * FROM runs WHERE 1=1"
        params: list[Any] = []
        if workflow:
            sql += " AND workflow_id = ?"
            params.append(workflow)
        if status:
            sql += " AND status = ?"
            params.append(status)
        sql += " ORDER BY started_at DESC"
        with self._reading("the run index"):
            for r in self.conn.execute(sql, params):
                try:
                    yield self._row(r)
                except StoreError as exc:
                    # One damaged row must not hide every other run.
                    self.skipped.append(str(exc))

    # -- journal ------------------------------------------------------------
    def next_seq(self, run_id: str) -> int:
        with self._reading(f"the journal of run {run_id}"):
            row = self.conn.execute(
                "SELECT seq, kind, data FROM events WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
                (run_id,),
            ).fetchone()
        if row is None:
            return 1
        seq, kind, data = row
        if kind != BATCH_KIND:
            return int(seq) + 1
        return int(seq) + len(self._decode(data, f"run {run_id}'s journal row {seq}"))

    def append_event(
        self, run_id: str, seq: int, ts: float, kind: str, step_id: str | None, data: str
    ) -> None:
        """Append one journal event (`data` is its JSON object), committed at once."""
        self._write(
            "INSERT INTO events (run_id, seq, ts, kind, step_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, seq, ts, kind, step_id, data),
        )

    def append_batch(self, run_id: str, first_seq: int, ts: float, data: str) -> None:
        """Append consecutive events as one row: `data` is a JSON array of at most
        MAX_BATCH event objects numbered from `first_seq`. One insert and one encoding
        call for a whole scheduler tick instead of one per event."""
        self._write(
            "INSERT INTO events (run_id, seq, ts, kind, step_id, data) VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, first_seq, ts, BATCH_KIND, None, data),
        )

    def write_rows(
        self,
        run_id: str,
        rows: Sequence[tuple[int, float, str, str | None, str]],
        deleted: Sequence[int] = (),
    ) -> None:
        """Append journal rows (seq, ts, kind, step id, data) and delete the rows at seqs
        `deleted` (the oldest output lines of a capped step), in one transaction."""
        insert = (
            "INSERT INTO events (run_id, seq, ts, kind, step_id, data) VALUES (?, ?, ?, ?, ?, ?)"
        )
        if len(rows) == 1 and not deleted:  # most flushes: one statement, one commit
            with self._writing():
                self.conn.execute(insert, (run_id, *rows[0]))
            return
        with self._writing():
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                self.conn.executemany(insert, [(run_id, *row) for row in rows])
                self.conn.executemany(
                    "DELETE FROM events WHERE run_id = ? AND seq = ?",
                    [(run_id, seq) for seq in deleted],
                )
            except BaseException:
                self.conn.rollback()
                raise
            self.conn.commit()

    def events_of_kind(self, run_id: str, kind: str) -> list[dict[str, Any]]:
        """A run's events of `kind` that were written as rows of their own (never in a
        batch row): found without reading the other rows' data."""
        what = f"run {run_id}'s journal"
        with self._reading(what):
            rows = self.conn.execute(
                "SELECT data FROM events WHERE run_id = ? AND kind = ? ORDER BY seq",
                (run_id, kind),
            ).fetchall()
        return _events_of([self._decode(data, what) for (data,) in rows], what, self)

    def events(self, run_id: str, after: int = 0) -> Iterator[tuple[int, dict[str, Any]]]:
        """(seq, event) of a run after `after`, in order; batch rows are unpacked."""
        with self._reading(f"the journal of run {run_id}"):
            rows = self.conn.execute(
                "SELECT seq, kind, data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                (run_id, after - MAX_BATCH),
            )
            for seq, kind, data in rows:
                what = f"run {run_id}'s journal row {seq}"
                if kind == BATCH_KIND:
                    for offset, event in enumerate(
                        _events_of(self._decode(data, what), what, self)
                    ):
                        if seq + offset > after:
                            yield int(seq) + offset, event
                elif seq > after:
                    yield int(seq), _events_of([self._decode(data, what)], what, self)[0]

    # -- approvals ----------------------------------------------------------
    def record_approval(
        self, run_id: str, step_id: str, approved: bool, by: str, comment: str
    ) -> None:
        self._write(
            "INSERT OR REPLACE INTO approvals (run_id, step_id, approved, by, comment, ts)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (run_id, step_id, int(approved), by, comment, time.time()),
        )

    def approvals(self, run_id: str) -> dict[str, tuple[bool, str, str]]:
        with self._reading(f"the approvals of run {run_id}"):
            return {
                step: (bool(ok), by, comment)
                for step, ok, by, comment in self.conn.execute(
                    "SELECT step_id, approved, by, comment FROM approvals WHERE run_id = ?",
                    (run_id,),
                )
            }

    def _row(self, row: tuple[Any, ...]) -> RunRow:
        what = f"the index row of run {row[0]}"
        return RunRow(
            run_id=row[0],
            workflow_id=row[1],
            workflow_name=row[2],
            file=row[3],
            sha256=row[4],
            status=row[5],
            started_at=row[6],
            ended_at=row[7],
            inputs=self._decode(row[8], what),
            options=self._decode(row[9], what),
            report_path=row[10],
            error=row[11],
        )


def _private_file(path: Path) -> None:
    # SQLite gives the -wal and -shm files the database file's mode: create it 0600.
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


# What makes each path too open: the database files when anyone else may read them
# (outputs in plain text), the directory when anyone else may write in it (and so swap
# the database); a readable directory of private files is the user's own choice.
_TOO_OPEN: Final = {"file": 0o077, "directory": 0o022}


def make_private(directory: Path, db: Path) -> None:
    """Take group and other access away from a state directory and its database files
    that this user owns (left 0777 or 0644 by an older wfctl or by hand); paths that
    belong to someone else are theirs to set."""
    paths = [(directory, "directory")] + [
        (db.with_name(db.name + suffix), "file") for suffix in ("", "-wal", "-shm")
    ]
    for path, kind in paths:
        with contextlib.suppress(OSError):
            st = path.stat()
            if st.st_uid == os.geteuid() and st.st_mode & _TOO_OPEN[kind]:
                path.chmod(stat.S_IMODE(st.st_mode) & 0o700)


def _events_of(decoded: Any, what: str, store: StateStore) -> list[dict[str, Any]]:
    """A journal row's events (JSON objects), or a StoreError naming the row."""
    if isinstance(decoded, list) and all(isinstance(e, dict) for e in decoded):
        return decoded
    raise StoreError(f"{store.path}: {what} is damaged (not journal events)")


def open_store(directory: Path, create: bool = True) -> StateStore:
    """The state store, or a StoreError with a message fit for the terminal."""
    try:
        return StateStore(directory, create=create)
    except OSError as exc:
        raise StoreError(f"cannot open state in {directory}: {exc.strerror}") from None


class RunNotFound(Exception):
    """No such run in the state directory (or no state there): a usage error."""


@contextmanager
def opened_run(directory: Path, run_id: str) -> Iterator[tuple[StateStore, RunRow]]:
    """The store and a run's row (a unique id prefix works); closes the store after."""
    try:
        store = open_store(directory, create=False)
    except StoreError as exc:
        raise RunNotFound(str(exc)) from None
    try:
        row = store.run(run_id)
        if row is None:
            raise RunNotFound(f"no run '{run_id}' in {directory} (see: wfctl runs)")
        yield store, row
    finally:
        store.close()
