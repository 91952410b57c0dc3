"""Scenario 2: per-step overhead of no-op steps, as a chain and as a wide fan-out."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scenarios.baselines import build_langgraph, run_asyncio, run_langgraph
from scenarios.common import (
    Dag,
    Row,
    alternating,
    best_of,
    chain_dag,
    fanout_dag,
    fmt_us,
    load_dag_workflow,
    median,
)
from scenarios.wfctl_runs import run_wfctl

if TYPE_CHECKING:
    from wfctl.store import StateStore

MAX_RATIO = 5.0  # wfctl within 5x of plain asyncio
MAX_PER_STEP = 1e-3  # and under 1 ms per step (issue 7: with the journal on)

WFCTL = "wfctl"
JOURNAL = "wfctl + SQLite journal"
FLOOR = "plain asyncio"


async def scenario(steps: int, repeat: int, best_of_runs: int = 3) -> list[Row]:
    from wfctl.store import StateStore

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wfctl-bench-state-") as state:
        store = StateStore(Path(state), create=True)
        try:
            for dag in (chain_dag(steps), fanout_dag(steps)):
                rows.extend(await _one_shape(dag, repeat, best_of_runs, store))
        finally:
            store.close()
    return rows


async def _one_shape(dag: Dag, repeat: int, best: int, store: StateStore) -> list[Row]:
    n = len(dag.deps)
    # Loading/validating and compiling the LangGraph graph happen before timing; what is
    # timed is one run: for wfctl the whole run_workflow call (plan, control graph, steps).
    # Each round takes every system's best of up to `best` back-to-back runs (runs that
    # take more than half a second are not repeated; see common.best_of).
    workflow = load_dag_workflow(dag)
    graph = build_langgraph(dag)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        WFCTL: lambda: run_wfctl(workflow),
        JOURNAL: lambda: run_wfctl(workflow, store=store),
        "LangGraph (node per step)": lambda: run_langgraph(graph, n),
        FLOOR: lambda: run_asyncio(dag),
    }
    times: dict[str, list[float]] = defaultdict(list)
    for _, order in alternating(list(runs), repeat):
        for system in order:
            times[system].append(await best_of(runs[system], best))

    floor = times[FLOOR]
    shape = "chain" if dag.name.startswith("chain") else "fan-out"
    label = f"overhead, {n} no-op steps, {shape}"
    rows = []
    for system, values in times.items():
        per_step = median(values) / n
        ratio = median(v / f for v, f in zip(values, floor, strict=True))
        row = Row(label, system, fmt_us(per_step))
        if system == FLOOR:
            row.ratio, row.target = "1.0 x asyncio", "floor"
            rows.append(row)
            continue
        row.ratio = f"{ratio:.1f} x asyncio"
        if system == WFCTL:
            row.target = f"<= {MAX_RATIO:g}x asyncio, < 1,000 µs/step"
            row.met = ratio <= MAX_RATIO and per_step < MAX_PER_STEP
        elif system == JOURNAL:
            row.target = "< 1,000 µs/step"
            row.met = per_step < MAX_PER_STEP
        else:
            row.target = "reference"
        rows.append(row)
    return rows
