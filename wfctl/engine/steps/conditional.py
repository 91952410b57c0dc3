"""The conditional step: choose the first branch whose `when` holds; the others' targets
are skipped (unless another branch chose them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wfctl.expressions import truthy
from wfctl.model import Branch, Step
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["mark_branches", "run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Evaluate the branches; output which one was taken."""
    ctx = ex.context(step)
    chosen_index: int | None = None
    for index, branch in enumerate(step.conditions):
        if branch.when is None or truthy(branch.when.evaluate(ctx)):
            chosen_index = index
            break
    chosen = mark_branches(ex, step, chosen_index, _label)
    return {
        "branch": chosen_index,
        "name": step.conditions[chosen_index].name if chosen_index is not None else None,
        "next_steps": sorted(chosen),
    }


def _label(step: Step, branch: Branch) -> str:
    label = branch.name or (branch.when.source if branch.when else "else")
    return f"branch not taken: '{label}' of '{step.step_id}'"


def _resumed_label(step: Step, branch: Branch) -> str:
    return f"branch not taken: '{step.step_id}'"


def mark_branches(ex: Executor, step: Step, chosen_index: Any, label: Any = None) -> set[str]:
    """Record the chosen branch's targets and why the others' are not taken."""
    name = label or _resumed_label
    chosen = (
        set(step.conditions[chosen_index].next_steps)
        if isinstance(chosen_index, int) and 0 <= chosen_index < len(step.conditions)
        else set()
    )
    ex.chosen.update(chosen)
    for index, branch in enumerate(step.conditions):
        if index == chosen_index:
            continue
        for target in branch.next_steps:
            if target not in chosen:
                ex.not_taken.setdefault(target, name(step, branch))
    return chosen
