"""The execution plan: levels, dependents, roots and critical-path ranks."""

from __future__ import annotations

import pytest
from conftest import make_workflow

from wfctl.compile.plan import compile_plan

DAG = """
steps:
  - {step_id: a, action: noop}
  - {step_id: b, action: noop, dependencies: [a]}
  - {step_id: c, action: noop, dependencies: [a]}
  - {step_id: d, action: noop, dependencies: [b]}
  - {step_id: e, action: noop}
  - {step_id: f, action: noop, dependencies: [d, c]}
"""


def test_rank_is_longest_remaining_path_with_default_estimates() -> None:
    plan = compile_plan(make_workflow(DAG))
    # a -> b -> d -> f is the longest chain (4 steps of 1.0 each).
    assert dict(plan.rank) == {
        "f": 1.0,
        "d": 2.0,
        "c": 2.0,
        "b": 3.0,
        "a": 4.0,
        "e": 1.0,
    }


def test_rank_uses_learned_estimates() -> None:
    plan = compile_plan(make_workflow(DAG), estimates={"c": 10.0, "e": 0.5})
    assert plan.rank["c"] == pytest.approx(11.0)  # 10 + f
    assert plan.rank["a"] == pytest.approx(12.0)  # 1 + c's 11 beats b's 3
    assert plan.rank["b"] == pytest.approx(3.0)
    assert plan.rank["e"] == pytest.approx(0.5)


def test_top_level_dependents_and_roots() -> None:
    plan = compile_plan(make_workflow(DAG))
    level = plan.levels[None]
    assert [s.step_id for s in level.steps] == ["a", "b", "c", "d", "e", "f"]
    assert set(level.roots) == {"a", "e"}
    assert set(level.dependents["a"]) == {"b", "c"}
    assert level.dependents["f"] == ()
    assert set(level.dependents["d"]) == {"f"}


def test_next_steps_and_branch_targets_become_dependencies() -> None:
    wf = make_workflow(
        """
        steps:
          - {step_id: a, action: noop, next_steps: [b]}
          - {step_id: b, action: noop}
          - step_id: pick
            step_type: conditional
            dependencies: [b]
            conditions:
              - {when: "true", next_steps: [c]}
          - {step_id: c, action: noop}
        """
    )
    plan = compile_plan(wf)
    assert plan.levels[None].dependents["a"] == ("b",)
    assert plan.levels[None].dependents["pick"] == ("c",)
    assert plan.levels[None].roots == ("a",)
    assert plan.rank["a"] == 4.0


NESTED = """
steps:
  - step_id: outer
    step_type: parallel
    parallel_steps:
      - {step_id: one, action: noop}
      - {step_id: two, action: noop, dependencies: [one]}
      - step_id: inner
        step_type: parallel
        parallel_steps:
          - {step_id: deep, action: noop, error_handlers: [on_error]}
          - {step_id: deeper, action: noop, dependencies: [deep]}
  - {step_id: after, action: noop, dependencies: [outer]}
  - {step_id: on_error, action: noop}
"""


def test_levels_for_nested_parallel_steps() -> None:
    plan = compile_plan(make_workflow(NESTED))
    assert set(plan.levels) == {None, "outer", "inner"}
    assert [s.step_id for s in plan.levels[None].steps] == ["outer", "after"]
    assert [s.step_id for s in plan.levels["outer"].steps] == ["one", "two", "inner"]
    assert [s.step_id for s in plan.levels["inner"].steps] == ["deep", "deeper"]
    assert set(plan.levels["outer"].roots) == {"one", "inner"}
    assert plan.levels["outer"].dependents["one"] == ("two",)
    assert plan.levels["inner"].roots == ("deep",)
    assert plan.levels["inner"].container == "inner"
    assert plan.level_of("deeper").container == "inner"
    assert plan.level_of("two").container == "outer"
    assert plan.level_of("after").container is None


def test_children_rank_includes_what_runs_after_their_container() -> None:
    plan = compile_plan(make_workflow(NESTED))
    after = plan.rank["after"]
    # A child's remaining path goes on through whatever follows its container.
    assert plan.rank["two"] == pytest.approx(1.0 + after)
    assert plan.rank["one"] == pytest.approx(2.0 + after)
    assert plan.rank["deeper"] == pytest.approx(1.0 + after)
    assert plan.rank["deep"] == pytest.approx(2.0 + after)
    assert plan.rank["one"] > plan.rank["two"]


def test_handlers_are_excluded_from_levels() -> None:
    wf = make_workflow(
        """
        steps:
          - {step_id: a, action: noop, rollback_actions: [undo], error_handlers: [alert]}
          - {step_id: b, action: noop, dependencies: [a]}
          - {step_id: undo, action: noop}
          - {step_id: alert, action: noop}
        """
    )
    plan = compile_plan(wf)
    level = plan.levels[None]
    ids = [s.step_id for s in level.steps]
    assert ids == ["a", "b"]
    assert "undo" not in level.roots and "alert" not in level.roots
    assert "undo" not in level.dependents and "alert" not in level.dependents
    assert plan.rank["undo"] == 0.0 and plan.rank["alert"] == 0.0
    assert plan.rank["a"] == 2.0


def test_nested_handler_is_excluded_from_its_level() -> None:
    plan = compile_plan(make_workflow(NESTED))
    assert "on_error" not in [s.step_id for lvl in plan.levels.values() for s in lvl.steps]
    assert plan.rank["on_error"] == 0.0
