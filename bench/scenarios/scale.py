"""Scale (issue 15): what each command costs per step, from 1,000 to 100,000 steps.

Three shapes of no-op steps (a chain, a fan-out from one root, a random DAG where each step
depends on 1-3 earlier ones) at each size. For every shape and size, as child processes:

- `wfctl validate FILE`;
- `wfctl run FILE` (journal on, `--no-live --quiet`, a report written): CPU time and peak RSS;
- `wfctl run FILE --dry-run` (the plan's waves);
- `wfctl show RUN` of the completed run (the journal replayed);
- `wfctl resume RUN` of a run SIGKILLed at 50 %: the step that started halfway through the
  completed run (its report's start times) kills its own `wfctl` (`kill -9 $PPID`, once: a
  marker file stops it the second time), so the kill lands halfway every round without
  polling (the middle of the file order is not: the random DAG ran 85 % of its 10k steps
  before it, and 15 % of its 100k, so resume did different shares of the work);

and in this process, the live table's frame (120 x 40) with half the steps completed.

The figure is the marginal CPU time per step (user + system of the child, `os.wait4`): the
command's median CPU on N steps minus its median CPU on a 10-step workflow of the same
shape, over N - 10 (sizes up to 2,000 are measured five times a round: their marginal CPU
is small beside the start-up). Start-up (about a second of imports for `run`) is the same at every
size and would hide a superlinear term; wall time on a shared 2-core machine is noise.
The target: at the largest size, every command's per-step cost within 1.3 x of the
smallest size's (linear cost), and the largest run under 1 GB peak RSS. A frame's cost must
not grow with the steps at all (only the visible rows are drawn), so its row compares frame
times directly.
"""

from __future__ import annotations

import gc
import json
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scenarios.common import Dag, Row, chain_dag, fanout_dag, median, workflow_yaml
from scenarios.processes import child_env, wfctl_command

LINEAR = 1.3  # per-step cost at the largest size / at the smallest
MAX_RSS_MB = 1024.0  # the largest run's peak RSS

# Like processes._LAUNCHER, plus the child's CPU time: "maxrss_kb utime stime".
_LAUNCHER = """
import os, sys
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {usage.ru_utime} {usage.ru_stime}")
code = os.waitstatus_to_exitcode(status)
sys.exit(128 - code if code < 0 else code)
"""


@dataclass(frozen=True)
class Cost:
    cpu: float  # seconds, user + system
    rss_mb: float


def measure(command: list[str], env: dict[str, str], expect: int = 0) -> Cost:
    """CPU time and peak RSS of one child; its output is kept for errors only."""
    with tempfile.NamedTemporaryFile(prefix="wfctl-bench-cpu-", mode="r") as usage:
        proc = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, usage.name, *command],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            check=False,
        )
        if proc.returncode != expect:
            text = proc.stdout.decode("utf-8", errors="replace")[-3000:]
            raise RuntimeError(f"{' '.join(command)} exited {proc.returncode}:\n{text}")
        rss, user, system = usage.read().split()
        return Cost(float(user) + float(system), int(rss) / 1024)


def random_dag_fast(n: int, seed: int) -> Dag:
    """common.random_dag's shape, built in O(n) (sampling indices, not slicing ids)."""
    rng = random.Random(seed)
    ids = [f"s{i:06d}" for i in range(n)]
    deps: dict[str, tuple[str, ...]] = {}
    for i, step in enumerate(ids):
        k = min(i, rng.randint(1, 3))
        deps[step] = tuple(ids[j] for j in sorted(rng.sample(range(i), k))) if k else ()
    return Dag(f"random-{n}", deps, dict.fromkeys(ids, 0.0))


SHAPES: dict[str, Callable[[int], Dag]] = {
    "chain": chain_dag,
    "fan-out": fanout_dag,
    "random DAG": lambda n: random_dag_fast(n, 1),
}


def _middle_of_run(report: Path) -> str:
    """The step that started halfway through a completed run (ties: the file's order)."""
    steps = json.loads(report.read_text(encoding="utf-8"))["steps"]
    return sorted(steps, key=lambda s: steps[s]["started_at"])[len(steps) // 2]


def _killing_yaml(dag: Dag, marker: Path, middle: str) -> str:
    """The workflow with step `middle` replaced by one that kills wfctl."""
    command = f"[ -e {marker} ] || {{ touch {marker}; kill -9 $PPID; }}"
    lines = workflow_yaml(dag).splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"  - {{step_id: {middle},"):
            after = line.split("action: noop", 1)[1]
            lines[i] = (
                f"  - {{step_id: {middle}, action: shell, "
                f"with: {{command: {json.dumps(command)}}}{after}"
            )
    return "\n".join(lines) + "\n"


