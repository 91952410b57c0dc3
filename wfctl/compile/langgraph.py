"""A workflow's own LangGraph `StateGraph`, compiled from its execution plan.

A node per step; a subgraph per container (a parallel group's children; a loop's body,
with its back-edge: :mod:`.langgraph_loops`); edges from the
dependencies (a join when a step waits on several); conditional edges where a step may
be skipped by its `when` or by the branch of a `conditional` step (the skip is a `Send`
to the step, so that its dependents' joins still fire); at each `human_approval` step a
deferred `<id>.wait` node that calls `interrupt()` and a back-edge to itself until the
step is decided; at the end an `error_recovery` node (rollback) when the run failed.

What a node *does* is the engine's business: nodes call a :class:`GraphRuntime`, looked
up by the run id in the graph state, so one compiled graph serves many runs (that is
what :func:`wfctl.to_langgraph` hands out). LangGraph is imported only when a graph is
built, never by `wfctl validate` or `--help`.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Protocol, TypedDict

from wfctl.compile.plan import Container, ExecutionPlan
from wfctl.model import ConditionalBody, Step, StepType

__all__ = [
    "ERROR_RECOVERY",
    "FINISH",
    "RUNTIMES",
    "Embedding",
    "GraphRuntime",
    "GraphState",
    "build_graphs",
    "mermaid",
]

ERROR_RECOVERY = "error_recovery"
FINISH = "finish"
_WAIT = ".wait"  # '.' is not allowed in a step id: these names never collide with one
_DONE = ".done"
_EMBED_START, _EMBED_END = "wfctl.start", "wfctl.end"


def merge(old: Mapping[str, Any] | None, new: Mapping[str, Any] | None) -> dict[str, Any]:
    """The reducer of `steps` and `vars`: newer keys win, the rest is kept."""
    return {**(old or {}), **(new or {})}


class GraphState(TypedDict, total=False):
    """What the graph checkpoints: every step's record and `vars`, merged by reducers."""

    run_id: str  # selects the GraphRuntime the nodes call (never changes in a run)
    steps: Annotated[dict[str, dict[str, Any]], merge]  # step id -> its record as data
    vars: Annotated[dict[str, Any], merge]
    completed: Annotated[list[str], operator.add]  # completion order (rollback order)
    skip: str  # only in a `Send` to a step: skip it, for this reason


class GraphRuntime(Protocol):
    """What the nodes of a compiled workflow graph call (the engine implements it)."""

    async def run_step(self, step_id: str, skip: str | None, subgraph: Any) -> dict[str, Any]:
        """Run (or skip) one step to its end state; the state update it made."""
        ...

    def skip_reason(self, step_id: str) -> str | None:
        """Why the step would be skipped if it started now (None: it runs)."""
        ...

    def waiting(self, step_id: str) -> bool:
        """Is the step waiting for an approval?"""
        ...

    def approval_due(self, step_id: str) -> bool:
        """Can a waiting approval be decided without asking (a decision, a timeout)?"""
        ...

    def failed(self) -> bool:
        """Has the run failed (a step failed the run)?"""
        ...

    async def recover(self) -> dict[str, Any]:
        """Roll back the completed steps; the state update."""
        ...


#: Live runs: run id -> the runtime its graph's nodes call (registered by the engine).
RUNTIMES: dict[str, GraphRuntime] = {}


def _runtime(state: Mapping[str, Any]) -> GraphRuntime:
    return RUNTIMES[state["run_id"]]


class Embedding(TypedDict):
    """How the top-level graph starts and ends when another application embeds it."""

    state: type  # its state schema (GraphState's keys and its own)
    input: type
    output: type
    start: Callable[..., Any]  # node: inputs -> a run (its run_id in the state)
    end: Callable[..., Any]  # node: the run -> step outputs and vars


