"""Shared pieces: DAG generation, workflow YAML, critical path, timing, result rows."""

from __future__ import annotations

import gc
import random
import re
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from wfctl.model import Workflow


@dataclass(frozen=True)
class Dag:
    """A workflow shape: step ids in topological (file) order, dependencies, durations."""

    name: str
    deps: Mapping[str, tuple[str, ...]]  # insertion order is a topological order
    durations: Mapping[str, float]  # seconds each step sleeps; 0 means a no-op step

    @property
    def steps(self) -> list[str]:
        return list(self.deps)

    def critical_path(self) -> float:
        """Longest path through the DAG, weighted by step durations (seconds)."""
        finish: dict[str, float] = {}
        for step in self.deps:  # topological order
            start = max((finish[d] for d in self.deps[step]), default=0.0)
            finish[step] = start + self.durations[step]
        return max(finish.values(), default=0.0)

    def total_work(self) -> float:
        return sum(self.durations.values())


def random_dag(n: int, seed: int, low: float = 0.010, high: float = 0.200) -> Dag:
    """n sleep steps; every step but the first depends on 1-3 earlier steps (seeded)."""
    rng = random.Random(seed)
    deps: dict[str, tuple[str, ...]] = {}
    durations: dict[str, float] = {}
    ids = [f"s{i:04d}" for i in range(n)]
    for i, step in enumerate(ids):
        k = min(i, rng.randint(1, 3))
        deps[step] = tuple(sorted(rng.sample(ids[:i], k))) if k else ()
        durations[step] = round(rng.uniform(low, high), 3)
    return Dag(f"random-{n}-seed{seed}", deps, durations)


def chain_dag(n: int, duration: float = 0.0) -> Dag:
    ids = [f"s{i:04d}" for i in range(n)]
    deps = {s: ((ids[i - 1],) if i else ()) for i, s in enumerate(ids)}
    return Dag(f"chain-{n}", deps, dict.fromkeys(ids, duration))


def fanout_dag(n: int, duration: float = 0.0) -> Dag:
    """One root, n-1 steps that depend only on it (all ready at once)."""
    ids = [f"s{i:04d}" for i in range(n)]
    deps = {s: ((ids[0],) if i else ()) for i, s in enumerate(ids)}
    return Dag(f"fanout-{n}", deps, dict.fromkeys(ids, duration))


def workflow_yaml(dag: Dag, max_parallel: int | None = None) -> str:
    """The DAG as wfctl workflow text: `sleep` steps, or `noop` where the duration is 0."""
    limit = max_parallel if max_parallel is not None else max(1, len(dag.deps))
    ident = re.sub(r"[^A-Za-z0-9_-]", "_", dag.name)
    lines = [
        f"workflow_id: bench-{ident}",
        f"name: benchmark {dag.name}",
        "timeout: 3600",
        f"max_parallel_steps: {limit}",
        "steps:",
    ]
    for step, deps in dag.deps.items():
        seconds = dag.durations[step]
        action = f"action: sleep, with: {{seconds: {seconds:g}}}" if seconds else "action: noop"
        after = f", dependencies: [{', '.join(deps)}]" if deps else ""
        lines.append(f"  - {{step_id: {step}, {action}{after}}}")
    return "\n".join(lines) + "\n"


def load_dag_workflow(dag: Dag, max_parallel: int | None = None) -> Workflow:
    """Write the YAML to a temporary file and load it through `wfctl.load_workflow`
    (loader, JSON Schema, semantic checks, model): what `wfctl run` would execute."""
    from wfctl import load_workflow

    with tempfile.TemporaryDirectory(prefix="wfctl-bench-") as tmp:
        path = Path(tmp) / "workflow.yaml"
        path.write_text(workflow_yaml(dag, max_parallel), encoding="utf-8")
        return load_workflow(path)


async def timed(make: Callable[[], Awaitable[object]]) -> float:
    """Wall-clock seconds of one awaited run (garbage collected beforehand)."""
    gc.collect()
    start = time.perf_counter()
    await make()
    return time.perf_counter() - start


async def best_of(make: Callable[[], Awaitable[object]], runs: int, budget: float = 0.5) -> float:
    """The shortest of up to `runs` back-to-back timings, stopping once `budget` seconds
    have been spent. Noise from other processes only ever adds time, and it weighs most
    on runs of a few milliseconds: those get repeated, runs of seconds do not."""
    best = await timed(make)
    spent = best
    for _ in range(runs - 1):
        if spent >= budget:
            break
        elapsed = await timed(make)
        spent += elapsed
        best = min(best, elapsed)
    return best


def alternating(systems: Sequence[str], repeat: int) -> Iterable[tuple[int, list[str]]]:
    """(round, order) pairs; every other round runs the systems in reverse order."""
    for r in range(repeat):
        yield r, list(systems) if r % 2 == 0 else list(reversed(systems))


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


@dataclass
class Row:
    """One line of the results table."""

    scenario: str
    system: str
    median: str
    ratio: str = ""
    target: str = ""
    met: bool | None = None
    notes: list[str] = field(default_factory=list)

    def cells(self) -> list[str]:
        met = "" if self.met is None else ("yes" if self.met else "**NO**")
        return [self.scenario, self.system, self.median, self.ratio, self.target, met]


TABLE_COLUMNS = ["Scenario", "System", "Median", "Ratio", "Target", "Met"]


def render_table(rows: Sequence[Row]) -> str:
    """A Markdown table (readable as plain text too), columns padded."""
    cells = [TABLE_COLUMNS, *(r.cells() for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(len(TABLE_COLUMNS))]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    out = [line(TABLE_COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out.extend(line(c) for c in cells[1:])
    return "\n".join(out)


def fmt_seconds(seconds: float) -> str:
    return f"{seconds:.3f} s"


def fmt_us(seconds: float) -> str:
    return f"{seconds * 1e6:,.0f} µs/step"
