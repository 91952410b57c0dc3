"""Scenario: wfctl on Ray (`--executor ray`) beside raw Ray tasks with the same dependencies.

* Per-step overhead on a chain of python steps (`builtins:abs`), against a chain of raw
  Ray tasks calling the same function, each taking the previous one's result (target:
  within 1.3x).
* Makespan / critical path on the seeded random DAG of sleep steps (python `time:sleep`,
  each a Ray task), raw Ray tasks on the same DAG as the reference (target: <= 1.05).
* Ray's start-up (a local `ray.init`) on its own row, never inside a timed run.

Skipped, with a row saying so, when Ray is not installed (`pip install -e '.[ray]'`).
"""

from __future__ import annotations

import functools
import importlib.util
import tempfile
import time
from pathlib import Path
from typing import Any

from scenarios.common import Dag, Row, chain_dag, fmt_seconds, fmt_us, median, random_dag

OVERHEAD_TARGET = 1.3
MAKESPAN_TARGET = 1.05
SYSTEM = "wfctl --executor ray"
RAW = "raw Ray tasks"


def available() -> bool:
    """Is Ray installed?"""
    return importlib.util.find_spec("ray") is not None


def _yaml(dag: Dag) -> str:
    lines = [f"workflow_id: ray-{dag.name}", f"name: {dag.name}", "timeout: 3600",
             f"max_parallel_steps: {max(1, len(dag.deps))}", "steps:"]  # fmt: skip
    for step, deps in dag.deps.items():
        seconds = dag.durations[step]
        function, arg = ("time:sleep", f"{seconds:g}") if seconds else ("builtins:abs", "0")
        after = f", dependencies: [{', '.join(deps)}]" if deps else ""
        call = f"action: python, with: {{function: '{function}', args: [{arg}]}}"
        lines.append(f"  - {{step_id: {step}, {call}{after}}}")
    return "\n".join(lines) + "\n"


def _load(dag: Dag) -> Any:
    from wfctl import load_workflow

    with tempfile.TemporaryDirectory(prefix="wfctl-bench-ray-") as tmp:
        path = Path(tmp) / "workflow.yaml"
        path.write_text(_yaml(dag))
        return load_workflow(path)


async def _wfctl(workflow: Any) -> float:
    from wfctl import run_workflow
    from wfctl.engine import RunOptions
    from wfctl.engine.backends.ray import RayBackend

    started = time.perf_counter()
    result = await run_workflow(workflow, {}, RunOptions(backend=RayBackend()))
    elapsed = time.perf_counter() - started
    if result.status != "completed":
        raise RuntimeError(f"wfctl on Ray ended {result.status}: {result.error}")
    return elapsed


@functools.cache
def _raw_step() -> Any:
    """The raw tasks' remote function, made once (as a Ray program would: each new one is
    exported to the cluster and imported by each worker before its first task)."""
    import ray

    @ray.remote(max_retries=0)
    def step(seconds: float, *after: Any) -> int:
        if seconds:
            time.sleep(seconds)
        return abs(0)

    return step


def _raw(dag: Dag) -> float:
    """The DAG as raw Ray tasks: each task gets its dependencies' results as arguments."""
    import ray

    step = _raw_step()
    started = time.perf_counter()
    refs: dict[str, Any] = {}
    for name, deps in dag.deps.items():
        refs[name] = step.remote(dag.durations[name], *(refs[d] for d in deps))
    ray.get(list(refs.values()))
    return time.perf_counter() - started


async def _pair(dag: Dag, repeat: int) -> dict[str, list[float]]:
    workflow = _load(dag)
    times: dict[str, list[float]] = {SYSTEM: [], RAW: []}
    await _wfctl(workflow)  # warm: worker processes started, modules imported
    _raw(dag)
    for i in range(repeat):
        order = [SYSTEM, RAW] if i % 2 == 0 else [RAW, SYSTEM]
        for system in order:
            times[system].append(await _wfctl(workflow) if system == SYSTEM else _raw(dag))
    return times


def _start() -> Row:
    import ray

    started = time.perf_counter()
    # Logical CPUs: the sleep steps wait, they do not compute; every ready step may run.
    # A Ray of its own ("local"): with another one running here, ray.init would join it.
    ray.init(address="local", num_cpus=16, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - started
    return Row("Ray start-up (local ray.init)", f"Ray {ray.__version__}", fmt_seconds(startup),
               "", "reported once, not timed in the runs")  # fmt: skip


async def scenario(steps: int, size: int, seed: int, repeat: int, scale: float) -> list[Row]:
    """The rows of this scenario (one 'not run' row without Ray)."""
    if not available():
        return [Row("Ray", SYSTEM, "not run", "", "not installed: pip install -e '.[ray]'")]
    import ray

    rows = [_start()]
    try:
        chain = await _pair(chain_dag(steps), repeat)
        per = {s: [t / steps for t in v] for s, v in chain.items()}
        ratio = median(a / b for a, b in zip(per[SYSTEM], per[RAW], strict=True))
        label = f"per-step overhead on Ray, {steps}-step chain"
        rows.append(Row(label, SYSTEM, fmt_us(median(per[SYSTEM])),
                        f"{ratio:.2f} x raw Ray", f"<= {OVERHEAD_TARGET}",
                        ratio <= OVERHEAD_TARGET))  # fmt: skip
        rows.append(Row(label, RAW, fmt_us(median(per[RAW])), "", "reference"))
        dag = random_dag(size, seed + size, low=0.010 * scale, high=0.200 * scale)
        cp = dag.critical_path()
        spans = await _pair(dag, repeat)
        label = f"critical path on Ray, {size} steps (CP {cp:.3f} s)"
        for system, values in spans.items():
            r = median(v / cp for v in values)
            own = system == SYSTEM
            rows.append(Row(label, system, f"makespan {fmt_seconds(median(values))}",
                            f"{r:.3f} x CP", f"<= {MAKESPAN_TARGET}" if own else "reference",
                            (r <= MAKESPAN_TARGET) if own else None))  # fmt: skip
    finally:
        ray.shutdown()
    return rows
