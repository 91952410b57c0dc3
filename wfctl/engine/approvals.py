"""Human approval: the decision a person (or a timeout) gives, and what the engine asks."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["ApprovalDecision", "ApprovalHandler", "ApprovalRequest"]


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
