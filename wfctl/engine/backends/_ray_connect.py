"""Connecting to Ray the way Ray's own tools do, and checking that every step can be placed.

Where: `--ray-address` / `RAY_ADDRESS` (an existing cluster: the working directory travels
with the job's `runtime_env`), else a Ray already running on this machine, else a local Ray
started for this run (announced: it takes seconds and hundreds of MB).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfctl.engine.backends import BackendUnavailable
from wfctl.model import Step, Workflow

__all__ = ["Connection", "attempt_resources", "check_placement", "connect", "task_options"]

#: Ray resource names of our `num_cpus`, `num_gpus` and `memory` keys.
_RAY_NAMES = {"num_cpus": "CPU", "num_gpus": "GPU", "memory": "memory"}
#: Of a routed step's capability: tiny, so many attempts share one node's unit.
CAPABILITY_SHARE = 0.001
#: Not shipped with the working directory (Ray's own size limit is 500 MiB).
WORKING_DIR_EXCLUDES = [".git", ".wfctl", ".venv", "__pycache__", "*.pyc"]


@dataclass(frozen=True)
class Connection:
    """Which cluster, how we reached it, and where a worker's relative paths point."""

    address: str
    started: bool  # a local Ray started for this run
    workdir: str | None  # None: the runtime_env working_dir (the task's cwd)
    nodes: tuple[Mapping[str, float], ...]  # each alive node's total resources


def _init(**kwargs: Any) -> Any:
    import ray

    # Worker stdout is ours to stream (line by line, masked), never printed by Ray.
    return ray.init(log_to_driver=False, configure_logging=False, **kwargs)


def connect(
    address: str | None,
    workdir: Path,
    announce: Callable[[str], None],
    capabilities: frozenset[str] = frozenset(),
) -> Connection:
    """Connect (or start a local Ray); raise BackendUnavailable when it cannot be reached.

    A local Ray started here offers every agent capability in `capabilities` (this machine
    is every agent's node), as the local executor would."""
    import ray

    address = address or os.environ.get("RAY_ADDRESS") or None
    started = False
    shipped: str | None = str(workdir)
    if ray.is_initialized():
        pass  # an embedding program (or a test) connected already: use that
    elif address:
        env = {"working_dir": str(workdir), "excludes": WORKING_DIR_EXCLUDES}
        try:
            _init(address=address, runtime_env=env)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise BackendUnavailable(f"cannot reach the Ray cluster at {address}: {exc}") from None
        shipped = None
    else:
        try:
            _init(address="auto")
        except (ConnectionError, ValueError, RuntimeError):
            announce("starting a local Ray for this run (no RAY_ADDRESS, none running here)")
            _init(include_dashboard=False, resources=dict.fromkeys(capabilities, 1000.0))
            started = True
    info = ray.get_runtime_context().gcs_address
    nodes = tuple(dict(n["Resources"]) for n in ray.nodes() if n.get("Alive"))
    cpus = sum(n.get("CPU", 0.0) for n in nodes)
    announce(f"Ray at {info}: {len(nodes)} node(s), {cpus:g} CPUs")
    return Connection(str(info), started, shipped, nodes)


def attempt_resources(step: Step, capability: str | None, agent: Any | None) -> dict[str, float]:
    """Our resource map of one attempt: the step's, its agent's, its capability's share."""
    wanted: dict[str, float] = {}
    if agent is not None:
        wanted.update(agent.resources)
    for name, amount in step.resources.items():
        wanted[name] = max(wanted.get(name, 0.0), float(amount))
    if capability is not None:
        wanted.setdefault(capability, CAPABILITY_SHARE)
    return wanted


def task_options(resources: Mapping[str, float]) -> dict[str, Any]:
    """Ray `.options(...)` for an attempt; Ray's own retries off (the workflow's count)."""
    options: dict[str, Any] = {"max_retries": 0, "retry_exceptions": False}
    custom: dict[str, float] = {}
    for name, amount in resources.items():
        if name in _RAY_NAMES:
            options[name] = amount
        else:
            custom[name] = amount
    if custom:
        options["resources"] = custom
    return options


def _needs(workflow: Workflow) -> Iterator[tuple[Step, dict[str, float]]]:
    """Every step that runs an action, with what its attempts may ask for."""
    for step in workflow.all_steps.values():
        capability = step.agent_capability
        if capability is None:
            yield step, attempt_resources(step, None, None)
            continue
        for agent in workflow.agents:
            if capability in agent.capabilities:
                yield step, attempt_resources(step, capability, agent)


def _missing(wanted: Mapping[str, float], node: Mapping[str, float]) -> str | None:
    for name, amount in wanted.items():
        ray_name = _RAY_NAMES.get(name, name)
        if node.get(ray_name, 0.0) < amount:
            return name
    return None


def _unplaceable(wanted: Mapping[str, float], nodes: tuple[Mapping[str, float], ...]) -> str | None:
    """The resource that keeps `wanted` off every node (None: some node can run it)."""
    lacking = [_missing(wanted, node) for node in nodes]
    if not wanted or not all(lacking):
        return None
    return next(n for n in lacking if n)


def check_placement(workflow: Workflow, nodes: tuple[Mapping[str, float], ...]) -> None:
    """Raise BackendUnavailable naming the first step no node can ever run, and why."""
    for step, wanted in _needs(workflow):
        name = _unplaceable(wanted, nodes)
        if name is None:
            continue
        have = sorted({r for node in nodes for r in node if not r.startswith("node:")})
        raise BackendUnavailable(
            f"{workflow.source_file}:{step.line}: step {step.step_id!r} needs Ray resource "
            f"{name!r} ({wanted[name]:g}) and no node of the cluster has it "
            f"(nodes offer: {', '.join(have) or 'nothing'})"
        )
