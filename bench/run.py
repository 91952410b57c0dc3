"""Run every wfctl scheduler benchmark and print one table of medians and same-run ratios.

    python bench/run.py                 # full run (3 rounds per scenario), ~2-3 minutes
    python bench/run.py --quick         # smoke run: small sizes, one round, a few seconds
    python bench/run.py --write         # also regenerate bench/RESULTS.md
    python bench/run.py --only overhead --repeat 5
    python bench/run.py --only live     # the live table's cost (issue 4)

Every scenario runs all the systems it compares in the same process, round after round,
alternating their order; ratios are taken within a round and then the median is shown.
Never compare an absolute time with one from another run: these machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import subprocess
import sys
import time
from collections.abc import Coroutine, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from scenarios import critical_path, live_view, overhead, scarce_slots
from scenarios.common import Row, render_table
from scenarios.wfctl_runs import warm_up

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
SCENARIOS = ("critical", "overhead", "scarce", "live")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (smoke)")
    parser.add_argument("--repeat", type=int, help="rounds per scenario (default 3; quick 1)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the random DAGs")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="random DAG sizes (default 50 500; quick 20)"
    )
    parser.add_argument(
        "--noop-steps", type=int, help="steps of the overhead workflows (default 2000; quick 200)"
    )
    parser.add_argument(
        "--live-steps",
        type=int,
        help="steps of the live-view workflow (default 500; quick 50)",
    )
    parser.add_argument(
        "--only", choices=SCENARIOS, action="append", help="run only this scenario (repeatable)"
    )
    parser.add_argument("--write", action="store_true", help=f"also write {RESULTS.name}")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed (default: exit 0)"
    )
    args = parser.parse_args(argv)
    if args.quick and args.write:
        parser.error("--write records a full run; drop --quick")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.sizes = args.sizes or ([20] if args.quick else [50, 500])
    args.noop_steps = args.noop_steps or (200 if args.quick else 2000)
    args.live_steps = args.live_steps or (50 if args.quick else 500)
    args.only = args.only or list(SCENARIOS)
    return args


async def run_all(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    if set(args.only) - {"live"}:  # the live scenario runs wfctl in child processes only
        await warm_up()
    if "critical" in args.only:
        rows += await _stage(
            "critical path", critical_path.scenario(args.sizes, args.seed, args.repeat)
        )
    if "overhead" in args.only:
        job = overhead.scenario(args.noop_steps, args.repeat, 1 if args.quick else 3)
        rows += await _stage("overhead", job)
    if "scarce" in args.only:
        if args.quick:
            job = scarce_slots.scenario(args.repeat, chain=4, link=0.05, shorts=8, short=0.025)
        else:
            job = scarce_slots.scenario(args.repeat)
        rows += await _stage("scarce slots", job)
    if "live" in args.only:
        job = live_view.scenario(args.live_steps, args.repeat, warm=not args.quick)
        rows += await _stage("live view", job)
    return rows


async def _stage(name: str, job: Coroutine[Any, Any, list[Row]]) -> list[Row]:
    print(f"running {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    rows = await job
    print(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
    return rows


def machine() -> list[str]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def ver(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    try:
        commit = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=BENCH_DIR,
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
    except OSError:
        commit = ""
    try:
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs; load average "
        f"{load} when the run ended (other jobs share the machine: ratios, not times)",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"wfctl {ver('wfctl')} ({commit or 'unknown commit'}), langgraph {ver('langgraph')}, "
        f"anyio {ver('anyio')}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    rows = asyncio.run(run_all(args))
    elapsed = time.perf_counter() - started
    judged = [r for r in rows if r.met is not None]
    met = sum(1 for r in judged if r.met)
    table = render_table(rows)
    settings = (
        f"{args.repeat} round(s), alternating order; seed {args.seed}; DAG sizes "
        f"{', '.join(map(str, args.sizes))}; {args.noop_steps} no-op steps "
        f"(best of up to {1 if args.quick else 3} back-to-back runs per round); "
        f"{args.live_steps} live-view steps" + ("; QUICK smoke run" if args.quick else "")
    )
    summary = f"Targets met: {met} of {len(judged)} ({elapsed:.0f} s in all)"
    print(table)
    print()
    print(settings)
    print(summary)
    if args.write:
        RESULTS.write_text(
            "\n".join(
                [
                    "# wfctl benchmark results",
                    "",
                    "Generated by `python bench/run.py --write`; see README.md for what each "
                    "scenario measures. Medians over the rounds; ratios are taken within a "
                    "round, then the median is shown.",
                    "",
                    *machine(),
                    f"- Settings: {settings}",
                    "",
                    table,
                    "",
                    summary,
                    "",
                ]
            ),
            encoding="utf-8",
        )
        print(f"wrote {RESULTS}", file=sys.stderr)
    return 1 if args.check and met < len(judged) else 0


if __name__ == "__main__":
    sys.exit(main())
