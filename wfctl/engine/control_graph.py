"""The LangGraph StateGraph that drives a run: the seed's orchestrator topology.

orchestrator -> parallel_executor | human_approval | error_recovery | END. The scheduler
inside `parallel_executor` is event-driven, so LangGraph supersteps never batch steps.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypedDict, cast

from wfctl.model import StepStatus

if TYPE_CHECKING:
    from wfctl.engine.executor import Executor


class GraphState(TypedDict, total=False):
    route: str
    passes: int
    statuses: dict[str, str]
    waiting: list[str]
    vars: dict[str, Any]


def _snapshot(executor: Executor) -> dict[str, Any]:
    return {
        "statuses": {k: r.status.value for k, r in executor.records.items()},
        "waiting": sorted(k for k, r in executor.records.items() if r.status is StepStatus.WAITING),
        "vars": dict(executor.vars),
    }


def build_graph(executor: Executor, checkpointer: Any = None) -> Any:
    """Compile the control-plane graph for one run (nodes close over the executor)."""
    from langgraph.graph import END, START, StateGraph

    async def orchestrator(state: GraphState) -> dict[str, Any]:
        if executor.stop_reason is not None:
            route = "complete"
        elif executor.fatal is not None:
            route = "error"
        elif state.get("passes", 0) == 0:
            route = "parallel"
        elif any(r.status is StepStatus.WAITING for r in executor.records.values()):
            route = "approval"
        else:
            route = "complete"
        return {"route": route}

    async def parallel_executor(state: GraphState) -> dict[str, Any]:
        await executor.run_level(None)
        return {"passes": state.get("passes", 0) + 1, **_snapshot(executor)}

    async def human_approval(state: GraphState) -> dict[str, Any]:
        # interrupt() re-runs this node from its start on resume: keep it free of effects.
        waiting = [k for k, r in executor.records.items() if r.status is StepStatus.WAITING]
        decided = [k for k in waiting if executor.approval_due(k)]
        if not decided and checkpointer is not None:
            from langgraph.types import interrupt

            # The run is checkpointed here; `wfctl resume` continues after the decisions
            # recorded by `wfctl approve` (the resume value names them).
            resumed = interrupt({"waiting_for": waiting})
            decided = [k for k in resumed.get("decided", []) if k in waiting]
        return {"route": "parallel" if decided else "wait", **_snapshot(executor)}

    async def error_recovery(state: GraphState) -> dict[str, Any]:
        await executor.rollback()
        return _snapshot(executor)

    graph = StateGraph(GraphState)
    graph.add_node("orchestrator", orchestrator)
    graph.add_node("parallel_executor", parallel_executor)
    graph.add_node("human_approval", human_approval)
    graph.add_node("error_recovery", error_recovery)
    graph.add_edge(START, "orchestrator")
    graph.add_conditional_edges(
        "orchestrator",
        lambda s: s["route"],
        {
            "parallel": "parallel_executor",
            "approval": "human_approval",
            "error": "error_recovery",
            "complete": END,
        },
    )
    graph.add_edge("parallel_executor", "orchestrator")
    graph.add_conditional_edges(
        "human_approval", lambda s: s["route"], {"parallel": "parallel_executor", "wait": END}
    )
    graph.add_edge("error_recovery", END)
    return graph.compile(checkpointer=checkpointer)


def control_graph_mermaid(workflow: Any) -> str:
    """Mermaid of the compiled LangGraph graph (`wfctl graph --langgraph`).

    The topology does not depend on the workflow yet, so nothing is compiled or run: the
    nodes are drawn, never called."""
    text: str = build_graph(cast("Executor", None)).get_graph().draw_mermaid()
    return text if text.endswith("\n") else text + "\n"
