"""The subgraph of a loop step: its body's steps as nodes, then a back-edge.

A `loop_condition` loop: START -> the body's steps in order -> `<id>.next`, which asks
whether to go round again; a conditional back-edge returns to the body's first step.
A `for_each` step: START sends each item (`Send`) to `<id>.item`, which runs the body
for that item (the runtime holds it to `loop_concurrency` at once).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, TypedDict

from wfctl.compile.plan import Container
from wfctl.model import ForEachBody, Step

__all__ = ["LoopRuntime", "LoopState", "loop_graph"]


def _merge(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Any]:
    return {**(old or {}), **(new or {})}


class LoopState(TypedDict, total=False):
    """One run of a loop step: where its iterations are."""

    run_id: str
    index: int
    item: Any  # in a Send to `<id>.item` only
    previous: Any
    output: Any
    again: bool
    outputs: Annotated[list[Any], operator.add]  # loop_condition: per iteration, in order
    results: Annotated[dict[str, Any], _merge]  # for_each: item index -> output
    failures: Annotated[dict[str, Any], _merge]  # for_each: item index -> [message, kind]


class LoopRuntime(Protocol):
    """What a loop subgraph's nodes call (the engine implements it)."""

    async def run_body_step(self, loop_id: str, step_id: str, frame: dict[str, Any]) -> Any:
        """One body step of one iteration or item (`frame`: what `loop` is); its output."""
        ...

    async def again(self, loop_id: str, index: int, output: Any, previous: Any) -> bool:
        """Another iteration? (Raises when loop_max_iterations is used up; waits the delay.)"""
        ...

    def items(self, loop_id: str) -> list[Any]:
        """A for-each step's items."""
        ...

    async def run_item(self, loop_id: str, index: int, item: Any) -> dict[str, Any]:
        """One item's body under the step's concurrency; its results/failures update."""
        ...


def loop_graph(step: Step, body: Container, runtimes: Mapping[str, Any]) -> Any:
    """The compiled subgraph of loop step `step` (it inherits the run's checkpointer)."""
    from langgraph.graph import END, START, StateGraph

    loop_id = step.step_id
    graph = StateGraph(LoopState)
    if isinstance(step.body, ForEachBody):
        item = f"{loop_id}.item"
        graph.add_node(item, _item_node(loop_id, runtimes))
        graph.add_conditional_edges(START, _fan_out(loop_id, item, runtimes), [item, END])
        graph.add_edge(item, END)
        return graph.compile(name=loop_id)
    # Today a body is the loop step's own call; a body of several steps names each.
    names = [
        f"{loop_id}.body" + ("" if s.step_id == loop_id else f".{s.step_id}") for s in body.steps
    ]
    for name, body_step in zip(names, body.steps, strict=True):
        graph.add_node(name, _body_node(loop_id, body_step.step_id, runtimes))
    nxt = f"{loop_id}.next"
    graph.add_node(nxt, _next_node(loop_id, runtimes))
    for source, target in zip([START, *names], [*names, nxt], strict=True):
        graph.add_edge(source, target)
    graph.add_conditional_edges(nxt, _round, {"again": names[0], "done": END})
    return graph.compile(name=loop_id)


def _rt(runtimes: Mapping[str, Any], state: Mapping[str, Any]) -> LoopRuntime:
    runtime: LoopRuntime = runtimes[state["run_id"]]
    return runtime


def _body_node(loop_id: str, step_id: str, runtimes: Mapping[str, Any]) -> Callable[..., Any]:
    async def body(state: LoopState) -> dict[str, Any]:
        frame = {"index": state.get("index", 0), "previous": state.get("previous")}
        output = await _rt(runtimes, state).run_body_step(loop_id, step_id, frame)
        return {"output": output}

    return body


def _next_node(loop_id: str, runtimes: Mapping[str, Any]) -> Callable[..., Any]:
    async def next_round(state: LoopState) -> dict[str, Any]:
        index, output = state.get("index", 0), state.get("output")
        again = await _rt(runtimes, state).again(loop_id, index, output, state.get("previous"))
        update: dict[str, Any] = {"outputs": [output], "again": again}
        if again:
            update.update(index=index + 1, previous=output)
        return update

    return next_round


def _round(state: LoopState) -> str:
    return "again" if state.get("again") else "done"


def _fan_out(loop_id: str, item: str, runtimes: Mapping[str, Any]) -> Callable[..., Any]:
    def fan_out(state: LoopState) -> Any:
        from langgraph.graph import END
        from langgraph.types import Send

        items = _rt(runtimes, state).items(loop_id)
        sends = [
            Send(item, {"run_id": state["run_id"], "index": i, "item": value})
            for i, value in enumerate(items)
        ]
        return sends or END

    return fan_out


def _item_node(loop_id: str, runtimes: Mapping[str, Any]) -> Callable[..., Any]:
    async def one_item(state: LoopState) -> dict[str, Any]:
        return await _rt(runtimes, state).run_item(
            loop_id, state.get("index", 0), state.get("item")
        )

    return one_item
