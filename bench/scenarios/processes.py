"""Scenarios 5 and 6: whole commands as child processes.

5. Start-up and validation: wall time of `python -c pass` (the floor: the interpreter's
   own start-up), `wfctl --help`, `wfctl validate` on 1 and on 200 workflow files, and
   `check-jsonschema --schemafile schemas/workflow.schema.json` on the same 1 and 200
   files (the same JSON Schema wfctl validates against; wfctl's semantic checks come on
   top). The 200 files are the examples under workflows/ renamed per copy
   (`bench_validate.generate`). Every command runs once per round, in alternating order;
   differences and ratios are taken within a round.
6. Memory: peak RSS (`ru_maxrss` of the child, from `os.wait4`) of `wfctl run` on a
   10,000-step no-op workflow (one root and 9,999 steps depending on it, no concurrency
   limit: every step is ready at once, the worst case for memory; the CLI's default SQLite
   journal on, plain output) and of `wfctl validate` on that file; `python -c pass` for reference.

Both run the installed console scripts (`wfctl`, `check-jsonschema` next to the Python
running the benchmark) with their bytecode cached, as in an installation: the children
get PYTHONPYCACHEPREFIX (one directory under the system's temp dir, kept between runs) and
no PYTHONDONTWRITEBYTECODE, and a first untimed run of each command writes the cache.
Every command is started through a bare `python -I -S` launcher that reports its peak RSS
(see `_LAUNCHER`); the launcher's ~15 ms are in every wall time alike, `python -c pass`
included, so the differences shown are the commands' own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from scenarios.common import Row, alternating, fanout_dag, median, workflow_yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "schemas" / "workflow.schema.json"

VALIDATE_EXTRA = 0.250  # wfctl validate <1 file> within 250 ms of `python -c pass`
MAX_RSS_MB = 300.0  # a 10,000-step run under 300 MB peak RSS

PYTHON = "python -c pass"


def console_script(name: str) -> list[str] | None:
    """The command's console script beside this interpreter, or on PATH; None if absent."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return [str(beside)]
    found = shutil.which(name)
    return [found] if found else None


def wfctl_command() -> list[str]:
    return console_script("wfctl") or [sys.executable, "-m", "wfctl"]


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # One cache kept between benchmark runs (.pyc files are checked against their sources).
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / "wfctl-bench-pycache")
    for name in ("CI", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
        env.pop(name, None)
    env["NO_COLOR"] = "1"
    return env


# A small launcher between the benchmark and the measured command. Linux keeps a process's
# peak RSS across fork and exec, so a command forked straight from the benchmark process
# (hundreds of MB with LangGraph and the runs behind it) would inherit that peak; the
# launcher is a bare interpreter (-I -S: ~10 MB, less than any command measured).
_LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status) & 0xFF)
"""


def run_child(command: list[str], env: dict[str, str], expect: int = 0) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one child process; output kept for errors only."""
    with tempfile.NamedTemporaryFile(prefix="wfctl-bench-rss-", mode="r") as rss:
        started = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, rss.name, *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
        wall = time.perf_counter() - started
        if proc.returncode != expect:
            text = proc.stdout.decode("utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{text}")
        return wall, int(rss.read() or 0) / 1024  # Linux: ru_maxrss in kilobytes


# -- 5. start-up and validation ---------------------------------------------------------


