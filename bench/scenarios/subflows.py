"""Scenario: a 100-cell matrix whose every cell calls a 3-step sub-workflow (`uses:`).

Two figures: the makespan against the critical path (every cell at once, each child a
chain of three sleeps: CP = 3 sleeps), and the per-step overhead of no-op children against
a plain chain of as many no-op steps, measured in the same run (the chain's cost per step
is the baseline: what a call, its matrix cell and its scope add shows as the ratio).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from scenarios.common import Row, chain_dag, fmt_seconds, load_dag_workflow, median, timed
from scenarios.wfctl_runs import run_wfctl

if TYPE_CHECKING:
    from wfctl.model import Workflow

CHILD = """workflow_id: child
name: Child
steps:
  - {{step_id: a, action: {action}, with: {with_}}}
  - {{step_id: b, action: {action}, with: {with_}, dependencies: [a]}}
  - {{step_id: c, action: {action}, with: {with_}, dependencies: [b]}}
"""
PARENT = """workflow_id: cells
name: Matrix of calls
max_parallel_steps: {slots}
steps:
  - step_id: cells
    step_type: loop
    matrix: {{cell: {cells}}}
    steps:
      - {{step_id: call, uses: ./child.yaml}}
"""
TARGET = 1.10  # makespan / critical path


def _matrix(cells: int, action: str, with_: str) -> Workflow:
    from wfctl import load_workflow

    with tempfile.TemporaryDirectory(prefix="wfctl-bench-subflow-") as tmp:
        (Path(tmp) / "child.yaml").write_text(CHILD.format(action=action, with_=with_))
        parent = Path(tmp) / "parent.yaml"
        parent.write_text(PARENT.format(slots=4 * cells, cells=list(range(cells))))
        return load_workflow(parent)


async def scenario(cells: int, repeat: int, sleep: float) -> list[Row]:
    """`cells` calls of a 3-step child; `sleep` seconds per step of the makespan run."""
    timed_wf = _matrix(cells, "sleep", f"{{seconds: {sleep}}}")
    noop_wf = _matrix(cells, "noop", "{}")
    chain = load_dag_workflow(chain_dag(3 * cells))
    spans, noops, chains = [], [], []
    for _ in range(repeat):
        spans.append(await timed(lambda: run_wfctl(timed_wf)))
        noops.append(await timed(lambda: run_wfctl(noop_wf)))
        chains.append(await timed(lambda: run_wfctl(chain)))
    cp = 3 * sleep
    steps = 3 * cells
    ratio = median(spans) / cp
    per_call_step = median(noops) / steps
    per_chain_step = median(chains) / steps
    label = f"{cells}-cell matrix of 3-step sub-workflows"
    return [
        Row(
            label,
            "wfctl (sleep children)",
            f"makespan {fmt_seconds(median(spans))}",
            f"{ratio:.3f} x CP ({fmt_seconds(cp)})",
            f"<= {TARGET}",
            ratio <= TARGET,
        ),
        Row(
            label,
            "wfctl (no-op children)",
            f"{per_call_step * 1e6:.0f} us per child step",
            f"{per_call_step / per_chain_step:.2f} x the chain's per step",
            "reference",
        ),
        Row(
            f"chain of {steps} no-op steps (baseline)",
            "wfctl",
            f"{per_chain_step * 1e6:.0f} us per step",
            "1.00 x",
            "reference",
        ),
    ]
