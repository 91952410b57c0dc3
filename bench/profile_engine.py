"""Profile one wfctl run of the overhead workflow (no-op steps) with cProfile.

    python bench/profile_engine.py                  # 2,000-step chain
    python bench/profile_engine.py --shape fanout --steps 2000 --top 30
    python bench/profile_engine.py --out chain.prof  # keep the raw profile (snakeviz, ...)

Loading and validating the workflow and the first (warm-up) run are not profiled; what is
profiled is exactly what bench/run.py times: one `await run_workflow(workflow)`.
Two listings are printed: by own time (where the CPU goes) and by cumulative time
restricted to wfctl's own functions (which engine step costs what, callees included).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import sys
import time

from scenarios.common import chain_dag, fanout_dag, load_dag_workflow
from scenarios.wfctl_runs import run_wfctl, warm_up


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=("chain", "fanout"), default="chain")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--out", help="also dump the raw profile to this file")
    args = parser.parse_args()

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
