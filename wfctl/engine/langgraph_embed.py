"""`wfctl.to_langgraph(workflow)`: the workflow's compiled graph, for a LangGraph
application to add as a node or subgraph of its own graph.

Inputs in (`{"inputs": {...}}`), step outputs, `vars` and the run's status out. The
steps run as on `--engine langgraph`: the same lifecycle, attempt loop, breakers and
timeouts; the application's checkpointer (if any) checkpoints them.
"""

from __future__ import annotations

import os
from typing import Any, TypedDict

from wfctl.compile.langgraph import RUNTIMES, Embedding, GraphState, build_graphs
from wfctl.compile.plan import compile_plan
from wfctl.engine.langgraph_engine import EngineRuntime, attach
from wfctl.engine.options import RunOptions
from wfctl.events import EventBus
from wfctl.model import StepStatus, Workflow
from wfctl.model.inputs import resolve_inputs

__all__ = ["WorkflowInput", "WorkflowOutput", "to_langgraph"]


class WorkflowInput(TypedDict, total=False):
    """What the embedded workflow reads from its parent: the run's inputs."""

    inputs: dict[str, Any]


class WorkflowOutput(TypedDict, total=False):
    """What it gives back: completed steps' outputs, `vars`, and the run's status."""

    outputs: dict[str, Any]
    vars: dict[str, Any]
    status: str


class _EmbeddedState(GraphState, total=False):
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    status: str


def to_langgraph(workflow: Workflow, options: RunOptions | None = None) -> Any:
    """A compiled LangGraph graph running `workflow` (input: WorkflowInput, output:
    WorkflowOutput). `options` as for run_workflow (approvals, a handler, a bus to watch
    the events, env, workdir); each invocation is a run of its own."""
    from wfctl.engine import runner

    opts = options or RunOptions()
    plan = compile_plan(workflow, opts.estimates)
    graphs: dict[str | None, Any] = {}

    async def start(state: _EmbeddedState) -> dict[str, Any]:
        env = os.environ if opts.env is None else opts.env
        resolved = resolve_inputs(workflow.inputs, state.get("inputs") or {})
        secrets = runner.read_secrets(workflow, env)
        run_id = runner.new_run_id()
        bus = EventBus()
        if opts.bus is not None:
            bus.subscribe(opts.bus.emit)
        ex = runner.build_executor(workflow, resolved, secrets, env, run_id, bus, opts)
        attach(ex, graphs)
        return {"run_id": run_id, "vars": dict(ex.vars)}

    async def end(state: _EmbeddedState) -> dict[str, Any]:
        runtime = RUNTIMES.pop(state["run_id"])
        assert isinstance(runtime, EngineRuntime)
        ex = runtime.executor
        ex.scheduler._detect_deadlock(plan.levels[None].steps)
        status, _ = runner.settled(ex)
        ex.mark_unused_handlers()
        outputs = {k: r.output for k, r in ex.records.items() if r.status is StepStatus.COMPLETED}
        return {"outputs": outputs, "vars": dict(ex.vars), "status": status.value}

    embedding = Embedding(
        state=_EmbeddedState, input=WorkflowInput, output=WorkflowOutput, start=start, end=end
    )
    graphs.update(build_graphs(plan, None, embedding))
    return graphs[None]
