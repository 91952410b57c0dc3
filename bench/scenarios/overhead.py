"""Scenario 2: per-step overhead of no-op steps, as a chain and as a wide fan-out."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from scenarios import prefect_peer
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
    from wfctl.state.store import StateStore

MAX_RATIO = 5.0  # wfctl within 5x of plain asyncio
MAX_PER_STEP = 1e-3  # and under 1 ms per step (issue 7: with the journal on)

WFCTL = "wfctl"
JOURNAL = "wfctl + SQLite journal"
LANGGRAPH_ENGINE = "wfctl --engine langgraph"  # the same compile on its LangGraph graph
FLOOR = "plain asyncio"
PREFECT = "Prefect 3 (local flow, task futures)"
JOURNAL_COST = "journal cost: wfctl + journal / wfctl"
MAX_JOURNAL_RATIO = 2.0  # the journal costs little: within 2x of the same run without it


async def scenario(
    steps: int, repeat: int, best_of_runs: int = 3, prefect_steps: int | None = None
) -> list[Row]:
    """`prefect_steps`: size of Prefect's runs (None: no Prefect). Prefect spends tens of
    milliseconds per task on this machine, so it runs a smaller DAG of the same shape
    and its time per step is compared; its per-step cost does not shrink with size."""
    from wfctl.state.store import StateStore

    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wfctl-bench-state-") as state:
        store = StateStore(Path(state), create=True)
        try:
            for dag in (chain_dag(steps), fanout_dag(steps)):
                small = None
                if prefect_steps:
                    small = (chain_dag if dag.name.startswith("chain") else fanout_dag)(
                        prefect_steps
                    )
                rows.extend(await _one_shape(dag, repeat, best_of_runs, store, small))
        finally:
            store.close()
    return rows


async def _one_shape(
    dag: Dag, repeat: int, best: int, store: StateStore, prefect_dag: Dag | None
) -> list[Row]:
    n = len(dag.deps)
    # Loading/validating and compiling the LangGraph graph happen before timing; what is
    # timed is one run: for wfctl the whole run_workflow call (plan, executor, steps).
    # Each round takes every system's best of up to `best` back-to-back runs (runs that
    # take more than half a second are not repeated; see common.best_of).
    workflow = load_dag_workflow(dag)
    graph = build_langgraph(dag)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        WFCTL: lambda: run_wfctl(workflow),
        JOURNAL: lambda: run_wfctl(workflow, store=store),
        LANGGRAPH_ENGINE: lambda: run_wfctl(workflow, engine="langgraph"),
        "LangGraph (node per step)": lambda: run_langgraph(graph, n),
        FLOOR: lambda: run_asyncio(dag),
    }
    sizes = dict.fromkeys(runs, n)
    if prefect_dag is not None:
        small = prefect_dag

        async def prefect_run() -> float:
            return prefect_peer.peer().run(small)

        prefect_peer.peer()  # start-up is not timed here (reported on its own row)
        runs[PREFECT] = prefect_run
        sizes[PREFECT] = len(small.deps)
    times: dict[str, list[float]] = defaultdict(list)
    for _, order in alternating(list(runs), repeat):
        for system in order:
            if system == PREFECT:  # one run per round, timed inside the Prefect child
                elapsed = await runs[system]()
                assert isinstance(elapsed, float)
                times[system].append(elapsed)
            else:
                times[system].append(await best_of(runs[system], best))
    # Per step from here on: Prefect's runs may be smaller than the others'.
    times = {s: [v / sizes[s] for v in values] for s, values in times.items()}

    floor = times[FLOOR]
    shape = "chain" if dag.name.startswith("chain") else "fan-out"
    label = f"overhead, {n} no-op steps, {shape}"
    rows = []
    for system, values in times.items():
        per_step = median(values)
        ratio = median(v / f for v, f in zip(values, floor, strict=True))
        name = system if sizes[system] == n else f"{system}, {sizes[system]} steps"
        row = Row(label, name, fmt_us(per_step))
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
        elif system == PREFECT:
            plain = median(p / w for p, w in zip(values, times[WFCTL], strict=True))
            durable = median(p / j for p, j in zip(values, times[JOURNAL], strict=True))
            row.ratio += f"; wfctl {plain:,.0f}x, + journal {durable:,.0f}x faster"
            row.target = "wfctl (+ journal) faster per step"
            row.met = durable > 1.0 and plain > 1.0
        else:
            row.target = "reference"
        rows.append(row)
    cost = median(j / w for j, w in zip(times[JOURNAL], times[WFCTL], strict=True))
    rows.insert(
        2,
        Row(
            label,
            JOURNAL_COST,
            f"+{fmt_us(median(times[JOURNAL]) - median(times[WFCTL]))}",
            f"{cost:.2f} x without journal",
            f"<= {MAX_JOURNAL_RATIO:g}x",
            cost <= MAX_JOURNAL_RATIO,
        ),
    )
    return rows
