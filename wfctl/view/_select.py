"""What the live table knows of each step, and which rows fit on the screen."""

from __future__ import annotations

from collections.abc import Mapping

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
        if status in _REASON_DETAIL or (status is StepStatus.COMPLETED and self.reason):
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


def overflow_lines(active: list[Row], budget: int, counts: Text | None) -> Selection:
    """Too many active rows to show at all: keep what fits and say how many more there are
    (`counts`: the line for everything else, None when every row is active)."""
    keep = max(0, budget - 2)
    more = Text(f"… {len(active) - keep} more running/failed", style="bold", end="\n")
    return active[:keep], counts, more


def fold_lines(
    hidden_done: Mapping[str, int], hidden_pending: int
) -> tuple[Text | None, Text | None]:
    """The lines that stand for the hidden finished rows (counted by kind) and the hidden
    pending ones."""
    done_line = hidden_line(hidden_done) if any(hidden_done.values()) else None
    pending_line = (
        Text(f"… {hidden_pending} pending", style="dim", end="\n") if hidden_pending else None
    )
    return done_line, pending_line


def hidden_line(counts: Mapping[str, int]) -> Text:
    """`… 120 completed, 3 skipped hidden`: what a folded line stands for."""
    parts = [f"{n} {what}" for what, n in counts.items() if n]
    return Text(f"… {', '.join(parts)} hidden", style="dim", end="\n")
