"""The execution plan: per level, who waits on whom, and each step's critical-path rank."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from wfctl.model import Step, Workflow


@dataclass(frozen=True)
class Level:
    """One scheduling scope: the top level, or the children of a parallel step."""

    container: str | None
    steps: tuple[Step, ...]  # handler steps excluded
    dependents: Mapping[str, tuple[str, ...]]
    roots: tuple[str, ...]


@dataclass(frozen=True)
class ExecutionPlan:
    workflow: Workflow
    levels: Mapping[str | None, Level]
    rank: Mapping[str, float]  # longest remaining path (estimated seconds) from a step's start
    # rank, ties broken towards deeper steps: finishing a started chain beats opening a new one
    priority: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.priority:
            object.__setattr__(self, "priority", dict(self.rank))

    def level_of(self, step_id: str) -> Level:
        return self.levels[self.workflow.all_steps[step_id].container]


def compile_plan(workflow: Workflow, estimates: Mapping[str, float] | None = None) -> ExecutionPlan:
    """Build the plan; `estimates` are step durations learned from earlier runs (default 1.0)."""
    estimates = estimates or {}
    levels: dict[str | None, Level] = {}
    rank: dict[str, float] = {}
    depth: dict[str, int] = {}

    def build(container: str | None, outer_rank: float) -> None:
        # Plain loops over plain dicts: this runs for every step of every run.
        handlers = workflow.handlers
        steps = tuple(s for s in workflow.children(container) if s.step_id not in handlers)
        dependents: dict[str, list[str]] = {s.step_id: [] for s in steps}
        inside: dict[str, list[str]] = {}
        for s in steps:
            own = [d for d in s.dependencies if d in dependents]
            inside[s.step_id] = own
            for dep in own:
                dependents[dep].append(s.step_id)
        order = _topological(inside, dependents)
        for step_id in order:
            deepest = 0
            for d in inside[step_id]:
                below = depth.get(d, 0) + 1
                if below > deepest:
                    deepest = below
            depth[step_id] = deepest
        for step_id in reversed(order):
            # .get: on a cycle (only in hand-built workflows) a user may not be ranked yet.
            tail = outer_rank
            for d in dependents[step_id]:
                later = rank.get(d, outer_rank)
                if later > tail:
                    tail = later
            rank[step_id] = estimates.get(step_id, 1.0) + tail
        levels[container] = Level(
            container=container,
            steps=steps,
            dependents={k: tuple(v) for k, v in dependents.items()},
            roots=tuple(k for k, v in inside.items() if not v),
        )
        for s in steps:
            if s.parallel_steps:
                # Children inherit what must still run after their container finishes.
                build(s.step_id, rank[s.step_id] - _estimate(s, estimates))

    build(None, 0.0)
    for handler in workflow.handlers:
        rank.setdefault(handler, 0.0)
    priority = {s: r + depth.get(s, 0) * 1e-6 for s, r in rank.items()}
    return ExecutionPlan(workflow=workflow, levels=levels, rank=rank, priority=priority)


def _estimate(step: Step, estimates: Mapping[str, float]) -> float:
    return estimates.get(step.step_id, 1.0)


def _topological(inside: Mapping[str, list[str]], dependents: Mapping[str, list[str]]) -> list[str]:
    indegree = {step_id: len(deps) for step_id, deps in inside.items()}
    ready = [s for s, n in indegree.items() if n == 0]
    order: list[str] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for user in dependents[node]:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
    # Steps on a cycle never reach indegree 0; validation rejects cycles, keep them rankable.
    placed = set(order)
    order.extend(s for s in indegree if s not in placed)
    return order
