"""The model's enumerations: step types, statuses, trigger rules, backoff."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["Backoff", "StepStatus", "StepType", "TriggerRule", "WorkflowState"]


class StepType(StrEnum):
    ACTION = "action"
    PARALLEL = "parallel"
    CONDITIONAL = "conditional"
    LOOP = "loop"
    HUMAN_APPROVAL = "human_approval"
    REACT = "react"
    WORKFLOW = "workflow"  # a sub-workflow call (`uses:`)


class StepStatus(StrEnum):
    PENDING = "pending"
    WAITING = "waiting"
    RUNNING = "running"
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"

    @property
    def terminal(self) -> bool:
        return self in _TERMINAL  # asked several times per step: no tuple per call


_TERMINAL: Final = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED})


class WorkflowState(StrEnum):
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    WAITING_APPROVAL = "waiting_approval"


class TriggerRule(StrEnum):
    ALL_SUCCESS = "all_success"
    ALL_DONE = "all_done"
    NONE_FAILED = "none_failed"
    ONE_SUCCESS = "one_success"


class Backoff(StrEnum):
    FIXED = "fixed"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"
