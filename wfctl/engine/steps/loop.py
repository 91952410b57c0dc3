"""The loop step (`loop_condition` / `until`), the for-each step (`for_each`) and the matrix
(`matrix`, a for-each over its cells, :mod:`wfctl.model.matrix`): the step's body run once
per iteration (in turn) or per item or cell (up to `loop_concurrency` / `max_parallel`).

The body is the step's own action (single-action form: every round is an attempt on the
loop step's record) or a nested graph of steps (group form, :mod:`.iterations`: every
iteration has records of its own). Every round yields to the event loop, so a loop of
pure actions still honours its `timeout`, the workflow timeout and signals; the step's
`timeout` bounds the whole loop.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, cast

import anyio
import anyio.lowlevel

from wfctl.compile.plan import Container
from wfctl.engine.attempts import StepFailed
from wfctl.engine.steps.iterations import Items, run_iteration
from wfctl.expressions import ExpressionError, truthy
from wfctl.model import ForEachBody, LoopBody, Step, StepStatus
from wfctl.model.scopes import iteration_id, template_of
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Iterate the body; output every iteration's output and the last one."""
    body = ex.plan.bodies[template_of(step.step_id)]
    if step.body_steps:
        # A group loop holds no slot: it starts now, its body's steps run as they may.
        record.started_at = record.started_at or time.time()
        record.status = StepStatus.RUNNING
        ex.emit_state(step.step_id)
    if step.timeout is None:
        return await _iterate(ex, step, body)
    try:
        with anyio.fail_after(step.timeout):
            return await _iterate(ex, step, body)
    except TimeoutError:
        raise StepFailed(f"loop timed out after {step.timeout:g}s", "timeout") from None


async def _iterate(ex: Executor, step: Step, body: Container) -> Any:
    # Hook: an engine that runs a single-action loop's rounds itself (--engine langgraph:
    # the loop's subgraph, with its back-edge) has `run_loop` on its scheduler; group
    # bodies always run through the scheduler's iterations.
    own = getattr(ex.scheduler, "run_loop", None)
    if own is not None and not step.body_steps:
        return cast(Any, await own(step, body))
    match step.body:
        case ForEachBody() as each:
            return await _for_each(ex, step, each, body)
        case LoopBody() as loop:
            return await _while(ex, step, loop, body)
    raise TypeError(f"not a loop step: {step.step_id}")  # pragma: no cover - dispatch table


async def _round(
    ex: Executor, step: Step, body: Container, frame: dict[str, Any], matrix: bool = False
) -> Any:
    """One iteration, item or cell: the group's graph, or the loop step's own action."""
    # Pure actions never await: without this a tight loop blocks every deadline.
    await anyio.lowlevel.checkpoint()
    if step.body_steps:
        return await run_iteration(ex, step, body, frame, matrix)
    return await ex.scheduler.run_body(body, frame, {"matrix": frame["item"]} if matrix else None)


def _items(ex: Executor, step: Step, each: ForEachBody) -> list[Any] | tuple[Any, ...]:
    raw = each.items
    items = list(raw) if isinstance(raw, tuple) else raw.evaluate(ex.context(step)) if raw else []
    if not isinstance(items, list | tuple):
        raise StepFailed(f"for_each must give a list (got {type(items).__name__})", "validation")
    if len(items) > each.max_iterations:
        raise StepFailed(
            f"for_each has {len(items)} items, more than loop_max_iterations "
            f"({each.max_iterations})",
            "validation",
        )
    return items


async def _for_each(ex: Executor, step: Step, each: ForEachBody, body: Container) -> Any:
    items = _items(ex, step, each)
    state = Items(ex, step, items, each.fail_fast, each.tolerance(len(items)))

    async def one(index: int, item: Any) -> None:
        try:
            frame = {"index": index, "item": item}
            state.results[index] = await _round(ex, step, body, frame, each.matrix)
            state.done.add(index)
        except StepFailed as exc:
            state.failed(index, exc)
        except ExpressionError as exc:
            state.failed(index, StepFailed(exc.message, "validation"))

    async def worker() -> None:
        # A pool of `loop_concurrency` workers, not a task per item: a long list costs
        # no more than a short one, and the next item starts the moment one ends.
        for index, item in state.next_items():
            await one(index, item)
            if each.delay and not state.stopped:
                await anyio.sleep(each.delay)

    async with anyio.create_task_group() as tg:
        state.scope = tg.cancel_scope
        for _ in range(min(body.limit or 1, len(state.items)) or 1):
            tg.start_soon(worker)
    return state.outcome()


async def _while(ex: Executor, step: Step, loop: LoopBody, body: Container) -> Any:
    outputs: list[Any] = []
    previous: Any = None
    index = 0
    while True:
        output = await _round(ex, step, body, {"index": index, "previous": previous})
        outputs.append(output)
        if not _again(ex, step, loop, index, output, previous):
            break
        previous = output
        index += 1
        if loop.delay:
            await anyio.sleep(loop.delay)
    return {"iterations": len(outputs), "outputs": outputs, "last": outputs[-1]}


def _again(
    ex: Executor, step: Step, loop: LoopBody, index: int, output: Any, previous: Any
) -> bool:
    """Run another iteration? (Raises once loop_max_iterations is used up.)"""
    if loop.condition is None and loop.until is None:
        return False
    frame = {"index": index, "output": output, "previous": previous}
    extra: dict[str, Any] = {"loop": frame}
    scope = ex.scopes.get(iteration_id(step.step_id, index)) if step.body_steps else None
    if scope is not None:
        from wfctl.engine.scopes import ScopedStepsView

        # The group form's conditions see the iteration's own steps.
        extra["steps"] = ScopedStepsView(ex.records, scope.names)
    ctx = ex.context(step, **extra)
    if loop.condition is not None and not truthy(loop.condition.evaluate(ctx)):
        return False
    if loop.until is not None and truthy(loop.until.evaluate(ctx)):
        return False
    if index + 1 >= loop.max_iterations:
        raise StepFailed(
            f"loop did not finish: loop_condition still true after "
            f"{loop.max_iterations} iterations",
            "error",
        )
    return True
