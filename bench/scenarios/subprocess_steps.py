"""Scenario 3: subprocess steps. STEPS independent `true` shell steps under
max_parallel_steps LIMIT, wfctl vs a plain asyncio loop with the same limit.

- wfctl: `action: shell, with: {command: [true]}` (an argv list: no /bin/sh in between),
  run through `run_workflow` like the other scenarios. Each step spawns `true` in its own
  session, captures stdout and stderr, and reaps it.
- plain asyncio (the baseline): one task per step behind an `asyncio.Semaphore(LIMIT)`,
  each `await asyncio.create_subprocess_exec("true", ...)` with the same pipes (stdin from
  /dev/null, stdout and stderr captured with `communicate()`, a new session).

Reported: time per step (total / STEPS) and wfctl / asyncio within each round.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path

from scenarios.common import Row, alternating, median, timed
from scenarios.wfctl_runs import run_wfctl

LIMIT = 8
TARGET = 1.3  # wfctl within 1.3x of the plain asyncio loop

WFCTL = "wfctl (shell action)"
FLOOR = "plain asyncio create_subprocess_exec"


def shell_yaml(steps: int, limit: int = LIMIT) -> str:
    lines = [
        f"workflow_id: bench-subprocess-{steps}",
        f"name: benchmark {steps} true steps",
        "timeout: 3600",
        f"max_parallel_steps: {limit}",
        "steps:",
    ]
    lines += [
        f'  - {{step_id: t{i:04d}, action: shell, with: {{command: ["true"]}}}}'
        for i in range(steps)
    ]
    return "\n".join(lines) + "\n"


async def run_asyncio_subprocesses(steps: int, limit: int = LIMIT) -> None:
    semaphore = asyncio.Semaphore(limit)

    async def one() -> None:
        async with semaphore:
            proc = await asyncio.create_subprocess_exec(
                "true",
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
            await proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(f"true exited {proc.returncode}")

    async with asyncio.TaskGroup() as tg:
        for _ in range(steps):
            tg.create_task(one())


async def scenario(steps: int, repeat: int) -> list[Row]:
    from wfctl import load_workflow

    with tempfile.TemporaryDirectory(prefix="wfctl-bench-") as tmp:
        path = Path(tmp) / "subprocess.yaml"
        path.write_text(shell_yaml(steps), encoding="utf-8")
        workflow = load_workflow(path)
        await run_wfctl(load_workflow(path))  # warm-up: imports the shell action
        await run_asyncio_subprocesses(LIMIT)
        runs: dict[str, Callable[[], Awaitable[object]]] = {
            WFCTL: lambda: run_wfctl(workflow),
            FLOOR: lambda: run_asyncio_subprocesses(steps),
        }
        times: dict[str, list[float]] = defaultdict(list)
        for _, order in alternating(list(runs), repeat):
            for system in order:
                times[system].append(await timed(runs[system]))

    label = f"subprocess, {steps} `true` steps, limit {LIMIT}"
    ratio = median(w / f for w, f in zip(times[WFCTL], times[FLOOR], strict=True))
    return [
        Row(
            label,
            WFCTL,
            f"{median(times[WFCTL]) / steps * 1e3:.2f} ms/step",
            f"{ratio:.2f} x asyncio",
            f"<= {TARGET:g}x asyncio",
            ratio <= TARGET,
        ),
        Row(
            label,
            FLOOR,
            f"{median(times[FLOOR]) / steps * 1e3:.2f} ms/step",
            "1.00 x asyncio",
            "baseline",
        ),
    ]
