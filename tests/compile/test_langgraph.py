"""The workflow's own LangGraph graph: nodes and edges of a small workflow, and a
workflow embedded as a subgraph of a hand-written LangGraph application and run."""

from __future__ import annotations

from typing import Any, TypedDict

import anyio
from conftest import make_workflow

import wfctl
from wfctl.compile.langgraph import build_graphs
from wfctl.compile.plan import compile_plan

SMALL = """
inputs:
  go: {type: boolean, default: true}
steps:
  - step_id: fetch
    action: set
    with: {values: {n: 3}}
  - step_id: route
    step_type: conditional
    dependencies: [fetch]
    conditions:
      - {name: many, when: "vars.n > 2", next_steps: [many]}
      - {next_steps: [few]}
  - step_id: many
    action: noop
  - step_id: few
    action: noop
  - step_id: checks
    step_type: parallel
    dependencies: [fetch]
    parallel_steps:
      - {step_id: unit, action: noop}
      - {step_id: lint, action: noop, dependencies: [unit]}
  - step_id: gate
    step_type: human_approval
    dependencies: [checks]
    with: {message: ship?}
  - step_id: ship
    dependencies: [gate, many, few]
    trigger_rule: none_failed
    when: inputs.go
    action: set
    with: {values: {shipped: "{{ vars.n }}"}}
    rollback_actions: [unship]
  - step_id: unship
    action: noop
"""


def _edges(graph: Any) -> set[tuple[str, str, bool]]:
    return {(e.source, e.target, e.conditional) for e in graph.edges}


def test_a_small_workflow_compiles_to_its_own_nodes_and_edges() -> None:
    graph = build_graphs(compile_plan(make_workflow(SMALL)))[None].get_graph(xray=True)
    nodes = set(graph.nodes)
    assert {"fetch", "route", "many", "few", "gate", "gate.wait", "gate.done", "ship"} <= nodes
    assert {"checks:unit", "checks:lint"} <= nodes  # the parallel group is a subgraph
    assert "unship" not in nodes  # a handler step runs inside error handling, not as a node
    assert {"finish", "error_recovery"} <= nodes
    edges = _edges(graph)
    expected = {
        ("__start__", "fetch", False),
        ("route", "many", True),  # the branches are conditional edges
        ("route", "few", True),
        ("checks:unit", "checks:lint", False),
        ("gate", "gate.wait", True),  # nobody decided: wait (interrupt)
        ("gate", "gate.done", True),
        ("gate.wait", "gate.wait", True),  # the back-edge until someone decides
        ("gate.done", "ship", False),  # a join of ship's three dependencies
        ("many", "ship", False),
        ("few", "ship", False),
        ("finish", "error_recovery", True),
        ("finish", "__end__", True),
    }
    assert expected <= edges, expected - edges
    # ship's `when` sits on the join: the node decides (no edge skips a join).
    assert not any(t == "ship" and c for _, t, c in edges)


def test_a_when_on_a_single_dependency_is_a_conditional_edge() -> None:
    text = """
    steps:
      - {step_id: a, action: noop}
      - {step_id: b, action: noop, dependencies: [a], when: "false"}
    """
    graph = build_graphs(compile_plan(make_workflow(text)))[None].get_graph()
    assert ("a", "b", True) in _edges(graph)
    assert graph.edges[[(e.source, e.target) for e in graph.edges].index(("a", "b"))].data == (
        "when false"
    )


class App(TypedDict, total=False):
    """A hand-written application's state: what it gives the workflow and reads back."""

    inputs: dict[str, Any]
    outputs: dict[str, Any]
    vars: dict[str, Any]
    status: str
    summary: str


def test_a_workflow_embeds_as_a_subgraph_of_a_langgraph_application() -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.graph import END, START, StateGraph

    workflow = make_workflow(SMALL)
    approved = wfctl.RunOptions(approvals={"gate": wfctl.ApprovalDecision(True, by="app")})
    builder = StateGraph(App)
    builder.add_node("ask", lambda state: {"inputs": {"go": True}})
    builder.add_node("release", wfctl.to_langgraph(workflow, approved))
    builder.add_node(
        "summarise",
        lambda state: {"summary": f"{state['status']}: shipped {state['vars']['shipped']}"},
    )
    builder.add_edge(START, "ask")
    builder.add_edge("ask", "release")
    builder.add_edge("release", "summarise")
    builder.add_edge("summarise", END)
    app = builder.compile(checkpointer=InMemorySaver())

    config = {"configurable": {"thread_id": "t1"}}
    final = anyio.run(app.ainvoke, {}, config)
    assert final["status"] == "completed"
    assert final["summary"] == "completed: shipped 3"
    assert final["vars"] == {"n": 3, "shipped": 3}
    assert final["outputs"]["fetch"] == {"n": 3}
    assert final["outputs"]["gate"]["approved"] is True
    assert final["outputs"]["route"]["name"] == "many"
    assert "few" not in final["outputs"]  # the branch not taken
    assert final["outputs"]["checks"]["succeeded"] == 2
    # The workflow's steps ran as nodes of the application's own graph (its checkpoints).
    history = [s.next for s in app.get_state_history(config)]
    assert ("release",) in history


