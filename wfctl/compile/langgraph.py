"""A workflow's own LangGraph `StateGraph`, compiled from its execution plan.

A node per step; a subgraph per container (a parallel group's children; a loop's body,
with its back-edge: :mod:`.langgraph_loops`); edges from the
dependencies (a join when a step waits on several); conditional edges where a step may
be skipped by its `when` or by the branch of a `conditional` step (labelled with the
condition; the edge always reaches the step, whose node decides and records the skip, so
that its dependents' joins still fire); after a step with
`error_handlers` a conditional edge to its `<id>.error_recovery` node, taken when it
failed; at each `human_approval` step (and each parallel step holding one) a deferred
`<id>.wait` node that calls `interrupt()` and a back-edge to itself until the step is
decided; at the end an `error_recovery` node (rollback) when the run failed.

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
from wfctl.model import ConditionalBody, ParallelBody, Step, StepType

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
# The labels of the edges out of a step's node (drawn by `wfctl graph --langgraph`).
_OK, _WAITING, _ERROR, _FAILED = "done", "waiting", "error", "failed"
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


class GraphRuntime(Protocol):
    """What the nodes of a compiled workflow graph call (the engine implements it)."""

    async def run_step(self, step_id: str, subgraph: Any) -> dict[str, Any]:
        """Run (or skip) one step to its end state; the state update it made."""
        ...

    def waiting(self, step_id: str) -> bool:
        """Is the step waiting for an approval (its own, or a child's)?"""
        ...

    def approval_due(self, step_id: str) -> bool:
        """Can a waiting step's approval be decided without asking (a decision, a
        timeout)? For a parallel step: one of its waiting children's."""
        ...

    def needs_recovery(self, step_id: str) -> bool:
        """Did the step fail with error handlers that have not run yet?"""
        ...

    async def recover_step(self, step_id: str) -> dict[str, Any]:
        """Run a failed step's error handlers (maybe recovering it); the state update."""
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
    plan: ExecutionPlan,
    checkpointer: Any = None,
    embedding: Embedding | None = None,
    drawn: Mapping[str, Any] | None = None,
) -> dict[str | None, Any]:
    """Every container's compiled graph: None -> the workflow's own (with a checkpointer),
    a parallel step's id -> the subgraph of its children (it inherits the checkpointer).
    With `embedding`, the workflow's graph starts at its `start` node and ends at `end`.
    `drawn`: step id -> a graph its node is drawn as (a react step's agent), never run."""
    from wfctl.compile.langgraph_loops import loop_graph

    graphs: dict[str | None, Any] = {}
    for loop_id, body in plan.bodies.items():
        graphs[loop_id] = loop_graph(plan.workflow.all_steps[loop_id], body, RUNTIMES)
    for container_id in _inner_first(plan):
        builder = _Builder(plan, graphs, drawn or {})
        top = container_id is None
        state_graph = builder.container(plan.levels[container_id], top, embedding if top else None)
        graphs[container_id] = state_graph.compile(
            checkpointer=checkpointer if top else None,
            name=container_id or plan.workflow.workflow_id,
        )
    return graphs


def mermaid(plan: ExecutionPlan, drawn: Mapping[str, Any] | None = None) -> str:
    """The workflow graph drawn by LangGraph itself (containers expanded; `drawn`: the
    graphs some steps' nodes are drawn as, see :func:`build_graphs`)."""
    graph = build_graphs(plan, drawn=drawn)[None]
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


def may_wait(step: Step, steps: Mapping[str, Step]) -> bool:
    """Can the step end its node waiting for an approval (an approval step, or a parallel
    step with one among its children, at any depth)?"""
    if step.step_type is StepType.HUMAN_APPROVAL:
        return True
    if not isinstance(step.body, ParallelBody):
        return False
    return any(may_wait(c, steps) for c in step.children)


def exit_node(step: Step, steps: Mapping[str, Step]) -> str:
    """The node a step's dependents wait on: `<id>.done` after a step that may wait for
    an approval or has error handlers (the paths out of it meet there), else the step's."""
    if step.error_handlers or may_wait(step, steps):
        return step.step_id + _DONE
    return step.step_id


