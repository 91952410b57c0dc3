"""The dependency graph of a workflow's steps: pure functions, no I/O, no other wfctl import.

Validation (on raw documents), the model, the execution plan, the dry run and the runtime
deadlock check all ask this module, so that a graph fact is computed one way only.

A graph here is a mapping ``step id -> ids it waits on`` (its *dependencies*, after
desugaring) within one container (the top level, or one container step's children). Every
algorithm is iterative: a 10,000-step chain must not hit Python's recursion limit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Deps",
    "StepEdges",
    "blocked",
    "containers_of",
    "cycles",
    "dependents_of",
    "desugar",
    "invoked_steps",
    "ranks",
    "topological_order",
    "upstream_masks",
    "waves",
]

Deps = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class StepEdges:
    """What one step says about others, as written (before desugaring)."""

    step_id: str
    container: str | None  # the step it is nested in, None at the top level
    dependencies: tuple[str, ...] = ()
    next_steps: tuple[str, ...] = ()  # its own `next_steps` and every branch's targets
    invokes: tuple[str, ...] = ()  # error_handlers, rollback_actions, react tool steps


def desugar(edges: Iterable[StepEdges]) -> dict[str, tuple[str, ...]]:
    """Each step's dependencies: the written ones, then the steps naming it in `next_steps`.

    `next_steps` is sugar for a dependency of the named step. References to unknown steps,
    to the step itself or across containers are dropped (validation reports them).
    """
    steps = {e.step_id: e for e in edges}
    deps: dict[str, list[str]] = {s: [] for s in steps}

    def add(user: str, dep: str) -> None:
        target = steps.get(dep)
        if (
            target is not None
            and dep != user
            and target.container == steps[user].container
            and dep not in deps[user]
        ):
            deps[user].append(dep)

    for e in steps.values():
        for dep in e.dependencies:
            add(e.step_id, dep)
    for e in steps.values():
        for target in e.next_steps:
            if target in steps:
                add(target, e.step_id)
    return {s: tuple(d) for s, d in deps.items()}


def invoked_steps(edges: Iterable[StepEdges]) -> frozenset[str]:
    """Steps that run only when another step invokes them (handlers, rollbacks, tools)."""
    return frozenset(ref for e in edges for ref in e.invokes)


def dependents_of(deps: Deps) -> dict[str, list[str]]:
    """The reverse graph: who waits on each step (in the order of `deps`)."""
    users: dict[str, list[str]] = {s: [] for s in deps}
    for step, before in deps.items():
        for dep in before:
            if dep in users:
                users[dep].append(step)
    return users


def topological_order(
    deps: Deps, dependents: Mapping[str, Sequence[str]] | None = None
) -> list[str]:
    """An order in which every step comes after its dependencies.

    Steps on a cycle (or waiting on one) never become ready; they are appended at the end
    in their original order so that callers can still rank them.
    """
    users = dependents if dependents is not None else dependents_of(deps)
    indegree = _indegrees(deps)
    ready = [s for s, n in indegree.items() if n == 0]
    order: list[str] = []
    while ready:
        node = ready.pop()
        order.append(node)
        for user in users[node]:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
    return order if len(order) == len(indegree) else _with_unplaced(order, deps)


def _indegrees(deps: Deps) -> dict[str, int]:
    return {s: sum(1 for d in before if d in deps) for s, before in deps.items()}


def _with_unplaced(order: list[str], deps: Deps) -> list[str]:
    placed = set(order)
    return order + [s for s in deps if s not in placed]


def cycles(deps: Deps, first: Callable[[str], Any] | None = None) -> list[list[str]]:
    """Each dependency cycle once, in run order, starting at the step `first` ranks lowest.

    `first` is a sort key (e.g. the step's position in the file); without it, the order
    of `deps` decides.
    """
    position = {s: i for i, s in enumerate(deps)}
    key: Callable[[str], Any] = first or position.__getitem__
    found: list[list[str]] = []
    seen: set[frozenset[str]] = set()
    for trail in _back_edges(deps):
        members = frozenset(trail)
        if members in seen:
            continue
        seen.add(members)
        # Dependencies point backwards: run order is the trail reversed.
        order = [trail[0], *reversed(trail[1:])]
        start = min(range(len(order)), key=lambda i: key(order[i]))
        found.append(order[start:] + order[:start])
    return found


def _back_edges(deps: Deps) -> Iterable[list[str]]:
    """Depth-first search yielding the trail of each back edge (a cycle), iteratively."""
    white, grey, black = 0, 1, 2
    colour = dict.fromkeys(deps, white)
    for root in deps:
        if colour[root] != white:
            continue
        colour[root] = grey
        trail = [root]
        stack = [iter(sorted(deps[root]))]
        while stack:
            child = next(stack[-1], None)
            if child is None:
                colour[trail.pop()] = black
                stack.pop()
            elif colour.get(child) == grey:
                yield trail[trail.index(child) :]
            elif colour.get(child) == white:
                colour[child] = grey
                trail.append(child)
                stack.append(iter(sorted(deps[child])))


def blocked(deps: Deps, seeds: Iterable[str], order: Sequence[str] | None = None) -> set[str]:
    """`seeds` and every step that waits on one of them, directly or not."""
    out = set(seeds)
    for step in order if order is not None else topological_order(deps):
        if step not in out and any(d in out for d in deps[step]):
            out.add(step)
    return out


def ranks(
    deps: Deps,
    weight: Callable[[str], float],
    tail: float = 0.0,
    order: Sequence[str] | None = None,
) -> dict[str, float]:
    """Longest remaining path from each step's start: its weight plus its slowest user's.

    `tail` is what must still run after the whole container (for nested containers).
    """
    users = dependents_of(deps)
    rank: dict[str, float] = {}
    for step in reversed(order if order is not None else topological_order(deps, users)):
        after = tail
        for user in users[step]:
            later = rank.get(user, tail)  # a user on a cycle is not ranked yet
            if later > after:
                after = later
        rank[step] = weight(step) + after
    return rank


def waves(deps: Deps) -> list[list[str]]:
    """The steps grouped by how soon they could start: wave 1 needs nothing, wave n waits
    on a step of wave n-1 at the latest. Steps on a cycle are left out."""
    users = dependents_of(deps)
    depth: dict[str, int] = {}
    for step in topological_order(deps, users):
        if any(d not in depth for d in deps[step]):
            continue  # waits on a cycle
        depth[step] = 1 + max((depth[d] for d in deps[step]), default=0)
    out: list[list[str]] = [[] for _ in range(max(depth.values(), default=0))]
    for step in deps:  # original order within a wave
        if step in depth:
            out[depth[step] - 1].append(step)
    return out


def containers_of(step: str, container: Mapping[str, str | None]) -> list[str]:
    """The container steps enclosing `step`, innermost first."""
    chain: list[str] = []
    parent = container.get(step)
    while parent is not None and parent not in chain:
        chain.append(parent)
        parent = container.get(parent)
    return chain


def upstream_masks(deps: Deps, container: Mapping[str, str | None]) -> dict[str, int]:
    """Per step, a bit set (an int, bit i = the i-th step of `deps`) of the steps that surely
    end before it starts, across containers.

    A step inherits its container's upstream steps; a finished container's children are
    finished, so depending on a container puts its children upstream too. The containers
    enclosing a step are not upstream of it: they are still running. Linear in the graph.
    """
    index = {s: i for i, s in enumerate(deps)}
    inside = dict.fromkeys(deps, 0)  # bits of every step nested in each container
    for step in deps:
        for parent in containers_of(step, container):
            if parent in inside:
                inside[parent] |= 1 << index[step]
    masks: dict[str, int] = {}
    for root in deps:
        _mask_from(root, deps, container, index, inside, masks)
    return masks


def _mask_from(
    root: str,
    deps: Deps,
    container: Mapping[str, str | None],
    index: Mapping[str, int],
    inside: Mapping[str, int],
    masks: dict[str, int],
) -> None:
    # Iterative post-order: a step's mask needs its dependencies' and its container's.
    stack: list[tuple[str, bool]] = [(root, False)]
    active: set[str] = set()
    while stack:
        node, ready = stack.pop()
        if node in masks:
            continue
        parent = _parent_in(node, deps, container)
        if ready:
            masks[node] = _mask_of(node, parent, deps, index, inside, masks)
            active.discard(node)
            continue
        active.add(node)
        stack.append((node, True))
        before = [*deps[node], *([parent] if parent is not None else [])]
        # A dependency on a cycle (reported elsewhere) contributes nothing.
        stack.extend((d, False) for d in before if d not in masks and d not in active)


def _parent_in(node: str, deps: Deps, container: Mapping[str, str | None]) -> str | None:
    parent = container.get(node)
    return parent if parent is not None and parent in deps else None


def _mask_of(
    node: str,
    parent: str | None,
    deps: Deps,
    index: Mapping[str, int],
    inside: Mapping[str, int],
    masks: Mapping[str, int],
) -> int:
    mask = masks.get(parent, 0) if parent is not None else 0
    for dep in deps[node]:
        mask |= (1 << index[dep]) | inside[dep] | masks.get(dep, 0)
    return mask
