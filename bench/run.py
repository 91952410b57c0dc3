"""Benchmark wfctl against its peers and print one table of medians and same-run ratios.

    python bench/run.py                 # full run (3 rounds), rewrites bench/RESULTS.md
    python bench/run.py --quick         # smoke run: small sizes, one round, no RESULTS.md
    python bench/run.py --only overhead --runs 5
    python bench/run.py --no-prefect    # without Prefect (its start-up alone takes ~10 s)
    python bench/run.py --only live     # the live table's cost (issue 4)
    python bench/run.py --only subflows # a 100-cell matrix of sub-workflow calls (issue 12)

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

from scenarios import (
    critical_path,
    live_view,
    overhead,
    prefect_peer,
    processes,
    ray_scenario,
    scale,
    scarce_slots,
    subflows,
    subprocess_steps,
)
from scenarios.common import Row, fmt_seconds, median, render_table
from scenarios.wfctl_runs import warm_up

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "RESULTS.md"
SCENARIOS = (
    "critical", "overhead", "subprocess", "scarce", "startup", "memory", "live", "scale", "ray",
    "subflows",
)  # fmt: skip
IN_PROCESS = {"critical", "overhead", "subprocess", "scarce", "subflows"}  # need the warm-up


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench/run.py", description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, one round (smoke)")
    parser.add_argument(
        "--runs",
        "--repeat",
        dest="repeat",
        type=int,
        help="rounds per scenario (default 3; quick 1)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random DAGs")
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="random DAG sizes (default 50 500; quick 20)"
    )
    parser.add_argument(
        "--noop-steps", type=int, help="steps of the overhead workflows (default 2000; quick 200)"
    )
    parser.add_argument(
        "--prefect-steps",
        type=int,
        help="steps of Prefect's overhead runs (default 200; quick 20)",
    )
    parser.add_argument("--no-prefect", action="store_true", help="leave Prefect out")
    parser.add_argument(
        "--shell-steps", type=int, help="`true` steps of the subprocess scenario (default 500)"
    )
    parser.add_argument(
        "--files", type=int, help="files of the validation scenario (default 200; quick 20)"
    )
    parser.add_argument(
        "--memory-steps", type=int, help="steps of the memory scenario (default 10000)"
    )
    parser.add_argument(
        "--live-steps",
        type=int,
        help="steps of the live-view workflow (default 500; quick 50)",
    )
    parser.add_argument(
        "--scale-sizes",
        type=int,
        nargs="+",
        help="step counts of the scale scenario (default 1000 10000 100000; quick 200 1000)",
    )
    parser.add_argument(
        "--only", choices=SCENARIOS, action="append", help="run only this scenario (repeatable)"
    )
    parser.add_argument(
        "--write",
        action="store_true",
        help=f"write {RESULTS.name} (the default for a full run: no --quick, no --only)",
    )
    parser.add_argument("--no-write", action="store_true", help=f"never write {RESULTS.name}")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when a target is missed (default: exit 0)"
    )
    args = parser.parse_args(argv)
    if args.quick and args.write:
        parser.error("--write records a full run; drop --quick")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--runs must be at least 1")
    args.repeat = args.repeat or (1 if args.quick else 3)
    args.sizes = args.sizes or ([20] if args.quick else [50, 500])
    args.noop_steps = args.noop_steps or (200 if args.quick else 2000)
    args.live_steps = args.live_steps or (50 if args.quick else 500)
    args.scale_sizes = args.scale_sizes or ([200, 1000] if args.quick else [1000, 10_000, 100_000])
    args.prefect_steps = args.prefect_steps or (20 if args.quick else 200)
    args.shell_steps = args.shell_steps or (40 if args.quick else 500)
    args.files = args.files or (20 if args.quick else 200)
    args.memory_steps = args.memory_steps or (500 if args.quick else 10_000)
    full = not args.quick and not args.only
    args.write = not args.no_write and (args.write or full)
    args.only = args.only or list(SCENARIOS)
    args.prefect = not args.no_prefect and prefect_peer.available()
    return args


async def run_all(args: argparse.Namespace) -> list[Row]:
    try:
        return await _run_all(args)
    finally:
        prefect_peer.close_peer()


async def _run_all(args: argparse.Namespace) -> list[Row]:
    rows: list[Row] = []
    if set(args.only) & IN_PROCESS:  # the others run wfctl in child processes only
        await warm_up()
    if args.prefect and {"critical", "overhead"} & set(args.only):
        rows += _start_prefect(args)
        prefect_row = rows[-1]
    elif {"critical", "overhead"} & set(args.only):
        why = "--no-prefect" if args.no_prefect else "not installed: pip install -e '.[bench]'"
        rows.append(Row("Prefect", "Prefect 3", "not run", "", why))
    if "critical" in args.only:
        job = critical_path.scenario(
            args.sizes, args.seed, args.repeat, args.prefect, scale=0.1 if args.quick else 1.0
        )
        rows += await _stage("critical path", job)
    if "overhead" in args.only:
        job = overhead.scenario(
            args.noop_steps,
            args.repeat,
            1 if args.quick else 3,
            args.prefect_steps if args.prefect else None,
        )
        rows += await _stage("overhead", job)
    if "subprocess" in args.only:
        # Runs of under a second, sensitive to noise: twice the rounds (at least 5).
        runs = max(5, 2 * args.repeat) if not args.quick else args.repeat
        job = subprocess_steps.scenario(args.shell_steps, runs)
        rows += await _stage("subprocess steps", job)
    if "scarce" in args.only:
        if args.quick:
            job = scarce_slots.scenario(args.repeat, chain=4, link=0.05, shorts=8, short=0.025)
        else:
            job = scarce_slots.scenario(args.repeat)
        rows += await _stage("scarce slots", job)
    if "startup" in args.only:
        # Short commands: twice the rounds (at least 5) to steady the medians.
        runs = max(5, 2 * args.repeat) if not args.quick else args.repeat
        job = processes.startup_scenario(args.files, runs, warm=not args.quick)
        rows += await _stage("start-up and validation", job)
    if "memory" in args.only:
        job = processes.memory_scenario(args.memory_steps, args.repeat)
        rows += await _stage("memory", job)
    if "live" in args.only:
        job = live_view.scenario(args.live_steps, args.repeat, warm=not args.quick)
        rows += await _stage("live view", job)
    if "scale" in args.only:
        # Minutes at 100,000 steps: one round; CPU time per step is steady between rounds.
        rows += await _stage("scale", scale.scenario(args.scale_sizes, 1))
    if "ray" in args.only:
        steps, size = (20, 20) if args.quick else (500, 50)
        job = ray_scenario.scenario(steps, size, args.seed, args.repeat, 0.1 if args.quick else 1)
        rows += await _stage("ray", job)
    if "subflows" in args.only:
        # A 100-cell matrix of 3-step sub-workflows (issue 12): makespan and per-step cost.
        job = subflows.scenario(100, args.repeat, 0.02 if args.quick else 0.1)
        rows += await _stage("sub-workflows", job)
    peer = prefect_peer.started_peer()
    if peer is not None and len(peer.settle_seconds) > 1:
        waits = peer.settle_seconds[1:]
        prefect_row.notes.append(
            f"after each run, waited {median(waits):.1f} s (median; max {max(waits):.1f} s) "
            "for its server to go quiet"
        )
        prefect_row.ratio += "; " + prefect_row.notes[-1]
    return rows


def _start_prefect(args: argparse.Namespace) -> list[Row]:
    """Start the Prefect child (import, ephemeral server, first flow): its own row."""
    print("starting Prefect (ephemeral server) ...", file=sys.stderr, flush=True)
    label = "Prefect start-up (spawn, import, ephemeral server, first flow)"
    try:
        peer = prefect_peer.peer()
    except Exception as exc:  # reported in the table; the rest runs without Prefect
        args.prefect = False
        message = str(exc).splitlines()[0][:120]
        print(f"  Prefect failed to start: {exc}", file=sys.stderr, flush=True)
        return [Row("Prefect", "Prefect 3", "FAILED to start", message, "")]
    print(f"  Prefect: {peer.startup:.1f} s", file=sys.stderr, flush=True)
    return [
        Row(
            label,
            f"Prefect {prefect_peer.prefect_version()}",
            fmt_seconds(peer.startup),
            f"import {peer.import_seconds:.2f} s, first flow {peer.first_flow_seconds:.2f} s",
            "reported once, not timed in the scenarios",
        )
    ]


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
        kib = next(
            int(line.split()[1])
            for line in Path("/proc/meminfo").read_text().splitlines()
            if line.startswith("MemTotal:")
        )
        memory = f"{kib / 1024 / 1024:.1f} GiB RAM"
    except (OSError, StopIteration, ValueError):
        memory = "RAM unknown"
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 0
    try:
        load = " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        load = "unknown"
    return [
        f"- Date: {dt.datetime.now(dt.UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {platform.platform()}, {cpu}, {os.cpu_count()} CPUs ({usable} usable), "
        f"{memory}; load average "
        f"{load} when the run ended (other jobs share the machine: ratios, not times)",
        f"- Python {platform.python_version()} ({platform.python_implementation()}); "
        f"wfctl {ver('wfctl')} ({commit or 'unknown commit'}), langgraph {ver('langgraph')}, "
        f"anyio {ver('anyio')}, prefect {ver('prefect')}, check-jsonschema "
        f"{ver('check-jsonschema')}, jsonschema {ver('jsonschema')}",
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
        f"{args.repeat} round(s), alternating order"
        + ("" if args.quick else f" ({max(5, 2 * args.repeat)} for subprocess and start-up)")
        + f"; seed {args.seed}; DAG sizes "
        f"{', '.join(map(str, args.sizes))}; {args.noop_steps} no-op steps "
        f"(best of up to {1 if args.quick else 3} back-to-back runs per round); "
        + (f"Prefect: {args.prefect_steps} steps per overhead run; " if args.prefect else "")
        + f"{args.shell_steps} `true` steps; {args.files} files to validate; "
        f"{args.memory_steps} steps for memory; {args.live_steps} live-view steps"
        + ("; QUICK smoke run" if args.quick else "")
    )
    summary = f"Targets met: {met} of {len(judged)} ({elapsed:.0f} s in all)"
    missed = [f"{r.scenario}: {r.system}" for r in judged if not r.met]
    if missed:
        summary += "\n\nMissed:\n" + "\n".join(f"- {m}" for m in missed)
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
                    "Generated by `python bench/run.py`; see README.md for what each "
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
