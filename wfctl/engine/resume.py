"""Resume: take over the records of a run replayed from its journal.

Completed steps keep their outputs; steps that were in flight, or cancelled, run again
(at-least-once); every attempt stays recorded.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from wfctl.engine.steps.conditional import mark_branches
from wfctl.model import StepStatus, StepType
from wfctl.model.scopes import is_scoped, parent_of, template_of
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["restore"]

_IN_FLIGHT = (StepStatus.RUNNING, StepStatus.RETRYING)
# Skips that said "not now", not "never": such steps may run in the resumed run.
_PROVISIONAL_SKIPS = ("run failed", "not started:")


def restore(ex: Executor, replayed: Any) -> None:
    """Take over a journaled run (`replayed`: a :class:`wfctl.state.journal.Replayed`)."""
    ex.vars.update(replayed.vars)
    ex.completion_order = list(replayed.completion_order)
    for step_id, old in replayed.records.items():
        if step_id in ex.records:
            ex.records[step_id] = old
            _restore_one(ex, step_id, old)
        elif is_scoped(step_id) and template_of(step_id) in ex.steps:
            _restore_iteration(ex, step_id, old)


def _restore_one(ex: Executor, step_id: str, old: StepRecord) -> None:
    step = ex.workflow.all_steps[step_id]
    if old.status is StepStatus.COMPLETED:
        if step.step_type is StepType.CONDITIONAL and isinstance(old.output, dict):
            mark_branches(ex, step, old.output.get("branch"))
    elif _interrupted(old):
        _run_again(old)
    elif _skipped_for_now(old):
        old.status = StepStatus.PENDING
        old.reason = None
    elif old.status is StepStatus.FAILED and step_id not in ex.workflow.handlers:
        # (A failed handler or react tool step does not fail the run by itself.)
        ex.mark_fatal(step, old)


def _restore_iteration(ex: Executor, step_id: str, old: StepRecord) -> None:
    """An iteration of a group loop or a step in one: kept, so that the loop runs only
    what had not completed; its loop step decides whether the run failed."""
    ex.records[step_id] = old
    # Until its iteration runs again, a stand-in for lookups by id (a rollback of it).
    template = ex.steps[template_of(step_id)]
    ex.steps.setdefault(step_id, replace(template, step_id=step_id, container=parent_of(step_id)))
    if _interrupted(old) or _skipped_for_now(old):
        _run_again(old)
        old.reason = None


def _interrupted(old: StepRecord) -> bool:
    """In flight when the process stopped, or cancelled with it."""
    return old.status in _IN_FLIGHT or (
        old.status is StepStatus.FAILED and old.error_kind == "cancelled"
    )


def _skipped_for_now(old: StepRecord) -> bool:
    return old.status is StepStatus.SKIPPED and (old.reason or "").startswith(_PROVISIONAL_SKIPS)


def _run_again(old: StepRecord) -> None:
    for attempt in old.attempts:
        if attempt.ended_at is None:
            attempt.ended_at = old.ended_at or attempt.started_at
            attempt.error = "interrupted: the process running it stopped"
            attempt.error_kind = "cancelled"
    old.status = StepStatus.PENDING
    old.error = old.error_kind = None
    old.ended_at = None
