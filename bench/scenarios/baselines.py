"""What wfctl is compared with: plain asyncio (the floor) and LangGraph's superstep model."""

from __future__ import annotations

import asyncio
import operator
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypedDict

from scenarios.common import Dag

# -- plain asyncio: one task per step, an Event per step, a dict of results ----------------


async def run_asyncio(dag: Dag) -> dict[str, object]:
    """Run the DAG with minimal machinery: each step's task waits on its dependencies'
    Events, runs (sleeps, or nothing for a no-op), stores a result and sets its Event."""
    done = {step: asyncio.Event() for step in dag.deps}
    results: dict[str, object] = {}

    async def one(step: str, deps: tuple[str, ...], seconds: float) -> None:
        for dep in deps:
            await done[dep].wait()
        if seconds:
            await asyncio.sleep(seconds)
        results[step] = None
        done[step].set()

    async with asyncio.TaskGroup() as tg:
        for step, deps in dag.deps.items():
            tg.create_task(one(step, deps, dag.durations[step]))
    return results


# -- LangGraph: one node per step in a plain StateGraph ------------------------------------


class _State(TypedDict):
    finished: Annotated[int, operator.add]


def _node(seconds: float) -> Callable[[_State], Awaitable[dict[str, int]]]:
    async def node(state: _State) -> dict[str, int]:
        if seconds:
            await asyncio.sleep(seconds)
        return {"finished": 1}

    return node


def build_langgraph(dag: Dag) -> Any:
    """The DAG compiled the LangGraph way: a node per step, an edge per dependency; a step
    with several dependencies gets one waiting edge `add_edge([a, b], c)`. LangGraph then
    runs it in supersteps (every node of a superstep must end before the next starts)."""
    from langgraph.graph import END, START, StateGraph

    graph: Any = StateGraph(_State)  # LangGraph's node overloads are too narrow for mypy
    has_users: set[str] = set()
    for step, deps in dag.deps.items():
        graph.add_node(step, _node(dag.durations[step]))
        if not deps:
            graph.add_edge(START, step)
        elif len(deps) == 1:
            graph.add_edge(deps[0], step)
        else:
            graph.add_edge(list(deps), step)
        has_users.update(deps)
    for step in dag.deps:
        if step not in has_users:
            graph.add_edge(step, END)
    return graph.compile()


async def run_langgraph(compiled: Any, steps: int) -> None:
    state = await compiled.ainvoke({"finished": 0}, {"recursion_limit": steps + 10})
    if state["finished"] != steps:
        raise RuntimeError(f"langgraph ran {state['finished']} of {steps} nodes")
