"""Loop steps on `--engine langgraph`: the loop's subgraph drives the iterations.

The body's steps run through the same action call as on the event-driven engine
(:func:`wfctl.engine.step_call.invoke`, the attempt loop); whether to go round again,
the items, and the errors are the loop step's own (:mod:`wfctl.engine.steps.loop`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from wfctl.compile.plan import Container
from wfctl.engine.attempts import StepFailed
from wfctl.engine.step_call import invoke
from wfctl.engine.steps import loop as loop_steps
from wfctl.expressions import ExpressionError
from wfctl.model import ForEachBody, LoopBody, Step

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor

__all__ = ["LoopDriver"]


class LoopDriver:
    """The loop half of the run's runtime: what a loop subgraph's nodes call."""

    def __init__(self, ex: Executor, graphs: Any) -> None:
        self._ex = ex
        self._graphs = graphs
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._failed: set[str] = set()

    async def run_loop(self, step: Step, body: Container) -> Any:
        """The loop step's output, its subgraph run to its end."""
        loop_id = step.step_id
        # Two graph steps per iteration of each body step, and the round's end.
        limit = 10 + 2 * (len(body.steps) + 1) * _bound(step)
        config = {"recursion_limit": limit}
        start = {"run_id": self._ex.run_id, "index": 0, "previous": None}
        if isinstance(step.body, ForEachBody):
            self._limiters[loop_id] = anyio.CapacityLimiter(body.limit or 1)
            self._failed.discard(loop_id)
            final = await self._graphs[loop_id].ainvoke(start, config)
            return _for_each_output(final)
        final = await self._graphs[loop_id].ainvoke(start, config)
        outputs = list(final.get("outputs") or [])
        return {"iterations": len(outputs), "outputs": outputs, "last": outputs[-1]}

    async def run_body_step(self, loop_id: str, step_id: str, frame: dict[str, Any]) -> Any:
        ex = self._ex
        step = ex.workflow.all_steps[step_id]
        return await invoke(ex, step, ex.records[step_id], ex.step_input(step, frame), frame)

    async def again(self, loop_id: str, index: int, output: Any, previous: Any) -> bool:
        ex = self._ex
        step = ex.workflow.all_steps[loop_id]
        body = step.body
        assert isinstance(body, LoopBody)
        go_on = loop_steps._again(ex, step, body, index, output, previous)
        if go_on and body.delay:
            await anyio.sleep(body.delay)
        return go_on

    def items(self, loop_id: str) -> list[Any]:
        ex = self._ex
        step = ex.workflow.all_steps[loop_id]
        assert isinstance(step.body, ForEachBody)
        return list(loop_steps._items(ex, step, step.body))

    async def run_item(self, loop_id: str, index: int, item: Any) -> dict[str, Any]:
        frame = {"index": index, "item": item}
        body = self._ex.plan.bodies[loop_id]
        try:
            async with self._limiters[loop_id]:
                if loop_id in self._failed:
                    return {}  # an item failed: the others that did not start never do
                output: Any = None
                for step in body.steps:
                    output = await self.run_body_step(loop_id, step.step_id, frame)
        except StepFailed as exc:
            self._failed.add(loop_id)
            return {"failures": {str(index): [str(exc), exc.kind]}}
        except ExpressionError as exc:
            self._failed.add(loop_id)
            return {"failures": {str(index): [exc.message, "validation"]}}
        return {"results": {str(index): output}}


def _bound(step: Step) -> int:
    body = step.body
    return body.max_iterations if isinstance(body, LoopBody | ForEachBody) else 1


def _for_each_output(final: dict[str, Any]) -> dict[str, Any]:
    failures = final.get("failures") or {}
    if failures:
        index = min(failures, key=int)
        message, kind = failures[index]
        raise StepFailed(f"item {index}: {message}", kind)
    results = final.get("results") or {}
    outputs = [results.get(str(i)) for i in range(len(results))]
    return {
        "iterations": len(outputs),
        "outputs": outputs,
        "last": outputs[-1] if outputs else None,
    }
