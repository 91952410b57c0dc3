"""Running wfctl the way a user of the Python API does: `await wfctl.run_workflow(...)`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from scenarios.common import Dag, load_dag_workflow

if TYPE_CHECKING:
    from wfctl.engine.records import RunResult
    from wfctl.model import Workflow


async def run_wfctl(
    workflow: Workflow,
    estimates: Mapping[str, float] | None = None,
    max_parallel: int | None = None,
) -> RunResult:
    from wfctl import run_workflow

    result = await run_workflow(workflow, {}, estimates=estimates, max_parallel=max_parallel)
    if result.status != "completed":
        raise RuntimeError(f"wfctl run of {workflow.workflow_id} ended {result.status}: "
                           f"{result.error}")
    return result


async def warm_up() -> None:
    """Import everything a run touches (engine, actions, LangGraph) before any timing."""
    from scenarios.baselines import build_langgraph, run_langgraph
    from scenarios.common import chain_dag

    tiny = Dag("warm-up", {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")},
               {"a": 0.0, "b": 0.001, "c": 0.0, "d": 0.0})
    await run_wfctl(load_dag_workflow(tiny))
    await run_langgraph(build_langgraph(tiny), 4)
    await run_langgraph(build_langgraph(chain_dag(3)), 3)
