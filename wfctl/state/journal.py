"""The run journal: every event appended to the state store before anyone shows it,
and the replay that rebuilds step records from it when a run is resumed or shown."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from wfctl.events import Event, RunFinished, StepStateChanged
from wfctl.model import StepStatus
from wfctl.records import Attempt, StepRecord
from wfctl.state.store import MAX_BATCH, RunRow, StateStore, StoreError

# One encoder for every event: json.dumps(default=...) builds a new one per call.
_encode = json.JSONEncoder(default=str, separators=(",", ":")).encode


class Journal:
    """Event subscriber: subscribe it first, so an event is journaled before it is shown.

    Writes are grouped: the events of one event-loop tick are written as one row and
    committed at its end (per event, a commit costs ~10x an insert and an insert ~3x the
    encoding), except that a step's `running` event is committed at once, with everything
    before it, because the step's side effects follow it. So a killed process has done at
    most one unjournaled attempt per in-flight step; what it only showed in its last tick
    may be missing from the journal. `pure_steps` (steps whose action changes nothing
    outside the run) need no such barrier.
    """

    def __init__(
        self, store: StateStore, run_id: str, pure_steps: frozenset[str] = frozenset()
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.seq = store.next_seq(run_id)  # of the first event not yet written
        self.pure_steps = pure_steps
        self._pending: list[Event] = []

    def __call__(self, event: Event) -> None:
        self._pending.append(event)
        if (
            isinstance(event, StepStateChanged)
            and event.status is StepStatus.RUNNING
            and event.step_id not in self.pure_steps
        ) or isinstance(event, RunFinished):
            self.flush()
        elif len(self._pending) >= MAX_BATCH:
            self.flush()  # a long synchronous stretch (a chain of no-ops) still writes often
        elif len(self._pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no event loop: nothing to group with
                self.flush()

    def flush(self) -> None:
        """Write and commit the events not yet written."""
        pending, self._pending = self._pending, []
        if not pending:
            return
        first = pending[0]
        if len(pending) == 1:
            self.store.append_event(
                self.run_id,
                self.seq,
                first.ts,
                first.kind,
                getattr(first, "step_id", None),
                _encode(first.to_json()),
            )
        else:
            data = _encode([e.to_json() for e in pending])
            self.store.append_batch(self.run_id, self.seq, first.ts, data)
        self.seq += len(pending)


class RunLock:
    """A per-run `flock`: one process owns a run; the kernel frees it if the owner dies."""

    def __init__(self, directory: Path, run_id: str) -> None:
        locks = directory / "locks"
        locks.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = locks / f"{run_id}.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> bool:
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.close()
            return False
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return True

    def held_elsewhere(self) -> bool:
        """True if another live process owns the run (used by `wfctl runs` / `show`)."""
        if not self.path.exists():
            return False
        with self.path.open("a+") as fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
            return False

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


@dataclass
class Replayed:
    """Step records and variables rebuilt from a journal."""

    records: dict[str, StepRecord]
    vars: dict[str, Any]
    completion_order: list[str] = field(default_factory=list)
    finished: dict[str, Any] | None = None  # the last run_finished event, if any
    started: dict[str, Any] | None = None
    active_seconds: float = 0.0  # time earlier processes spent running it (not waiting)


def replay(step_ids: Iterable[str], events: Iterable[dict[str, Any]]) -> Replayed:
    """Fold journal events into records (every attempt kept) and vars."""
    records = {s: StepRecord(s) for s in step_ids}
    out = Replayed(records=records, vars={})
    segment_start: float | None = None
    last_ts = 0.0
    for e in events:
        kind = e.get("kind")
        last_ts = float(e.get("ts", last_ts))
        if kind == "run_started":
            out.started = out.started or e
            segment_start = last_ts
        elif kind == "vars":
            out.vars.update(e.get("values") or {})
        elif kind == "run_finished":
            out.finished = e
            if segment_start is not None:
                out.active_seconds += last_ts - segment_start
                segment_start = None
        elif kind == "step_state":
            rec = records.get(e["step_id"])
            if rec is None:
                continue
            _apply_state(rec, e, out)
    if segment_start is not None:  # the last process died mid-run
        out.active_seconds += last_ts - segment_start
    return out


def _apply_state(rec: StepRecord, e: dict[str, Any], out: Replayed) -> None:
    status = StepStatus(e["status"])
    ts = float(e["ts"])
    attempt_no = int(e.get("attempt") or 0)
    rec.status = status
    rec.error = e.get("error")
    rec.error_kind = e.get("error_kind")
    rec.reason = e.get("reason")
    rec.agent = e.get("agent") or rec.agent
    rec.agent_reason = e.get("agent_reason") or rec.agent_reason
    if status in (StepStatus.RUNNING, StepStatus.WAITING):
        # WAITING too: an approval's timeout counts from when the wait began.
        rec.started_at = rec.started_at or ts
        if attempt_no and (not rec.attempts or rec.attempts[-1].number < attempt_no):
            rec.attempts.append(Attempt(number=attempt_no, started_at=ts))
    elif (
        status in (StepStatus.RETRYING, StepStatus.FAILED, StepStatus.COMPLETED)
        and rec.attempts
        and rec.attempts[-1].ended_at is None
    ):
        rec.attempts[-1].ended_at = ts
        if status is not StepStatus.COMPLETED:
            rec.attempts[-1].error = rec.error
            rec.attempts[-1].error_kind = rec.error_kind
    if status.terminal:
        rec.ended_at = ts
        if rec.started_at is None and e.get("duration") is not None:
            rec.started_at = ts - float(e["duration"])
    if status is StepStatus.COMPLETED:
        rec.output = e.get("output")
        if rec.step_id in out.completion_order:
            out.completion_order.remove(rec.step_id)
        out.completion_order.append(rec.step_id)


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
