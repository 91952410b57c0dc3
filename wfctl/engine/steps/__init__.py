"""One module per step type; :data:`RUNNERS` dispatches a step to its type's runner.

A runner gets the executor, the step and its record; it returns the step's output (the
lifecycle completes the step with it), raises StepFailed, or leaves the record WAITING.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from wfctl.engine.steps import action, approval, conditional, loop, parallel, react, subworkflow
from wfctl.model import Step, StepType
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["RUNNERS", "SLOTTED", "Runner"]

Runner = Callable[["Executor", Step, StepRecord], Awaitable[Any]]

RUNNERS: dict[StepType, Runner] = {
    StepType.ACTION: action.run,
    StepType.PARALLEL: parallel.run,
    StepType.CONDITIONAL: conditional.run,
    StepType.LOOP: loop.run,
    StepType.HUMAN_APPROVAL: approval.run,
    StepType.REACT: react.run,
    StepType.WORKFLOW: subworkflow.run,
}

#: Step types whose work runs through actions, each call holding a concurrency slot.
SLOTTED = frozenset({StepType.ACTION, StepType.LOOP, StepType.REACT})
