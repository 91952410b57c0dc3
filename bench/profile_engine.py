"""Profile one wfctl run of the overhead workflow (no-op steps) with cProfile.

    python bench/profile_engine.py                  # 2,000-step chain
    python bench/profile_engine.py --shape fanout --steps 2000 --top 30
    python bench/profile_engine.py --out chain.prof  # keep the raw profile (snakeviz, ...)
    python bench/profile_engine.py --breakdown      # where the time goes, without cProfile

Loading and validating the workflow and the first (warm-up) run are not profiled; what is
profiled is exactly what bench/run.py times: one `await run_workflow(workflow)`.
Two listings are printed: by own time (where the CPU goes) and by cumulative time
restricted to wfctl's own functions (which engine step costs what, callees included).

`--breakdown` measures instead of profiling (cProfile triples the run time and weighs
small functions unfairly): best-of-7 timings of the run as it is, of a 1-step workflow
(the fixed per-run cost: plan and executor set-up), of `compile_plan`
alone, of the run with `Executor.emit_state` replaced by a no-op (what the two events per
step cost), next to plain asyncio and to anyio's `TaskGroup.start_soon` vs asyncio's
`TaskGroup.create_task` for as many no-op tasks (what one task spawn per step costs).
The patches live in this process only.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import sys
import time
from collections.abc import Awaitable, Callable

from scenarios.common import chain_dag, fanout_dag, load_dag_workflow
from scenarios.wfctl_runs import run_wfctl, warm_up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("chain", "fanout"), default="chain")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="also dump the raw profile to this file")
    parser.add_argument(
        "--breakdown", action="store_true", help="time the parts instead of profiling"
    )
    args = parser.parse_args()
    if args.breakdown:
        asyncio.run(breakdown(args.steps))
        return 0

    dag = (chain_dag if args.shape == "chain" else fanout_dag)(args.steps)
    workflow = load_dag_workflow(dag)

    async def go() -> tuple[float, float]:
        await warm_up()
        start = time.perf_counter()
        await run_wfctl(workflow)  # unprofiled, for the per-step figure
        plain = time.perf_counter() - start
        profiler = cProfile.Profile()
        start = time.perf_counter()
        profiler.enable()
        await run_wfctl(workflow)
        profiler.disable()
        profiled = time.perf_counter() - start
        if args.out:
            profiler.dump_stats(args.out)
        _report(profiler, args.top)
        return plain, profiled

    plain, profiled = asyncio.run(go())
    n = args.steps
    print(
        f"{dag.name}: {plain / n * 1e6:.0f} µs/step unprofiled, "
        f"{profiled / n * 1e6:.0f} µs/step under cProfile"
    )
    return 0


async def _best(make: Callable[[], Awaitable[object]], runs: int = 7) -> float:
    times = []
    for _ in range(runs):
        gc.collect()
        start = time.perf_counter()
        await make()
        times.append(time.perf_counter() - start)
    return min(times)


async def breakdown(n: int) -> None:
    import anyio
    from scenarios.baselines import run_asyncio

    from wfctl.compile.plan import compile_plan
    from wfctl.engine import executor

    await warm_up()

    def us(seconds: float) -> str:
        return f"{seconds / n * 1e6:5.1f} µs/step"

    one = load_dag_workflow(chain_dag(1))
    fixed = await _best(lambda: run_wfctl(one), 15)

    async def nothing() -> None:
        pass

    async def anyio_spawns() -> None:
        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(nothing, name=f"step:{i}")

    async def asyncio_spawns() -> None:
        async with asyncio.TaskGroup() as tg:
            for _ in range(n):
                tg.create_task(nothing())

    spawn_anyio = await _best(anyio_spawns)
    spawn_asyncio = await _best(asyncio_spawns)
    print(f"fixed per-run cost (1-step workflow): {fixed * 1e3:.2f} ms = {us(fixed)} over {n}")
    print(
        f"task spawn: anyio start_soon {us(spawn_anyio)}, asyncio create_task {us(spawn_asyncio)}"
    )
    for make in (chain_dag, fanout_dag):
        dag = make(n)
        workflow = load_dag_workflow(dag)
        run = await _best(lambda: run_wfctl(workflow))  # noqa: B023
        floor = await _best(lambda: run_asyncio(dag))  # noqa: B023
        start = time.perf_counter()
        for _ in range(5):
            compile_plan(workflow)
        plan = (time.perf_counter() - start) / 5
        original = executor.Executor.emit_state
        executor.Executor.emit_state = lambda self, step_id, **extra: None  # type: ignore[method-assign]
        try:
            quiet = await _best(lambda: run_wfctl(workflow))  # noqa: B023
        finally:
            executor.Executor.emit_state = original  # type: ignore[method-assign]
        print(
            f"{dag.name}: run {us(run)} = {run / floor:.1f}x plain asyncio ({us(floor)}; "
            f"5x = {us(5 * floor)})\n"
            f"  fixed per-run {us(fixed)} ({fixed / run:.0%}), compile_plan {us(plan)} "
            f"({plan / run:.0%}), emit_state x2 {us(run - quiet)} ({(run - quiet) / run:.0%})"
        )


def _report(profiler: cProfile.Profile, top: int) -> None:
    for title, key, restrict in (
        ("own time (tottime)", "tottime", ()),
        ("cumulative time, wfctl functions", "cumulative", ("wfctl",)),
    ):
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer)
        stats.sort_stats(key).print_stats(*restrict, top)
        print(f"== {title} ==")
        lines = buffer.getvalue().splitlines()
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        print("\n".join(lines[start:]).rstrip())
        print()


if __name__ == "__main__":
    sys.exit(main())
