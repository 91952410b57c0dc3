"""The journal read back: step records (every attempt) and variables of an earlier run,
for resuming it and for showing it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from wfctl.model import StepStatus
from wfctl.model.scopes import is_scoped
from wfctl.records import Attempt, StepRecord

# Statuses that start an attempt. WAITING too: an approval's timeout counts from when
# the wait began.
_STARTS = frozenset({StepStatus.RUNNING, StepStatus.WAITING})
_ENDS_ATTEMPT = frozenset({StepStatus.RETRYING, StepStatus.FAILED, StepStatus.COMPLETED})


@dataclass
class Replayed:
    """Step records and variables rebuilt from a journal."""

    records: dict[str, StepRecord]
    vars: dict[str, Any]
    completion_order: list[str] = field(default_factory=list)
    finished: dict[str, Any] | None = None  # the last run_finished event, if any
    started: dict[str, Any] | None = None
    active_seconds: float = 0.0  # time earlier processes spent running it (not waiting)


@dataclass
class _Fold:
    """The state of one replay while it folds events."""

    out: Replayed
    # Insertion-ordered and O(1) to move a step to the end (a list's remove() is linear:
    # quadratic over a 40k-step journal).
    order: dict[str, None] = field(default_factory=dict)
    segment_start: float | None = None  # when the current process's run_started was
    last_ts: float = 0.0

    def run_started(self, e: dict[str, Any]) -> None:
        self.out.started = self.out.started or e
        self.segment_start = self.last_ts

    def vars(self, e: dict[str, Any]) -> None:
        self.out.vars.update(e.get("values") or {})

    def run_finished(self, e: dict[str, Any]) -> None:
        self.out.finished = e
        self.end_segment()

    def step_state(self, e: dict[str, Any]) -> None:
        rec = self.out.records.get(e["step_id"])
        if rec is None and is_scoped(e["step_id"]):
            # An iteration of a group loop, or a step in one: made as the run went.
            rec = self.out.records[e["step_id"]] = StepRecord(e["step_id"])
        if rec is not None:
            _apply_state(rec, e, self.order)

    def end_segment(self) -> None:
        if self.segment_start is not None:
            self.out.active_seconds += self.last_ts - self.segment_start
            self.segment_start = None


def _placed(fold: _Fold, e: dict[str, Any]) -> None:
    """Where an attempt ran (a Ray node), onto that attempt."""
    rec = fold.out.records.get(e.get("step_id", ""))
    for attempt in rec.attempts if rec is not None else ():
        if attempt.number == e.get("attempt"):
            attempt.node, attempt.worker = e.get("node"), e.get("worker")


_HANDLERS = {
    "attempt_placed": _placed,
    "run_started": _Fold.run_started,
    "vars": _Fold.vars,
    "run_finished": _Fold.run_finished,
    "step_state": _Fold.step_state,
}


def replay(step_ids: Iterable[str], events: Iterable[dict[str, Any]]) -> Replayed:
    """Fold journal events into records (every attempt kept) and vars."""
    fold = _Fold(Replayed(records={s: StepRecord(s) for s in step_ids}, vars={}))
    for e in events:
        fold.last_ts = float(e.get("ts", fold.last_ts))
        handler = _HANDLERS.get(e.get("kind", ""))
        if handler is not None:
            handler(fold, e)
    fold.end_segment()  # the last process died mid-run
    fold.out.completion_order = list(fold.order)
    return fold.out


def _apply_state(rec: StepRecord, e: dict[str, Any], order: dict[str, None]) -> None:
    status = StepStatus(e["status"])
    ts = float(e["ts"])
    rec.status = status
    rec.error = e.get("error")
    rec.error_kind = e.get("error_kind")
    rec.reason = e.get("reason")
    rec.agent = e.get("agent") or rec.agent
    rec.agent_reason = e.get("agent_reason") or rec.agent_reason
    if status in _STARTS:
        _start_attempt(rec, ts, int(e.get("attempt") or 0))
    elif status in _ENDS_ATTEMPT:
        _end_attempt(rec, ts, failed=status is not StepStatus.COMPLETED)
    if status.terminal:
        rec.ended_at = ts
        if rec.started_at is None and e.get("duration") is not None:
            rec.started_at = ts - float(e["duration"])
    if status is StepStatus.COMPLETED:
        rec.output = e.get("output")
        order.pop(rec.step_id, None)
        order[rec.step_id] = None


def _start_attempt(rec: StepRecord, ts: float, number: int) -> None:
    rec.started_at = rec.started_at or ts
    if number and (not rec.attempts or rec.attempts[-1].number < number):
        rec.attempts.append(Attempt(number=number, started_at=ts))


def _end_attempt(rec: StepRecord, ts: float, *, failed: bool) -> None:
    if not rec.attempts or rec.attempts[-1].ended_at is not None:
        return
    last = rec.attempts[-1]
    last.ended_at = ts
    if failed:
        last.error = rec.error
        last.error_kind = rec.error_kind
