"""Scenario 2: per-step overhead of no-op steps, as a chain and as a wide fan-out."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from scenarios.baselines import build_langgraph, run_asyncio, run_langgraph
from scenarios.common import (
    Dag,
    Row,
    alternating,
    chain_dag,
    fanout_dag,
    fmt_us,
    load_dag_workflow,
    median,
    timed,
)
from scenarios.wfctl_runs import run_wfctl

MAX_RATIO = 5.0  # wfctl within 5x of plain asyncio
MAX_PER_STEP = 1e-3  # and under 1 ms per step


async def scenario(steps: int, repeat: int) -> list[Row]:
    rows: list[Row] = []
    for dag in (chain_dag(steps), fanout_dag(steps)):
        rows.extend(await _one_shape(dag, repeat))
    return rows


async def _one_shape(dag: Dag, repeat: int) -> list[Row]:
    n = len(dag.deps)
    # Loading/validating and compiling the LangGraph graph happen before timing; what is
    # timed is one run: for wfctl the whole run_workflow call (plan, control graph, steps).
    workflow = load_dag_workflow(dag)
    graph = build_langgraph(dag)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        "wfctl": lambda: run_wfctl(workflow),
        "LangGraph (node per step)": lambda: run_langgraph(graph, n),
        "plain asyncio": lambda: run_asyncio(dag),
    }
    times: dict[str, list[float]] = defaultdict(list)
    for _, order in alternating(list(runs), repeat):
        for system in order:
            times[system].append(await timed(runs[system]))

    floor = times["plain asyncio"]
    shape = "chain" if dag.name.startswith("chain") else "fan-out"
    label = f"overhead, {n} no-op steps, {shape}"
    rows = []
    for system, values in times.items():
        per_step = median(values) / n
        ratio = median(v / f for v, f in zip(values, floor, strict=True))
        row = Row(label, system, fmt_us(per_step))
        if system == "plain asyncio":
            row.ratio, row.target = "1.0 × asyncio", "floor"
        else:
            row.ratio = f"{ratio:.1f} × asyncio"
            if system == "wfctl":
                row.target = f"<= {MAX_RATIO:g}× asyncio, < 1,000 µs/step"
                row.met = ratio <= MAX_RATIO and per_step < MAX_PER_STEP
            else:
                row.target = "reference"
        rows.append(row)
    return rows
