"""Matrix loops: cells with GitHub Actions semantics (axes, include, exclude), each a run
of the body with `matrix.<axis>` in context, `max_parallel` and `fail_fast`."""

from __future__ import annotations

import engine_funcs
import pytest
from conftest import make_workflow, run

from wfctl.model import StepStatus
from wfctl.model.matrix import expand_matrix


@pytest.fixture(autouse=True)
def _reset_funcs() -> None:
    engine_funcs.reset()


def test_expansion_follows_github_actions_include_semantics() -> None:
    # The example of GitHub's documentation ("Expanding or adding matrix configurations").
    cells = expand_matrix(
        {
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ],
        }
    )
    assert cells == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]


def test_exclude_removes_every_cell_matching_all_its_keys() -> None:
    cells = expand_matrix(
        {"os": ["linux", "macos"], "v": [1, 2, 3], "exclude": [{"os": "macos", "v": 2}, {"v": 3}]}
    )
    assert cells == [{"os": "linux", "v": 1}, {"os": "linux", "v": 2}, {"os": "macos", "v": 1}]


MATRIX = """
steps:
  - step_id: cells
    step_type: loop
    matrix:
      os: [linux, macos]
      py: ["3.11", "3.12"]
      exclude: [{os: macos, py: "3.11"}]
      include: [{os: windows, py: "3.12"}]
    max_parallel: 2
    steps:
      - step_id: build
        action: python
        with:
          function: "engine_funcs:probe"
          args: [cells, 0.05, "{{ matrix.os }}-{{ matrix.py }}"]
      - {step_id: test, action: set, dependencies: [build],
         with: {values: {of: "{{ steps.build.output }}", at: "{{ loop.index }}"}}}
  - step_id: square
    step_type: loop
    matrix: {n: [1, 2, 3]}
    action: set
    with: {values: {sq: "{{ matrix.n * matrix.n }}"}}
"""


def test_each_cell_runs_the_body_with_matrix_in_context_under_max_parallel() -> None:
    out = run(make_workflow(MATRIX))
    assert out.status == "completed", out.result.error
    steps = out.result.steps
    tags = ["linux-3.11", "linux-3.12", "macos-3.12", "windows-3.12"]
    for i, tag in enumerate(tags):
        assert steps[f"cells[{i}]"].status is StepStatus.COMPLETED
        assert steps[f"cells[{i}].test"].output == {"of": tag, "at": i}
    assert "cells[4]" not in steps
    assert engine_funcs.PEAK["cells"] == 2
    assert out.record("cells").output["iterations"] == 4
    assert out.record("square").output["outputs"] == [{"sq": 1}, {"sq": 4}, {"sq": 9}]


@pytest.mark.parametrize(("fail_fast", "ran"), [("true", {0, 1}), ("false", {0, 1, 2, 3})])
def test_a_failing_cell_stops_the_others_unless_fail_fast_is_false(
    fail_fast: str, ran: set[int]
) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: cells
                step_type: loop
                matrix: {{n: [0, 1, 2, 3]}}
                max_parallel: 1
                fail_fast: {fail_fast}
                steps:
                  - step_id: work
                    action: python
                    with:
                      function: "engine_funcs:fail_times"
                      args: ["cell{{{{ matrix.n }}}}", "{{{{ 1 if matrix.n == 1 else 0 }}}}"]
            """
        )
    )
    assert out.status == "failed"
    assert {n for n in range(4) if f"cell{n}" in engine_funcs.CALLS} == ran
    cells = out.record("cells")
    assert cells.output["failed"] == [1]
    if fail_fast == "true":
        assert out.result.steps["cells[2]"].reason == "cancelled: item 1 failed (fail_fast)"
    else:
        assert out.result.steps["cells[3]"].status is StepStatus.COMPLETED


@pytest.mark.parametrize(
    ("tolerated", "expected", "ran"),
    [
        ("1", "completed", {0, 1, 2, 3}),  # one failure tolerated: every cell runs
        ('"25%"', "completed", {0, 1, 2, 3}),  # 25% of 4 cells = 1
        ("0", "failed", {0, 1}),  # the default: fail_fast stops the rest
    ],
)
def test_tolerated_failures_lets_a_matrix_succeed_with_that_many_failed_cells(
    tolerated: str, expected: str, ran: set[int]
) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: cells
                step_type: loop
                matrix: {{n: [0, 1, 2, 3]}}
                max_parallel: 1
                tolerated_failures: {tolerated}
                action: python
                with:
                  function: "engine_funcs:fail_times"
                  args: ["cell{{{{ matrix.n }}}}", "{{{{ 1 if matrix.n == 1 else 0 }}}}"]
            """
        )
    )
    assert out.status == expected
    assert {n for n in range(4) if f"cell{n}" in engine_funcs.CALLS} == ran
    assert out.record("cells").output["failed"] == [1]


def test_past_its_tolerance_a_for_each_stops_and_fails() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [0, 1, 2, 3, 4]
                tolerated_failures: 1
                action: python
                with:
                  function: "engine_funcs:fail_times"
                  args: ["i{{ loop.item }}", "{{ 1 if loop.item in (1, 2) else 0 }}"]
            """
        )
    )
    assert out.status == "failed"
    assert "i3" not in engine_funcs.CALLS  # the second failure stopped the rest
    each = out.record("each")
    assert each.output["failed"] == [1, 2] and each.output["cancelled"] == [3, 4]
