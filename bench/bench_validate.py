"""How long `wfctl validate` takes next to Python's own start-up (issue #2's target:
200 files well under a second more than `python -c pass`).

Generates 200 realistic workflow files (the examples under workflows/, each copy with its
step ids, workflow id and names renamed, so no two files share their expressions) in a
temporary directory, checks that they all validate, then times, as subprocesses (wall
time, median of N runs, the three commands alternating so that machine noise hits all
of them alike):

    python -c pass
    wfctl validate <one file>
    wfctl validate <the directory of 200 files>

Usage: python bench/bench_validate.py [--files 200] [--runs 5] [--no-bytecode-cache]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "workflows").glob("*.yaml"))
STEP_ID_RE = re.compile(r"step_id:\s*([A-Za-z_][A-Za-z0-9_-]*)")


USES_RE = re.compile(r"^[ \t]*uses:.*$", re.MULTILINE)


def variant(text: str, index: int) -> str:
    """The example with every step id (and its uses) and the workflow id renamed."""
    # A sub-workflow's path is not a step id, even where a step shares its name.
    calls = USES_RE.findall(text)
    text = USES_RE.sub("@@USES@@", text)
    for step_id in sorted(set(STEP_ID_RE.findall(text)), key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(step_id)}(?![\w-])", f"{step_id}_{index}", text)
    for call in calls:
        text = text.replace("@@USES@@", call, 1)
    text = re.sub(r"^workflow_id: .*$", f"workflow_id: bench_{index}", text, flags=re.MULTILINE)
    return re.sub(
        r"^name: (.*)$", rf"name: \1 (variant {index})", text, count=1, flags=re.MULTILINE
    )


def generate(directory: Path, count: int) -> list[Path]:
    """`count` renamed copies of the examples; the sub-workflows they call beside them."""
    for source in EXAMPLES:  # as called by `uses: ./name.yaml`, not among the files listed
        (directory / source.name).write_text(source.read_text("utf-8"), "utf-8")
    files = []
    for i in range(count):
        source = EXAMPLES[i % len(EXAMPLES)]
        path = directory / f"{source.stem}-{i:03d}.yaml"
        path.write_text(variant(source.read_text("utf-8"), i), "utf-8")
        files.append(path)
    return files


def timed(command: list[str], expect: int, env: dict[str, str]) -> tuple[float, float]:
    """(wall time, CPU time user+sys) of one run of `command` as a subprocess."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != expect:
        raise SystemExit(
            f"{' '.join(command)} exited {result.returncode}:\n{result.stdout}{result.stderr}"
        )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", type=int, default=200, help="number of workflow files")
    parser.add_argument("--runs", type=int, default=5, help="runs per command (median)")
    parser.add_argument(
        "--no-bytecode-cache",
        action="store_true",
        help="keep PYTHONDONTWRITEBYTECODE as it is: wfctl's modules are then compiled "
        "from source on every run (by default they are cached, as in an installation)",
    )
    args = parser.parse_args()

    wfctl = [sys.executable, "-m", "wfctl", "validate"]
    with tempfile.TemporaryDirectory(prefix="wfctl-bench-") as tmp:
        directory = Path(tmp) / "workflows"
        directory.mkdir()
        files = generate(directory, args.files)
        env = dict(os.environ)
        if not args.no_bytecode_cache:
            # An installed wfctl has its .pyc files; a checkout run with
            # PYTHONDONTWRITEBYTECODE=1 recompiles every module on every run.
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        # All files valid; this run also writes the bytecode and warms the OS cache.
        listed = [str(f) for f in files]  # not the called sub-workflows beside them
        timed([*wfctl, *listed], expect=0, env=env)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "wfctl validate <1 file>": [*wfctl, str(files[0])],
            f"wfctl validate <{args.files} files>": [*wfctl, *listed],
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for run in range(args.runs):
            # Alternate the order so that a slow moment does not always hit one command.
            order = names if run % 2 == 0 else names[::-1]
            for name in order:
                wall, used = timed(commands[name], expect=0, env=env)
                times[name].append(wall)
                cpu[name].append(used)

    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    base = medians["python -c pass"]
    cache = "without" if args.no_bytecode_cache else "with"
    print(
        f"{args.files} files, median of {args.runs} runs (wall time of a subprocess, "
        f"{cache} cached bytecode)\n"
    )
    print(
        f"{'command':<28} {'median':>8} {'min':>8} {'max':>8} {'vs python':>10}"
        f" {'extra':>8} {'CPU':>8}"
    )
    for name in names:
        values = times[name]
        print(
            f"{name:<28} {medians[name]:>7.3f}s {min(values):>7.3f}s {max(values):>7.3f}s"
            f" {medians[name] / base:>9.1f}x {medians[name] - base:>+7.3f}s"
            f" {cpu_medians[name]:>7.3f}s"
        )
    extra = medians[names[-1]] - base
    per_file = (medians[names[-1]] - medians[names[1]]) / max(args.files - 1, 1)
    print(f"\nper additional file: {per_file * 1000:.2f} ms")
    verdict = "meets" if extra < 1.0 else "MISSES"
    print(
        f"{args.files} files: {extra:.3f}s more than Python's start-up ({verdict} the < 1 s target)"
    )


if __name__ == "__main__":
    main()
