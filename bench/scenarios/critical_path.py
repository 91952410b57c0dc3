"""Scenario 1: makespan / critical path on seeded random DAGs of sleep steps, no slot limit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from scenarios import prefect_peer
from scenarios.baselines import build_langgraph, run_asyncio, run_langgraph
from scenarios.common import (
    Dag,
    Row,
    alternating,
    fmt_seconds,
    load_dag_workflow,
    median,
    random_dag,
    timed,
)
from scenarios.wfctl_runs import run_wfctl

TARGET = 1.05


PREFECT = "Prefect 3 (local flow, task futures)"
#: The same compile run by its own LangGraph graph (supersteps), beside the default.
LANGGRAPH_ENGINE = "wfctl --engine langgraph"


async def scenario(
    sizes: list[int], seed: int, repeat: int, prefect: bool, scale: float = 1.0
) -> list[Row]:
    """`scale` multiplies the sleeps (10-200 ms); --quick uses 0.1."""
    rows: list[Row] = []
    for n in sizes:
        dag = random_dag(n, seed + n, low=0.010 * scale, high=0.200 * scale)
        rows.extend(await _one_dag(dag, repeat, prefect))
    return rows


async def _prefect(dag: Dag) -> float:
    return prefect_peer.peer().run(dag)


async def _one_dag(dag: Dag, repeat: int, prefect: bool) -> list[Row]:
    n = len(dag.deps)
    cp = dag.critical_path()
    workflow = load_dag_workflow(dag)  # no concurrency limit: max_parallel_steps = n
    graph = build_langgraph(dag)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "wfctl": lambda: run_wfctl(workflow),
        LANGGRAPH_ENGINE: lambda: run_wfctl(workflow, engine="langgraph"),
        "LangGraph supersteps": lambda: run_langgraph(graph, n),
        "plain asyncio": lambda: run_asyncio(dag),
    }
    if prefect:
        prefect_peer.peer()  # start-up is not timed here (reported on its own row)
    times: dict[str, list[float]] = defaultdict(list)
    for _, order in alternating([*runs, PREFECT] if prefect else list(runs), repeat):
        for system in order:
            if system == PREFECT:  # timed inside the Prefect child, around the flow call
                times[system].append(await _prefect(dag))
            else:
                times[system].append(await timed(runs[system]))

    label = f"critical path, {n} steps (CP {cp:.3f} s)"
    rows = []
    for system, values in times.items():
        ratio = median(v / cp for v in values)
        is_wfctl = system == "wfctl"
        rows.append(
            Row(
                scenario=label,
                system=system,
                median=f"makespan {fmt_seconds(median(values))}",
                ratio=f"{ratio:.3f} x CP",
                target=f"<= {TARGET}" if is_wfctl else "reference",
                met=(ratio <= TARGET) if is_wfctl else None,
            )
        )
    return rows
