"""wfctl.graph: desugaring, order, cycles, blocking, ranks, waves and upstream sets."""

from __future__ import annotations

import pytest

from wfctl import graph
from wfctl.graph import StepEdges


def _edges() -> list[StepEdges]:
    return [
        StepEdges("a", None, next_steps=("b",)),
        StepEdges("b", None, dependencies=("a", "ghost")),
        StepEdges("c", None, dependencies=("b",), invokes=("h",)),
        StepEdges("p", None, dependencies=("a",)),
        StepEdges("p1", "p", dependencies=("a",)),  # cross-container: dropped
        StepEdges("p2", "p", dependencies=("p1",), next_steps=("p1",)),
        StepEdges("h", None),
    ]


def test_desugar_adds_next_steps_once_and_drops_unknown_and_cross_level() -> None:
    deps = graph.desugar(_edges())
    assert deps["b"] == ("a",)  # written once, next_steps adds nothing new, ghost dropped
    assert deps["p1"] == ("p2",)  # only the same-level next_steps edge
    assert deps["p2"] == ("p1",)
    assert deps["c"] == ("b",)
    assert graph.invoked_steps(_edges()) == {"h"}


def test_topological_order_puts_dependencies_first_and_keeps_cycles_rankable() -> None:
    deps = {"a": (), "b": ("a",), "c": ("b", "a"), "x": ("y",), "y": ("x",)}
    order = graph.topological_order(deps)
    assert order.index("a") < order.index("b") < order.index("c")
    assert order[-2:] == ["x", "y"]


def test_cycles_reported_once_in_run_order_from_the_first_step() -> None:
    deps = {"a": ("c",), "b": ("a",), "c": ("b",), "d": ()}
    assert graph.cycles(deps) == [["a", "b", "c"]]
    assert graph.cycles(deps, first={"a": 3, "b": 1, "c": 2, "d": 0}.__getitem__) == [
        ["b", "c", "a"]
    ]
    assert graph.cycles({"a": ("a",)}) == [["a"]]
    assert graph.cycles({"a": (), "b": ("a",)}) == []


def test_deep_chain_does_not_recurse() -> None:
    n = 20_000
    deps = {f"s{i}": ((f"s{i - 1}",) if i else ()) for i in range(n)}
    assert graph.topological_order(deps)[-1] == f"s{n - 1}"
    assert graph.cycles(deps) == []
    assert graph.ranks(deps, lambda s: 1.0)["s0"] == pytest.approx(n)
    assert len(graph.waves(deps)) == n


def test_blocked_follows_dependents_transitively() -> None:
    deps = {"a": (), "b": ("a",), "c": ("b",), "d": ()}
    assert graph.blocked(deps, {"a"}) == {"a", "b", "c"}
    assert graph.blocked(deps, set()) == set()


def test_ranks_are_longest_remaining_paths() -> None:
    deps = {"a": (), "slow": ("a",), "fast": ("a",), "end": ("slow", "fast")}
    weight = {"a": 1.0, "slow": 5.0, "fast": 1.0, "end": 2.0}.__getitem__
    rank = graph.ranks(deps, weight, tail=10.0)
    assert rank == {"end": 12.0, "slow": 17.0, "fast": 13.0, "a": 18.0}


def test_waves_group_by_earliest_start() -> None:
    deps = {"a": (), "b": (), "c": ("a",), "d": ("c", "b"), "x": ("x",)}
    assert graph.waves(deps) == [["a", "b"], ["c"], ["d"]]


def test_upstream_masks_inherit_containers_and_include_children_of_finished_ones() -> None:
    deps = {"a": (), "p": ("a",), "p1": (), "p2": ("p1",), "z": ("p",)}
    container = {"a": None, "p": None, "p1": "p", "p2": "p", "z": None}
    masks = graph.upstream_masks(deps, container)
    index = {s: i for i, s in enumerate(deps)}

    def upstream(step: str) -> set[str]:
        return {s for s in deps if masks[step] >> index[s] & 1}

    assert upstream("p2") == {"p1", "a"}  # own dependency + its container's
    assert upstream("z") == {"p", "p1", "p2", "a"}  # a finished parallel step's children
    assert "p" not in upstream("p1")  # the enclosing container is still running
    assert graph.containers_of("p2", container) == ["p"]