def _run_id(state: Path, env: dict[str, str]) -> str:
    out = subprocess.run(
        [*wfctl_command(), "runs", "--json", "--state-dir", str(state)],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    [run] = json.loads(out)
    return str(run["run_id"])


def _commands(shape: str, size: int, tmp: Path, env: dict[str, str]) -> dict[str, Cost]:
    """Every command once on one shape and size (a fresh state dir per round)."""
    wfctl = wfctl_command()
    dag = SHAPES[shape](size)
    path = tmp / "workflow.yaml"
    path.write_text(workflow_yaml(dag), encoding="utf-8")
    state = tmp / "state"
    quiet = ["--no-live", "--quiet", "--state-dir", str(state)]
    costs = {
        "validate": measure([*wfctl, "validate", str(path)], env),
        "run": measure([*wfctl, "run", str(path), *quiet, "--report", str(tmp / "r.json")], env),
        "dry-run": measure([*wfctl, "run", str(path), "--dry-run"], env),
    }
    costs["show"] = measure([*wfctl, "show", _run_id(state, env), "--state-dir", str(state)], env)
    killed = tmp / "killed.yaml"
    middle = _middle_of_run(tmp / "r.json")
    killed.write_text(_killing_yaml(dag, tmp / "marker", middle), encoding="utf-8")
    state2 = tmp / "state2"
    kill = [*wfctl, "run", str(killed), "--no-live", "--quiet", "--state-dir", str(state2)]
    measure(kill, env, expect=137)
    resume = [*wfctl, "resume", _run_id(state2, env), "--no-live", "--quiet"]
    costs["resume after a kill at 50 %"] = measure([*resume, "--state-dir", str(state2)], env)
    return costs


def frame_seconds(size: int, frames: int = 20) -> float:
    """Median time to render one 120 x 40 live frame with half of `size` steps done."""
    import io

    from scenarios.common import load_dag_workflow
    from wfctl.events import StepStateChanged
    from wfctl.model import StepStatus
    from wfctl.view.live import LiveTable

    workflow = load_dag_workflow(fanout_dag(size))
    table = LiveTable(workflow, io.StringIO())
    for i, step_id in enumerate(workflow.all_steps):
        status = StepStatus.COMPLETED if i < size // 2 else StepStatus.PENDING
        table(StepStateChanged("bench", 0.0, step_id=step_id, status=status, duration=0.001))
    # The frame's own cost: the rows built above are moved out of the collector's way (a
    # full collection walks every object of the process, whoever allocated last).
    gc.collect()
    gc.freeze()
    times = []
    for _ in range(frames):
        began = time.perf_counter()
        table.render(120, 40)
        times.append(time.perf_counter() - began)
    gc.unfreeze()
    return median(times)


BASE = 10  # steps of the workflow whose cost is subtracted (start-up, fixed work)
# Sizes up to SMALL are measured SMALL_ROUNDS times a round: at 1,000 steps the marginal
# CPU is 0.05-0.2 s against a second of start-up, and one sample of it swung the 100k / 1k
# ratio from 2.6 to 5.3 between two runs of the same code.
SMALL, SMALL_ROUNDS = 2_000, 5


def _per_step(costs: dict[int, list[Cost]], size: int) -> float:
    marginal = median(c.cpu for c in costs[size]) - median(b.cpu for b in costs[BASE])
    return max(marginal, 0.0) / (size - BASE)


def _rows_for(shape: str, command: str, costs: dict[int, list[Cost]]) -> Row:
    sizes = sorted(n for n in costs if n != BASE)
    small, large = sizes[0], sizes[-1]
    cells = ", ".join(f"{n:,}: {_per_step(costs, n) * 1e6:.0f} µs" for n in sizes)
    row = Row(f"scale, {shape}", f"wfctl {command}", f"CPU per step: {cells}")
    row.target = f"<= {LINEAR} x"
    if _per_step(costs, small) <= 0:  # too few steps to rise above the start-up's noise
        row.ratio = f"{small:,} steps: below noise"
    else:
        ratio = _per_step(costs, large) / _per_step(costs, small)
        row.ratio = f"{ratio:.2f} x per step ({large:,} vs {small:,})"
        row.met = ratio <= LINEAR
    row.notes.append(f"minus the {BASE}-step workflow's CPU")
    if command == "run":
        peak = median(c.rss_mb for c in costs[large])
        row.median += f"; peak RSS at {large:,}: {peak:.0f} MB"
        row.target += f", < {MAX_RSS_MB:.0f} MB"
        row.met = row.met is not False and peak < MAX_RSS_MB
    return row


async def scenario(sizes: Sequence[int], repeat: int) -> list[Row]:
    env = child_env()
    subprocess.run([*wfctl_command(), "--help"], capture_output=True, env=env, check=True)
    rows: list[Row] = []
    for shape in SHAPES:
        costs: dict[str, dict[int, list[Cost]]] = defaultdict(lambda: defaultdict(list))
        for _ in range(repeat):
            for size in (BASE, *sizes):
                for _ in range(SMALL_ROUNDS if size <= SMALL else 1):
                    with tempfile.TemporaryDirectory(prefix="wfctl-bench-scale-") as tmp:
                        for command, cost in _commands(shape, size, Path(tmp), env).items():
                            costs[command][size].append(cost)
        rows += [_rows_for(shape, command, by_size) for command, by_size in costs.items()]
    frames = {n: frame_seconds(n) for n in sizes}
    small, large = min(sizes), max(sizes)
    cells = ", ".join(f"{n:,}: {frames[n] * 1e3:.1f} ms" for n in sizes)
    row = Row("scale, live table", "one 120x40 frame, half done", cells)
    row.ratio = f"{frames[large] / frames[small]:.2f} x ({large:,} vs {small:,})"
    row.target, row.met = f"<= {LINEAR} x", frames[large] / frames[small] <= LINEAR
    return [*rows, row]
