"""What the live table knows of each step, and which rows fit on the screen."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from rich.text import Text

from wfctl.model import StepStatus
from wfctl.view.rows import RowDict

_ACTIVE = frozenset(
    {StepStatus.RUNNING, StepStatus.RETRYING, StepStatus.WAITING, StepStatus.FAILED}
)
_DONE = frozenset({StepStatus.COMPLETED, StepStatus.SKIPPED})
_TIMED = frozenset({StepStatus.RUNNING, StepStatus.RETRYING})
_ERROR_DETAIL = frozenset({StepStatus.FAILED, StepStatus.RETRYING})
_REASON_DETAIL = frozenset({StepStatus.SKIPPED, StepStatus.WAITING})


class Row:
    """What the table knows of one step; written by the event thread, read by the renderer."""

    __slots__ = (
        "agent",
        "attempt",
        "depth",
        "detail_for_idle",
        "duration",
        "error",
        "finished_seq",
        "idle_handler",
        "index",
        "iteration",
        "last_line",
        "max_attempts",
        "next_attempt_at",
        "notes",
        "reason",
        "started_at",
        "status",
        "step_id",
    )

    def __init__(self, step_id: str, index: int, depth: int, max_attempts: int) -> None:
        self.step_id = step_id
        self.index = index
        self.depth = depth
        self.status = StepStatus.PENDING
        self.attempt = 0
        self.iteration: int | None = None
        self.max_attempts = max_attempts
        self.started_at: float | None = None
        self.duration: float | None = None
        self.next_attempt_at: float | None = None
        self.last_line: str | None = None
        self.error: str | None = None
        self.reason: str | None = None
        self.agent: str | None = None
        self.notes: list[str] = []
        self.finished_seq = 0
        # Handler steps run only on failure or rollback: until they do, they are not part
        # of the run's progress (a successful run would otherwise never reach 100%).
        self.idle_handler = False
        self.detail_for_idle: str | None = None

    def _duration(self, now: float) -> float | None:
        if self.started_at is not None and self.status in _TIMED:
            return now - self.started_at
        return self.duration

    def _detail(self) -> str | None:
        status = self.status
        if status in _ERROR_DETAIL:
            return self.error
        if status in _REASON_DETAIL:
            return self.reason
        if status is StepStatus.PENDING:
            return self.detail_for_idle if self.idle_handler else None
        if self.agent and status is StepStatus.RUNNING and not self.last_line:
            return f"on agent {self.agent}"
        return self.last_line

    def as_dict(self, now: float) -> RowDict:
        retry_in = None
        if self.status is StepStatus.RETRYING and self.next_attempt_at is not None:
            retry_in = max(0.0, self.next_attempt_at - now)
        return {
            "step_id": self.step_id,
            "status": self.status.value,
            "depth": self.depth,
            "attempt": self.attempt,
            "iteration": self.iteration,
            "max_attempts": self.max_attempts,
            "duration": self._duration(now),
            "retry_in": retry_in,
            "detail": self._detail(),
            "notes": list(self.notes),
        }


Selection = tuple[list[Row], Text | None, Text | None]


def _overflow(rows: Sequence[Row], active: list[Row], budget: int) -> Selection:
    """Too many active rows to show at all: keep what fits and say how many more there are."""
    keep = max(0, budget - 2)
    more = Text(f"… {len(active) - keep} more running/failed", style="bold", end="\n")
    if len(rows) == len(active):
        return active[:keep], None, more
    line = _hidden_line(_done(rows), _pending(rows), hidden_pending=True)
    return active[:keep], line, more


def _pending(rows: Sequence[Row]) -> list[Row]:
    return [r for r in rows if r.status is StepStatus.PENDING and not r.idle_handler]


def _done(rows: Sequence[Row]) -> list[Row]:
    """Finished rows, and handlers that never ran: both can fold into one line."""
    return [r for r in rows if r.status in _DONE or _is_idle(r)]


def _take_pending(pending: list[Row], room: int) -> tuple[list[Row], int]:
    """The pending rows that fit (a line is kept to count the others), and the room left."""
    if len(pending) <= room:
        return pending, room - len(pending)
    return pending[: max(0, room - 1)], 0


def _take_done(done: list[Row], room: int) -> tuple[list[Row], list[Row]]:
    """The most recently finished rows that fit in `room`, and the rest."""
    if done and len(done) <= room + 1:
        return done, []
    shown = heapq.nlargest(room, done, key=lambda r: r.finished_seq) if room else []
    kept = {id(r) for r in shown}
    return shown, [r for r in done if id(r) not in kept]


def select_rows(rows: Sequence[Row], budget: int) -> Selection:
    """Which rows fit in `budget` lines: (rows in order, hidden-finished line, hidden-pending line).

    Running, retrying, waiting and failed rows always show (unless they alone overflow);
    pending rows come next, in workflow order; finished rows take what space is left, the
    most recently finished first, and the rest fold into one summary line.
    """
    if len(rows) <= budget:
        return list(rows), None, None
    active = [r for r in rows if r.status in _ACTIVE]
    if len(active) > budget - 2:
        return _overflow(rows, active, budget)
    pending = _pending(rows)
    done = _done(rows)
    room = budget - len(active) - (1 if done else 0)
    shown_pending, room = _take_pending(pending, room)
    shown_done, hidden_done = _take_done(done, room)
    chosen = {id(r) for r in (*active, *shown_pending, *shown_done)}
    shown = [r for r in rows if id(r) in chosen]
    return shown, *_fold_lines(hidden_done, len(pending) - len(shown_pending))


def _fold_lines(hidden_done: list[Row], hidden_pending: int) -> tuple[Text | None, Text | None]:
    """The lines that stand for the hidden finished rows and the hidden pending ones."""
    done_line = _hidden_line(hidden_done, [], hidden_pending=False) if hidden_done else None
    pending_line = (
        Text(f"… {hidden_pending} pending", style="dim", end="\n") if hidden_pending else None
    )
    return done_line, pending_line


def _is_idle(r: Row) -> bool:
    return r.idle_handler and r.status is StepStatus.PENDING


def _hidden_line(done: Sequence[Row], pending: Sequence[Row], *, hidden_pending: bool) -> Text:
    counts: dict[str, int] = {"completed": 0, "skipped": 0, "idle handlers": 0}
    for r in done:
        key = "idle handlers" if _is_idle(r) else r.status.value
        counts[key] = counts.get(key, 0) + 1
    if hidden_pending and pending:
        counts["pending"] = len(pending)
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    return Text(f"… {', '.join(parts)} hidden", style="dim", end="\n")