async def startup_scenario(files: int, repeat: int, warm: bool = True) -> list[Row]:
    from bench_validate import generate

    wfctl = wfctl_command()
    checker = console_script("check-jsonschema")
    with tempfile.TemporaryDirectory(prefix="wfctl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        directory = tmp / "workflows"
        directory.mkdir()
        paths = [str(p) for p in generate(directory, files)]
        env = child_env()
        commands: dict[str, list[str]] = {
            PYTHON: [sys.executable, "-c", "pass"],
            "wfctl --help": [*wfctl, "--help"],
            "wfctl validate <1 file>": [*wfctl, "validate", paths[0]],
            f"wfctl validate <{files} files>": [*wfctl, "validate", *paths],
        }
        if checker:
            schema = ["--schemafile", str(SCHEMA)]
            commands["check-jsonschema <1 file>"] = [*checker, *schema, paths[0]]
            commands[f"check-jsonschema <{files} files>"] = [*checker, *schema, *paths]
        for command in commands.values() if warm else ():  # bytecode caches, OS cache
            run_child(command, env)
        times: dict[str, list[float]] = defaultdict(list)
        for _, order in alternating(list(commands), repeat):
            for name in order:
                times[name].append(run_child(commands[name], env)[0])

    label = f"start-up and validation ({files} files = workflows/ examples renamed)"
    base = times[PYTHON]

    def extra(name: str) -> float:
        return median(t - b for t, b in zip(times[name], base, strict=True))

    rows = [Row(label, PYTHON, f"{median(base) * 1e3:.0f} ms", "floor", "floor")]
    for name in commands:
        if name == PYTHON:
            continue
        row = Row(label, name, f"{median(times[name]) * 1e3:.0f} ms")
        row.ratio = f"+{extra(name) * 1e3:.0f} ms vs python"
        if name == "wfctl validate <1 file>":
            row.target = f"<= +{VALIDATE_EXTRA * 1e3:.0f} ms vs python"
            row.met = extra(name) <= VALIDATE_EXTRA
        elif name == f"wfctl validate <{files} files>":
            if checker:
                checked = times[f"check-jsonschema <{files} files>"]
                ratio = median(w / c for w, c in zip(times[name], checked, strict=True))
                row.ratio += f"; {ratio:.2f} x check-jsonschema"
                row.target, row.met = "< 1.0 x check-jsonschema", ratio < 1.0
            else:
                row.target = "vs check-jsonschema: not installed"
        else:
            row.target = "reference"
        rows.append(row)
    if not checker:
        rows.append(
            Row(label, "check-jsonschema", "not installed", "", "pip install -e '.[bench]'")
        )
    return rows


# -- 6. memory --------------------------------------------------------------------------


async def memory_scenario(steps: int, repeat: int) -> list[Row]:
    wfctl = wfctl_command()
    with tempfile.TemporaryDirectory(prefix="wfctl-bench-") as tmp_name:
        tmp = Path(tmp_name)
        run_file = tmp / "fanout.yaml"
        run_file.write_text(workflow_yaml(fanout_dag(steps)), encoding="utf-8")
        env = child_env()
        counter = iter(range(1_000_000))

        def run_command(path: Path) -> list[str]:
            state = tmp / f"state-{next(counter)}"  # a fresh journal every run
            report = state / "report.json"
            return [*wfctl, "run", str(path), "--state-dir", str(state), "--no-live",
                    "--quiet", "--report", str(report)]  # fmt: skip

        commands = {
            PYTHON: lambda: [sys.executable, "-c", "pass"],
            f"wfctl run, {steps} steps fan-out (journal on)": lambda: run_command(run_file),
            f"wfctl validate <{steps}-step file>": lambda: [*wfctl, "validate", str(run_file)],
        }
        run_child(commands[PYTHON](), env)
        run_child([*wfctl, "--help"], env)  # bytecode cache
        rss: dict[str, list[float]] = defaultdict(list)
        wall: dict[str, list[float]] = defaultdict(list)
        for _, order in alternating(list(commands), repeat):
            for name in order:
                seconds, peak = run_child(commands[name](), env)
                rss[name].append(peak)
                wall[name].append(seconds)

    label = f"memory, peak RSS ({steps} no-op steps)"
    rows = []
    for name in commands:
        peak = median(rss[name])
        row = Row(label, name, f"{peak:.0f} MB", f"wall {median(wall[name]):.2f} s")
        if name.startswith("wfctl run"):
            row.target, row.met = f"< {MAX_RSS_MB:g} MB", peak < MAX_RSS_MB
        else:
            row.target = "reference"
        rows.append(row)
    return rows
