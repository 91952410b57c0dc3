"""The action step: one action call under the step's policy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wfctl.engine.step_call import invoke
from wfctl.model import Step
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Run the step's action (the slot stays with it until its dependents are queued)."""
    return await invoke(ex, step, record, ex.step_input(step), {}, hold=True)
