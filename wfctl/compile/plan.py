"""The execution plan: nested containers of steps, who waits on whom, critical-path ranks.

Pure: the graph facts come from :mod:`wfctl.graph`; nothing here imports the engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace

from wfctl import graph
from wfctl.model import ForEachBody, ParallelBody, Step, StepType, Workflow

__all__ = ["Container", "ExecutionPlan", "Level", "compile_plan"]


@dataclass(frozen=True)
class Container:
    """A nested graph of steps that the scheduler runs: the top level, a parallel group,
    or the body of a loop (run once per iteration or for-each item)."""

    container: str | None  # the step that owns it; None for the workflow's top level
    steps: tuple[Step, ...]  # handler steps excluded
    dependents: Mapping[str, tuple[str, ...]]
    roots: tuple[str, ...]
    #: Its own concurrency limit under the run's: of its steps at once for a parallel
    #: group (`max_parallel`), of iterations at once for a loop body (a for-each's
    #: `loop_concurrency`, 1 for a loop); None: only the run's `max_parallel_steps`.
    limit: int | None = None


#: The name the first plans used for a container (kept for callers that draw plans).
Level = Container


@dataclass(frozen=True)
class ExecutionPlan:
    workflow: Workflow
    levels: Mapping[str | None, Container]  # the top level and every parallel group
    rank: Mapping[str, float]  # longest remaining path (estimated seconds) from a step's start
    # rank, ties broken towards deeper steps: finishing a started chain beats opening a new one
    priority: Mapping[str, float] = field(default_factory=dict)
    #: Loop and for-each steps: the body each iteration or item runs (the loop step itself
    #: in the single-action form; its `steps:` in the group form, run per iteration under
    #: iteration ids, see :mod:`wfctl.model.scopes`).
    bodies: Mapping[str, Container] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.priority:
            object.__setattr__(self, "priority", dict(self.rank))

    def level_of(self, step_id: str) -> Container:
        return self.levels[self.workflow.all_steps[step_id].container]


def compile_plan(workflow: Workflow, estimates: Mapping[str, float] | None = None) -> ExecutionPlan:
    """Build the plan; `estimates` are step durations learned from earlier runs (default 1.0)."""
    builder = _Builder(workflow, estimates or {})
    builder.build(None, 0.0)
    rank = builder.rank
    for handler in workflow.handlers:
        rank.setdefault(handler, 0.0)
    depth = builder.depth
    priority = {s: r + depth.get(s, 0) * 1e-6 for s, r in rank.items()}
    return ExecutionPlan(
        workflow=workflow,
        levels=builder.levels,
        rank=rank,
        priority=priority,
        bodies=builder.bodies,
    )


def _inside(steps: tuple[Step, ...]) -> dict[str, list[str]]:
    """Each step's dependencies within its own container."""
    ids = {s.step_id for s in steps}
    return {s.step_id: [d for d in s.dependencies if d in ids] for s in steps}


class _Builder:
    """Walks the containers top-down (children inherit what runs after their container)."""

    def __init__(self, workflow: Workflow, estimates: Mapping[str, float]) -> None:
        self.workflow = workflow
        self.estimates = estimates
        self.levels: dict[str | None, Container] = {}
        self.bodies: dict[str, Container] = {}
        self.rank: dict[str, float] = {}
        self.depth: dict[str, int] = {}

    def weight(self, step_id: str) -> float:
        return self.estimates.get(step_id, 1.0)

    def build(self, container: str | None, outer_rank: float) -> None:
        self.levels[container] = self._container(container, self._steps(container), outer_rank)

    def _container(
        self, container: str | None, steps: tuple[Step, ...], outer_rank: float
    ) -> Container:
        inside = _inside(steps)
        dependents = graph.dependents_of(inside)
        order = graph.topological_order(inside, dependents)
        self._depths(inside, order)
        self.rank.update(graph.ranks(inside, self._weights(inside), outer_rank, order))
        for s in steps:
            if s.children or s.step_type is StepType.LOOP:
                self._nested(s)
        limit = None
        if container is not None:
            body = self.workflow.all_steps[container].body
            limit = body.max_parallel if isinstance(body, ParallelBody) else None
        return Container(
            container=container,
            steps=steps,
            dependents={k: tuple(v) for k, v in dependents.items()},
            roots=tuple(k for k, v in inside.items() if not v),
            limit=limit,
        )

    def _steps(self, container: str | None) -> tuple[Step, ...]:
        handlers = self.workflow.handlers
        return tuple(s for s in self.workflow.children(container) if s.step_id not in handlers)

    def _weights(self, inside: Mapping[str, list[str]]) -> Callable[[str], float]:
        """Each step's estimated duration, as a C-level lookup (called once per step)."""
        weights = dict.fromkeys(inside, 1.0)
        for step_id, seconds in self.estimates.items():
            if step_id in weights:
                weights[step_id] = seconds
        return weights.__getitem__

    def _depths(self, inside: Mapping[str, list[str]], order: list[str]) -> None:
        # Plain loops over plain dicts: this runs for every step of every run.
        depth = self.depth
        for step_id in order:
            deepest = 0
            for d in inside[step_id]:
                below = depth.get(d, 0) + 1
                if below > deepest:
                    deepest = below
            depth[step_id] = deepest

    def _nested(self, step: Step) -> None:
        if step.children:
            self.build(step.step_id, self.rank[step.step_id] - self.weight(step.step_id))
        if step.step_type is not StepType.LOOP:
            return
        limit = step.body.concurrency if isinstance(step.body, ForEachBody) else 1
        if step.body_steps:
            # A group loop: its body is a nested graph, run once per iteration or item
            # under iteration ids; `limit` is how many iterations run at once.
            outer = self.rank[step.step_id] - self.weight(step.step_id)
            body = self._container(step.step_id, step.body_steps, outer)
            self.bodies[step.step_id] = replace(body, limit=limit)
            return
        # The single-action form: the loop step's own action, one node run per iteration.
        self.bodies[step.step_id] = Container(
            container=step.step_id,
            steps=(step,),
            dependents={step.step_id: ()},
            roots=(step.step_id,),
            limit=limit,
        )
