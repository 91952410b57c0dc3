"""Running wfctl the way a user of the Python API does: `await wfctl.run_workflow(...)`."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from scenarios.common import Dag, load_dag_workflow

if TYPE_CHECKING:
    from wfctl.model import Workflow
    from wfctl.records import RunResult
    from wfctl.state.store import StateStore


async def run_wfctl(
    workflow: Workflow,
    estimates: Mapping[str, float] | None = None,
    max_parallel: int | None = None,
    store: StateStore | None = None,
    engine: str = "events",
) -> RunResult:
    """One run; `store` makes it durable (the SQLite journal; on `engine="langgraph"`
    LangGraph's checkpoints too, in their own file)."""
    from wfctl import run_workflow
    from wfctl.engine import RunOptions

    options = RunOptions(estimates=estimates, max_parallel=max_parallel, store=store, engine=engine)
    result = await run_workflow(workflow, {}, options)
    if result.status != "completed":
        raise RuntimeError(
            f"wfctl run of {workflow.workflow_id} ended {result.status}: {result.error}"
        )
    return result


async def warm_up() -> None:
    """Import everything a run touches (engine, actions, journal, LangGraph) before timing."""
    from scenarios.baselines import build_langgraph, run_langgraph
    from scenarios.common import chain_dag
    from wfctl.state.store import StateStore

    tiny = Dag(
        "warm-up",
        {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c")},
        {"a": 0.0, "b": 0.001, "c": 0.0, "d": 0.0},
    )
    workflow = load_dag_workflow(tiny)
    await run_wfctl(workflow)
    await run_wfctl(workflow, engine="langgraph")
    with tempfile.TemporaryDirectory(prefix="wfctl-bench-state-") as state:
        store = StateStore(Path(state), create=True)
        try:
            await run_wfctl(workflow, store=store)
        finally:
            store.close()
    await run_langgraph(build_langgraph(tiny), 4)
    await run_langgraph(build_langgraph(chain_dag(3)), 3)