def build_graphs(
    plan: ExecutionPlan, checkpointer: Any = None, embedding: Embedding | None = None
) -> dict[str | None, Any]:
    """Every container's compiled graph: None -> the workflow's own (with a checkpointer),
    a parallel step's id -> the subgraph of its children (it inherits the checkpointer).
    With `embedding`, the workflow's graph starts at its `start` node and ends at `end`."""
    from wfctl.compile.langgraph_loops import loop_graph

    graphs: dict[str | None, Any] = {}
    for loop_id, body in plan.bodies.items():
        graphs[loop_id] = loop_graph(plan.workflow.all_steps[loop_id], body, RUNTIMES)
    for container_id in _inner_first(plan):
        builder = _Builder(plan, graphs)
        top = container_id is None
        state_graph = builder.container(plan.levels[container_id], top, embedding if top else None)
        graphs[container_id] = state_graph.compile(
            checkpointer=checkpointer if top else None,
            name=container_id or plan.workflow.workflow_id,
        )
    return graphs


def mermaid(plan: ExecutionPlan) -> str:
    """The workflow graph drawn by LangGraph itself (containers expanded)."""
    graph = build_graphs(plan)[None]
    text: str = graph.get_graph(xray=True).draw_mermaid()
    return text if text.endswith("\n") else text + "\n"


def _inner_first(plan: ExecutionPlan) -> list[str | None]:
    """Containers, nested ones before those holding them (a subgraph is built first)."""
    depth: dict[str | None, int] = {}
    for container_id in plan.levels:
        level, owner = 0, container_id
        while owner is not None:
            level += 1
            owner = plan.workflow.all_steps[owner].container
        depth[container_id] = level
    return sorted(plan.levels, key=lambda c: -depth[c])


def exit_node(step: Step) -> str:
    """The node a step's dependents wait on (an approval's is `<id>.done`)."""
    return step.step_id + _DONE if step.step_type is StepType.HUMAN_APPROVAL else step.step_id


class _Builder:
    """Builds one container's StateGraph."""

    def __init__(self, plan: ExecutionPlan, graphs: Mapping[str | None, Any]) -> None:
        self.plan = plan
        self.steps = plan.workflow.all_steps
        self.graphs = graphs
        self.top = False
        self.entry, self.exit = "__start__", "__end__"  # LangGraph's START and END

    def container(self, container: Container, top: bool, embedding: Embedding | None) -> Any:
        from langgraph.graph import END, START, StateGraph

        self.top = top
        if embedding is None:
            graph = StateGraph(GraphState)
        else:
            graph = StateGraph(
                embedding["state"],
                input_schema=embedding["input"],
                output_schema=embedding["output"],
            )
            graph.add_node(_EMBED_START, embedding["start"])
            graph.add_node(_EMBED_END, embedding["end"])
            graph.add_edge(START, _EMBED_START)
            graph.add_edge(_EMBED_END, END)
            self.entry, self.exit = _EMBED_START, _EMBED_END
        for step in container.steps:
            self._nodes(graph, step)
        ids = {s.step_id for s in container.steps}
        for step in container.steps:
            self._incoming(graph, step, [d for d in step.dependencies if d in ids], ids)
        sinks = [exit_node(s) for s in container.steps if not container.dependents[s.step_id]]
        if top:
            self._ending(graph, sinks)
        else:
            _join(graph, sinks, END, START)
        return graph

    # -- nodes ---------------------------------------------------------------------
    def _nodes(self, graph: Any, step: Step) -> None:
        subgraph = self.graphs.get(step.step_id)
        graph.add_node(step.step_id, _step_node(step.step_id, subgraph))
        if step.step_type is StepType.HUMAN_APPROVAL:
            self._approval(graph, step.step_id)

    def _approval(self, graph: Any, step_id: str) -> None:
        """`<id>` asks; if nobody decided, the deferred `<id>.wait` interrupts the run (once
        every other branch is done) and asks again after resume; `<id>.done` releases the
        step's dependents."""
        wait, done = step_id + _WAIT, step_id + _DONE
        graph.add_node(wait, _wait_node(step_id), defer=True)
        graph.add_node(done, _pass)
        graph.add_conditional_edges(
            step_id, _approval_route(step_id, False), {"waiting": wait, "decided": done}
        )
        # The run failed while this step waited: nobody is asked; the run ends (top level:
        # rolled back) with the step still waiting, as on the event-driven engine.
        failed = ERROR_RECOVERY if self.top else self.exit
        graph.add_conditional_edges(
            wait,
            _approval_route(step_id, True),
            {"waiting": wait, "decided": done, "failed": failed},
        )

    # -- edges ---------------------------------------------------------------------
    def _incoming(self, graph: Any, step: Step, deps: list[str], ids: set[str]) -> None:
        if any(d not in ids for d in step.dependencies):
            return  # waits on a step outside its container: never ready (a deadlock)
        sources = [exit_node(self.steps[d]) for d in deps] or [self.entry]
        label = self._guard(step, deps)
        if len(sources) > 1:
            graph.add_edge(sources, step.step_id)  # a join; the node decides its trigger rule
        elif label is None:
            graph.add_edge(sources[0], step.step_id)
        else:
            graph.add_conditional_edges(
                sources[0], _guard_route(step.step_id, label), {label: step.step_id}
            )

    def _guard(self, step: Step, deps: list[str]) -> str | None:
        """The label of a conditional edge into `step`, or None for a plain edge."""
        if len(deps) > 1:
            return None
        if deps:
            source = self.steps[deps[0]]
            if isinstance(source.body, ConditionalBody):
                return _branch_label(source.body, step.step_id)
        return f"when {step.when.source}" if step.when is not None else None

    def _ending(self, graph: Any, sinks: list[str]) -> None:
        graph.add_node(FINISH, _pass)
        graph.add_node(ERROR_RECOVERY, _recover)
        _join(graph, sinks, FINISH, self.entry)
        graph.add_conditional_edges(FINISH, _outcome, {"failed": ERROR_RECOVERY, "ok": self.exit})
        graph.add_edge(ERROR_RECOVERY, self.exit)