class _Builder:
    """Builds one container's StateGraph."""

    def __init__(
        self, plan: ExecutionPlan, graphs: Mapping[str | None, Any], drawn: Mapping[str, Any]
    ) -> None:
        self.plan = plan
        self.steps = plan.workflow.all_steps
        self.graphs = graphs
        self.drawn = drawn
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
        sinks = [
            exit_node(s, self.steps) for s in container.steps if not container.dependents[s.step_id]
        ]
        if top:
            self._ending(graph, sinks)
        else:
            _join(graph, sinks, END, START)
        return graph

    # -- nodes ---------------------------------------------------------------------
    def _nodes(self, graph: Any, step: Step) -> None:
        step_id = step.step_id
        subgraph = self.graphs.get(step_id, self.drawn.get(step_id))
        graph.add_node(step_id, _step_node(step_id, subgraph))
        if exit_node(step, self.steps) == step_id:
            return
        done = step_id + _DONE
        graph.add_node(done, _pass)
        exits = {_OK: done}
        if step.error_handlers:
            exits[_ERROR] = self._recovery(graph, step_id, done)
        if may_wait(step, self.steps):
            self._wait(graph, step_id, exits)
        graph.add_conditional_edges(step_id, _exit_route(step_id, after_wait=False), exits)

    def _recovery(self, graph: Any, step_id: str, done: str) -> str:
        """`<id>.error_recovery`: the failed step's error handlers (`recover: true` un-fails
        it), then `<id>.done` releases its dependents, as the step's end would have."""
        node = step_id + "." + ERROR_RECOVERY
        graph.add_node(node, _recovery_node(step_id))
        graph.add_edge(node, done)
        return node

    def _wait(self, graph: Any, step_id: str, exits: dict[str, str]) -> None:
        """A step that may wait for an approval (an approval, or a parallel step holding
        one). At the top: the deferred `<id>.wait` interrupts the run (once every other
        branch is done) and asks again after resume. In a container: the container ends
        with the step waiting (its parallel step waits, and so the top-level one)."""
        if not self.top:
            exits[_WAITING] = self.exit
            return
        wait = step_id + _WAIT
        graph.add_node(wait, _wait_node(step_id), defer=True)
        # The run failed while this step waited: nobody is asked; the run ends (rolled
        # back) with the step still waiting, as on the event-driven engine.
        after = {**exits, _WAITING: wait, _FAILED: ERROR_RECOVERY}
        graph.add_conditional_edges(wait, _exit_route(step_id, after_wait=True), after)
        exits[_WAITING] = wait

    # -- edges ---------------------------------------------------------------------
    def _incoming(self, graph: Any, step: Step, deps: list[str], ids: set[str]) -> None:
        if any(d not in ids for d in step.dependencies):
            return  # waits on a step outside its container: never ready (a deadlock)
        sources = [exit_node(self.steps[d], self.steps) for d in deps] or [self.entry]
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
        return await _runtime(state).run_step(step_id, subgraph)

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
        return await runtime.run_step(step_id, None)

    wait.__name__ = step_id + _WAIT
    return wait


def _exit_route(step_id: str, after_wait: bool) -> Callable[[GraphState], str]:
    """Where a step's node (or its `.wait` node) goes: its error handlers, on waiting, or
    on to `<id>.done` (`failed`, after a wait only: the run failed meanwhile)."""

    def route(state: GraphState) -> str:
        runtime = _runtime(state)
        if runtime.needs_recovery(step_id):
            return _ERROR
        if not runtime.waiting(step_id):
            return _OK
        return _FAILED if after_wait and runtime.failed() else _WAITING

    route.__name__ = f"{'resumed' if after_wait else 'after'}_{step_id}"
    return route


def _recovery_node(step_id: str) -> Callable[[GraphState], Any]:
    async def recovery(state: GraphState) -> dict[str, Any]:
        return await _runtime(state).recover_step(step_id)

    recovery.__name__ = f"{step_id}.{ERROR_RECOVERY}"
    return recovery


def _guard_route(step_id: str, label: str) -> Callable[[GraphState], str]:
    """The edge into a step that may be skipped: drawn with its condition, always taken.
    The step's node decides (as the scheduler does) and records a skip. Not a `Send` with
    the skip: LangGraph takes a superstep that only sends for the last one and runs the
    deferred approval waits beside it, which then interrupt before the skipped step's
    dependents have been decided."""

    def route(state: GraphState) -> str:
        return label

    route.__name__ = f"to_{step_id}"
    return route


def _outcome(state: GraphState) -> str:
    return "failed" if _runtime(state).failed() else "ok"


async def _recover(state: GraphState) -> dict[str, Any]:
    return await _runtime(state).recover()
