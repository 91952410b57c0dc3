"""Scenario 4 of issue 7: scarce slots, where critical-path-first ordering matters.

A chain of CHAIN x LINK seconds plus SHORTS independent steps of SHORT seconds, under
max_parallel_steps 2. The chain is listed first in the file (the order most favourable
to FIFO). Ideal: the chain keeps one slot busy the whole time and the short steps share
the other, makespan = max(chain, total work / 2). FIFO starts the chain's head, then queues
its next link behind every short step, so the chain only resumes once they are all done.

Three wfctl runs, all through `run_workflow`:
- critical-path-first with `estimates` = the known sleep durations (what durations
  learned from earlier runs would give);
- critical-path-first without estimates (every step estimated 1.0 s: ranks by step count);
- FIFO: the same run with every step's priority set to 0 in the execution plan, so ready
  steps start in file order and slots go to waiters in arrival order (PrioritySlots breaks
  ties by a sequence number). wfctl has no public switch for this (all-zero `estimates`
  no longer give FIFO: the plan breaks rank ties towards deeper steps), so the benchmark
  wraps `wfctl.engine.runner.compile_plan` for the FIFO runs only (`fifo_plans`).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from scenarios.common import Dag, Row, alternating, fmt_seconds, load_dag_workflow, median, timed
from scenarios.wfctl_runs import run_wfctl

LIMIT = 2
MIN_GAIN = 0.20  # at least 20% shorter makespan than FIFO

CP_KNOWN = "wfctl critical-path-first (estimates = durations)"
CP_BLIND = "wfctl critical-path-first (no estimates)"
FIFO = "wfctl FIFO (same run, all priorities 0)"


@contextlib.contextmanager
def fifo_plans() -> Iterator[None]:
    """While active, every execution plan wfctl compiles has all priorities 0: FIFO."""
    from wfctl.engine import runner

    original = runner.compile_plan

    def compile_fifo(*args: Any, **kwargs: Any) -> Any:
        plan = original(*args, **kwargs)
        return dataclasses.replace(plan, priority=dict.fromkeys(plan.rank, 0.0))

    runner.compile_plan = compile_fifo
    try:
        yield
    finally:
        runner.compile_plan = original


async def _fifo_run(workflow: Any, estimates: Mapping[str, float]) -> object:
    with fifo_plans():
        return await run_wfctl(workflow, estimates=estimates)


def scarce_dag(chain: int, link: float, shorts: int, short: float) -> Dag:
    deps: dict[str, tuple[str, ...]] = {}
    durations: dict[str, float] = {}
    for i in range(chain):
        deps[f"chain{i:02d}"] = (f"chain{i - 1:02d}",) if i else ()
        durations[f"chain{i:02d}"] = link
    for i in range(shorts):
        deps[f"short{i:02d}"] = ()
        durations[f"short{i:02d}"] = short
    return Dag(f"scarce-{chain}x{link:g}-{shorts}x{short:g}", deps, durations)


async def scenario(
    repeat: int, chain: int = 8, link: float = 0.100, shorts: int = 16, short: float = 0.050
) -> list[Row]:
    dag = scarce_dag(chain, link, shorts, short)
    workflow = load_dag_workflow(dag, max_parallel=LIMIT)
    known: Mapping[str, float] = dict(dag.durations)
    runs: dict[str, Callable[[], Awaitable[object]]] = {
        CP_KNOWN: lambda: run_wfctl(workflow, estimates=known),
        CP_BLIND: lambda: run_wfctl(workflow, estimates=None),
        FIFO: lambda: _fifo_run(workflow, known),
    }
    times: dict[str, list[float]] = defaultdict(list)
    for _, order in alternating(list(runs), repeat):
        for system in order:
            times[system].append(await timed(runs[system]))

    ideal = max(dag.critical_path(), dag.total_work() / LIMIT)
    label = (
        f"scarce slots (limit {LIMIT}): chain {chain}x{link * 1000:g} ms "
        f"+ {shorts}x{short * 1000:g} ms (ideal {ideal:.3f} s)"
    )
    rows = []
    for system, values in times.items():
        row = Row(label, system, f"makespan {fmt_seconds(median(values))}")
        if system == FIFO:
            row.ratio, row.target = f"{median(values) / ideal:.2f} x ideal", "baseline"
        else:
            gain = median(1 - v / f for v, f in zip(values, times[FIFO], strict=True))
            row.ratio = f"{gain:.0%} shorter than FIFO ({median(values) / ideal:.2f} x ideal)"
            row.target = f">= {MIN_GAIN:.0%} shorter"
            row.met = gain >= MIN_GAIN
        rows.append(row)
    return rows