def _join(graph: Any, sources: list[str], target: str, entry: str) -> None:
    if len(sources) > 1:
        graph.add_edge(sources, target)
    else:
        graph.add_edge(sources[0] if sources else entry, target)


def _branch_label(body: ConditionalBody, target: str) -> str | None:
    labels = [
        b.name or (f"if {b.when.source}" if b.when is not None else "else")
        for b in body.branches
        if target in b.next_steps
    ]
    return " / ".join(labels) if labels else None


# -- what the nodes and routers do (each a small closure over a step id) ------------------
async def _pass(state: GraphState) -> dict[str, Any]:
    return {}


def _step_node(step_id: str, subgraph: Any) -> Callable[[GraphState], Any]:
    """A step's node; `subgraph` (a parallel step's children) is referenced here so that
    LangGraph knows it as this node's subgraph (drawing, nested checkpoints)."""

    async def node(state: GraphState) -> dict[str, Any]:
        return await _runtime(state).run_step(step_id, state.get("skip"), subgraph)

    node.__name__ = step_id
    return node


def _wait_node(step_id: str) -> Callable[[GraphState], Any]:
    async def wait(state: GraphState) -> dict[str, Any]:
        from langgraph.types import interrupt

        runtime = _runtime(state)
        if runtime.failed():
            return {}  # the run failed meanwhile: nobody is asked any more
        if not runtime.approval_due(step_id):
            # Re-run from here on resume (PITFALLS.md): nothing above has side effects.
            interrupt({"waiting_for": step_id})
        return await runtime.run_step(step_id, None, None)

    wait.__name__ = step_id + _WAIT
    return wait


def _approval_route(step_id: str, after_wait: bool) -> Callable[[GraphState], str]:
    def route(state: GraphState) -> str:
        runtime = _runtime(state)
        if not runtime.waiting(step_id):
            return "decided"
        return "failed" if after_wait and runtime.failed() else "waiting"

    route.__name__ = f"{'resumed' if after_wait else 'asked'}_{step_id}"
    return route


def _guard_route(step_id: str, label: str) -> Callable[[GraphState], Any]:
    def route(state: GraphState) -> Any:
        from langgraph.types import Send

        reason = _runtime(state).skip_reason(step_id)
        if reason is None:
            return label
        return Send(step_id, {"run_id": state["run_id"], "skip": reason})

    route.__name__ = f"to_{step_id}"
    return route


def _outcome(state: GraphState) -> str:
    return "failed" if _runtime(state).failed() else "ok"


async def _recover(state: GraphState) -> dict[str, Any]:
    return await _runtime(state).recover()
