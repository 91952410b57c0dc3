"""Mutable run-time records of steps, the immutable result of a run, and approval
decisions (data the engine, the state, the views and the CLI share)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from wfctl.model import StepStatus, WorkflowState


@dataclass(slots=True)
class Attempt:
    number: int
    started_at: float
    ended_at: float | None = None
    error: str | None = None
    error_kind: str | None = None
    node: str | None = None  # where it ran (the Ray node id; None: this process)
    worker: str | None = None  # "ip pid worker-id" of the Ray worker


@dataclass
class StepRecord:
    """What happened to one step; the scheduler is its only writer."""

    step_id: str
    status: StepStatus = StepStatus.PENDING
    attempts: list[Attempt] = field(default_factory=list)
    output: Any = None
    error: str | None = None
    error_kind: str | None = None
    reason: str | None = None
    started_at: float | None = None
    ended_at: float | None = None
    slot_wait: float = 0.0
    agent: str | None = None
    agent_reason: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    handler_runs: list[dict[str, Any]] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.started_at is None or self.ended_at is None:
            return None
        return self.ended_at - self.started_at

    def view(self) -> dict[str, Any]:
        """What expressions see as `steps.<id>`."""
        return {
            "output": self.output,
            "status": self.status.value,
            "attempts": len(self.attempts),
            "error": self.error,
        }


@dataclass(frozen=True)
class RunResult:
    """The outcome of `run_workflow`."""

    run_id: str
    workflow_id: str
    status: WorkflowState
    steps: dict[str, StepRecord]
    vars: dict[str, Any]
    started_at: float
    ended_at: float
    error: str | None = None
    waiting_for: tuple[str, ...] = ()
    rollbacks: tuple[dict[str, Any], ...] = ()

    @property
    def duration(self) -> float:
        return self.ended_at - self.started_at

    @property
    def exit_code(self) -> int:
        """The documented exit code for this outcome."""
        return {
            WorkflowState.COMPLETED: 0,
            WorkflowState.FAILED: 1,
            WorkflowState.TIMEOUT: 3,
            WorkflowState.WAITING_APPROVAL: 4,
            WorkflowState.CANCELLED: 130,
            WorkflowState.RUNNING: 70,
        }[self.status]


@dataclass(frozen=True)
class ApprovalDecision:
    """Approve or reject a waiting `human_approval` step."""

    approved: bool
    by: str = "unknown"
    comment: str = ""


@dataclass(frozen=True)
class ApprovalRequest:
    """What an approval handler is asked about one waiting step."""

    run_id: str
    step_id: str
    message: str
    approvers: tuple[str, ...]
    timeout: float | None
    on_timeout: str


#: Asked when a run reaches an approval step; None leaves the step waiting.
ApprovalHandler = Callable[[ApprovalRequest], Awaitable[ApprovalDecision | None]]
