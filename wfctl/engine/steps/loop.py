"""The loop step (`loop_condition`) and the for-each step (`for_each`): the step's body
container, run once per iteration (in turn) or per item (up to `loop_concurrency` at once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from wfctl.compile.plan import Container
from wfctl.engine.attempts import StepFailed
from wfctl.expressions import ExpressionError, truthy
from wfctl.model import ForEachBody, LoopBody, Step
from wfctl.records import StepRecord

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["run"]


async def run(ex: Executor, step: Step, record: StepRecord) -> Any:
    """Iterate the body; output every iteration's output and the last one."""
    body = ex.plan.bodies[step.step_id]
    # Hook: an engine that runs a loop's iterations itself (--engine langgraph: the
    # loop's subgraph, with its back-edge) has `run_loop` on its scheduler.
    own = getattr(ex.scheduler, "run_loop", None)
    if own is not None:
        return await own(step, body)
    match step.body:
        case ForEachBody() as each:
            return await _for_each(ex, step, each, body)
        case LoopBody() as loop:
            return await _while(ex, step, loop, body)
    raise TypeError(f"not a loop step: {step.step_id}")  # pragma: no cover - dispatch table


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
    results: list[Any] = [None] * len(items)
    limiter = anyio.CapacityLimiter(body.limit or 1)
    failures: list[tuple[int, StepFailed]] = []

    async def one(index: int, item: Any, scope: anyio.CancelScope) -> None:
        frame = {"index": index, "item": item}
        try:
            async with limiter:
                results[index] = await ex.scheduler.run_body(body, frame)
        except StepFailed as exc:
            # One item failing fails the step: stop the others, report this one.
            failures.append((index, exc))
            scope.cancel()
        except ExpressionError as exc:
            failures.append((index, StepFailed(exc.message, "validation")))
            scope.cancel()

    async with anyio.create_task_group() as tg:
        for index, item in enumerate(items):
            tg.start_soon(one, index, item, tg.cancel_scope)
    if failures:
        index, exc = min(failures, key=lambda f: f[0])
        raise StepFailed(f"item {index}: {exc}", exc.kind)
    return {"iterations": len(items), "outputs": results, "last": results[-1] if results else None}


async def _while(ex: Executor, step: Step, loop: LoopBody, body: Container) -> Any:
    outputs: list[Any] = []
    previous: Any = None
    index = 0
    while True:
        output = await ex.scheduler.run_body(body, {"index": index, "previous": previous})
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
    if loop.condition is None:
        return False
    ctx = ex.context(step, loop={"index": index, "output": output, "previous": previous})
    if not truthy(loop.condition.evaluate(ctx)):
        return False
    if index + 1 >= loop.max_iterations:
        raise StepFailed(
            f"loop did not finish: loop_condition still true after "
            f"{loop.max_iterations} iterations",
            "error",
        )
    return True