def test_a_loop_is_a_subgraph_with_a_back_edge_and_a_for_each_sends_its_items() -> None:
    text = """
    steps:
      - step_id: poll
        step_type: loop
        action: noop
        loop_condition: loop.index < 2
        loop_max_iterations: 5
      - step_id: each
        step_type: loop
        dependencies: [poll]
        for_each: [1, 2, 3]
        action: noop
    """
    graph = build_graphs(compile_plan(make_workflow(text)))[None].get_graph(xray=True)
    edges = _edges(graph)
    assert ("poll:poll.body", "poll:poll.next", False) in edges
    assert ("poll:poll.next", "poll:poll.body", True) in edges  # the back-edge
    assert ("poll:__start__", "poll:poll.body", False) in edges
    assert ("each:__start__", "each:each.item", True) in edges  # one Send per item


def test_the_loop_subgraph_runs_every_iteration() -> None:
    text = """
    steps:
      - step_id: count
        step_type: loop
        action: set
        with: {values: {seen: "{{ loop.index }}"}}
        loop_condition: loop.index < 3
        loop_max_iterations: 10
      - step_id: each
        step_type: loop
        dependencies: [count]
        for_each: [a, b, c]
        loop_concurrency: 2
        action: set
        with: {values: {item: "{{ loop.item }}"}}
    """
    from conftest import run

    out = run(make_workflow(text), engine="langgraph")
    assert out.result.status.value == "completed"
    count = out.result.steps["count"]
    assert count.output["iterations"] == 4
    assert [o["seen"] for o in count.output["outputs"]] == [0, 1, 2, 3]
    assert out.result.steps["each"].output["outputs"] == [
        {"item": "a"},
        {"item": "b"},
        {"item": "c"},
    ]
    assert out.result.vars == {"seen": 3, "item": "c"}


def test_a_step_with_error_handlers_has_an_edge_to_its_error_recovery_node() -> None:
    text = """
    steps:
      - {step_id: fetch, action: fail, with: {message: down}, error_handlers: [cached]}
      - {step_id: use, action: noop, dependencies: [fetch]}
      - {step_id: cached, action: set, recover: true, with: {values: {n: 0}}}
    """
    graph = build_graphs(compile_plan(make_workflow(text)))[None].get_graph()
    assert {"fetch.error_recovery", "fetch.done"} <= set(graph.nodes)
    assert "cached" not in graph.nodes  # the handler runs in the recovery node
    labels = {(e.source, e.target): e.data for e in graph.edges if e.conditional}
    assert labels[("fetch", "fetch.error_recovery")] == "error"  # taken when it failed
    assert labels[("fetch", "fetch.done")] == "done"
    edges = _edges(graph)
    assert ("fetch.error_recovery", "fetch.done", False) in edges
    assert ("fetch.done", "use", False) in edges  # recovered or not, the dependents see it


def test_a_parallel_step_holding_an_approval_waits_like_one() -> None:
    text = """
    steps:
      - step_id: group
        step_type: parallel
        parallel_steps:
          - {step_id: gate, step_type: human_approval, with: {message: ok?}}
          - {step_id: after, action: noop, dependencies: [gate]}
          - {step_id: sibling, action: noop}
      - {step_id: ship, action: noop, dependencies: [group]}
    """
    graph = build_graphs(compile_plan(make_workflow(text)))[None].get_graph(xray=True)
    edges = _edges(graph)
    # Inside the group the waiting approval ends the subgraph (its siblings run on)...
    assert ("group:gate", "group:__end__", True) in edges
    assert "group:gate.wait" not in graph.nodes
    # ...and the group waits at the top, where the deferred wait node interrupts.
    assert ("group:__end__", "group.wait", True) in edges
    assert ("group.wait", "group.wait", True) in edges
    assert ("group.done", "ship", False) in edges
