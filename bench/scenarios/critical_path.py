"""Scenario 1: makespan / critical path on seeded random DAGs of sleep steps, no slot limit."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

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


async def scenario(sizes: list[int], seed: int, repeat: int) -> list[Row]:
    rows: list[Row] = []
    for n in sizes:
        rows.extend(await _one_dag(random_dag(n, seed + n), repeat))
    return rows


async def _one_dag(dag: Dag, repeat: int) -> list[Row]:
    n = len(dag.deps)
    cp = dag.critical_path()
    workflow = load_dag_workflow(dag)  # no concurrency limit: max_parallel_steps = n
    graph = build_langgraph(dag)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "wfctl": lambda: run_wfctl(workflow),
        "LangGraph supersteps": lambda: run_langgraph(graph, n),
        "plain asyncio": lambda: run_asyncio(dag),
    }
    times: dict[str, list[float]] = defaultdict(list)
    for _, order in alternating(list(runs), repeat):
        for system in order:
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
