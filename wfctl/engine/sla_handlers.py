"""`on_sla_breach`: the workflow's breach handlers, run once at the end of a run that
missed an SLA target.

The engine does not judge SLAs itself (that is the metrics collector's, downstream of the
event stream): whoever runs the workflow passes `RunOptions.sla_breaches`, asked here at
the end of the run for the breaches so far. Nothing here runs unless the workflow names
breach handlers and the caller can say what was breached.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import anyio

from wfctl.model import WorkflowState

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor
    from wfctl.records import StepRecord

__all__ = ["HANDLER_TIME_LIMIT", "BreachSource", "run_breach_handlers"]

# The run's end states after which the run is over and its SLA can be judged; a run that
# waits for approval goes on later, a cancelled one was stopped by someone who knows.
_JUDGED = frozenset({WorkflowState.COMPLETED, WorkflowState.FAILED, WorkflowState.TIMEOUT})
HANDLER_TIME_LIMIT = 300.0  # seconds for all breach handlers: a hung webhook ends too
FOR_STEP = "sla_targets"  # what a breach handler's run is "for" in the report

BreachSource = Callable[[Mapping[str, "StepRecord"]], Sequence[Mapping[str, Any]]]


async def run_breach_handlers(
    ex: Executor, status: WorkflowState, breaches: BreachSource | None
) -> None:
    """Run the workflow's `on_sla_breach` handlers if the ended run missed a target."""
    if not ex.workflow.on_sla_breach or breaches is None or status not in _JUDGED:
        return
    found = [dict(b) for b in breaches(ex.records)]
    if not found:
        return
    from wfctl.engine.handlers import run_handler

    error = {
        "kind": "sla_breach",
        "message": found[0].get("message"),
        "step_id": found[0].get("step_id"),
        "breaches": found,
    }
    # Shielded: a timed-out run is being stopped, and its alert must still go out.
    with anyio.CancelScope(shield=True), anyio.move_on_after(HANDLER_TIME_LIMIT):
        for handler in ex.workflow.on_sla_breach:
            await run_handler(ex, handler, FOR_STEP, "sla_breach", error)
