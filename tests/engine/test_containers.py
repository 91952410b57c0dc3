"""Containers as nested graphs: group loops (`steps:` under a loop step) run per
iteration under ids of their own, container limits, fail-fast and failure tolerance."""

from __future__ import annotations

import engine_funcs
import pytest
from conftest import make_workflow, run

from wfctl.events import StepStateChanged
from wfctl.model import StepStatus


@pytest.fixture(autouse=True)
def _reset_funcs() -> None:
    engine_funcs.reset()


GROUP_FOR_EACH = """
steps:
  - step_id: each
    step_type: loop
    for_each: [a, b, c]
    loop_concurrency: 2
    steps:
      - {step_id: fetch, action: set, with: {values: {got: "{{ loop.item }}"}}}
      - step_id: check
        action: set
        dependencies: [fetch]
        with: {values: {ok: "{{ steps.fetch.output.got }}-{{ loop.index }}"}}
      - {step_id: only_b, action: noop, when: "loop.item == 'b'"}
  - {step_id: after, action: noop, dependencies: [each]}
"""


def test_a_for_each_over_a_group_runs_each_item_as_a_graph_with_its_own_records() -> None:
    out = run(make_workflow(GROUP_FOR_EACH))
    assert out.status == "completed"
    steps = out.result.steps
    for i, item in enumerate("abc"):
        assert steps[f"each[{i}]"].status is StepStatus.COMPLETED
        assert steps[f"each[{i}].fetch"].output == {"got": item}
        # `steps.fetch` inside the body is the same item's fetch.
        assert steps[f"each[{i}].check"].output == {"ok": f"{item}-{i}"}
        # `when` is evaluated per item.
        expected = StepStatus.COMPLETED if item == "b" else StepStatus.SKIPPED
        assert steps[f"each[{i}].only_b"].status is expected
        assert out.index(f"each[{i}].check", "running") > out.end_index(f"each[{i}].fetch")
    each = out.record("each").output
    assert each["iterations"] == 3
    assert each["outputs"][1] == {"fetch": {"got": "b"}, "check": {"ok": "b-1"}, "only_b": None}
    # The templates themselves never run under their own ids.
    assert not {"fetch", "check", "only_b"} & set(steps)
    # Events name the iteration a step belongs to.
    assert {e.container for e in out.state_events("each[2].fetch")} == {"each[2]"}
    assert {e.container for e in out.state_events("each[2]")} == {"each"}
    assert out.index("after", "running") > out.end_index("each")


def test_an_iteration_runs_its_body_through_the_ready_set_not_in_file_order() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [1]
                steps:
                  - {step_id: last, action: noop, dependencies: [slow, fast]}
                  - {step_id: slow, action: sleep, with: {seconds: 0.2}}
                  - {step_id: fast, action: noop}
                  - {step_id: after_fast, action: noop, dependencies: [fast]}
            """
        )
    )
    assert out.status == "completed"
    # after_fast starts the moment fast ends, while slow still runs.
    assert out.index("each[0].after_fast", "running") < out.end_index("each[0].slow")
    assert out.index("each[0].last", "running") > out.end_index("each[0].slow")


def test_a_group_loop_repeats_until_its_condition_over_the_iterations_steps() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: poll
                step_type: loop
                loop_condition: "true"
                until: "steps.probe.output.n >= 2"
                steps:
                  - {step_id: probe, action: set, with: {values: {n: "{{ loop.index }}"}}}
            """
        )
    )
    assert out.status == "completed"
    assert out.record("poll").output["iterations"] == 3
    assert [out.result.steps[f"poll[{i}].probe"].output for i in range(3)] == [
        {"n": 0},
        {"n": 1},
        {"n": 2},
    ]
    assert "poll[3]" not in out.result.steps


def test_until_stops_a_single_action_loop_too() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: poll
                step_type: loop
                action: set
                with: {values: {n: "{{ loop.index }}"}}
                loop_condition: "true"
                until: "loop.output.n == 3"
            """
        )
    )
    assert out.record("poll").output["iterations"] == 4


def test_a_failing_body_step_fails_its_iteration_and_the_loop() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2, 3]
                steps:
                  - step_id: work
                    action: python
                    with:
                      function: "engine_funcs:fail_times"
                      args: ["item{{ loop.item }}", "{{ 1 if loop.item == 2 else 0 }}"]
                  - {step_id: next, action: noop, dependencies: [work]}
              - {step_id: cleanup, action: noop, dependencies: [each], trigger_rule: all_done}
            """
        )
    )
    assert out.status == "failed"
    steps = out.result.steps
    assert steps["each[0]"].status is StepStatus.COMPLETED
    assert steps["each[1]"].status is StepStatus.FAILED
    assert "each[1].work" in (steps["each[1]"].error or "")
    assert steps["each[1].next"].status is StepStatus.SKIPPED
    # fail_fast (the default): item 2 never starts, and its record says why.
    assert "item3" not in engine_funcs.CALLS
    assert steps["each[2]"].status is StepStatus.SKIPPED
    assert steps["each[2]"].reason == "cancelled: item 1 failed (fail_fast)"
    each = out.record("each")
    assert each.status is StepStatus.FAILED
    assert each.output["failed"] == [1] and each.output["cancelled"] == [2]
    assert out.step_status("cleanup") == "completed"


def test_running_siblings_cancelled_by_a_failing_item_are_recorded_cancelled() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [0, 1]
                loop_concurrency: 2
                steps:
                  - step_id: work
                    action: python
                    with:
                      function: "engine_funcs:probe"
                      args: ["w", "{{ 30 if loop.item == 0 else 0 }}"]
                  - {step_id: boom, action: fail, dependencies: [work], when: "loop.item == 1"}
            """
        )
    )
    assert out.status == "failed"
    first = out.result.steps["each[0]"]
    assert first.status is StepStatus.FAILED
    assert first.error_kind == "cancelled"
    assert first.error == "cancelled: item 1 failed (fail_fast)"
    work = out.result.steps["each[0].work"]
    assert work.status is StepStatus.FAILED and work.error_kind == "cancelled"
    assert work.error


def test_fail_fast_false_runs_every_item_and_fails_at_the_end_with_every_result() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2, 3, 4]
                fail_fast: false
                action: python
                with:
                  function: "engine_funcs:fail_times"
                  args: ["item{{ loop.item }}", "{{ 1 if loop.item in (1, 3) else 0 }}"]
            """
        )
    )
    assert out.status == "failed"
    assert all(engine_funcs.CALLS[f"item{i}"] == 1 for i in range(1, 5))
    each = out.record("each")
    assert each.status is StepStatus.FAILED
    assert each.error is not None and each.error.startswith("2 of 4 items failed (0, 2)")
    assert each.output["failed"] == [0, 2]
    assert each.output["outputs"][1] is not None and each.output["outputs"][3] is not None


def test_a_parallel_step_runs_at_most_max_parallel_children_at_once() -> None:
    children = "\n".join(
        f'          - {{step_id: c{i}, action: python, with: {{function: "engine_funcs:probe", '
        f"args: [par, 0.05]}}}}"
        for i in range(6)
    )
    out = run(
        make_workflow(
            "steps:\n  - step_id: group\n    step_type: parallel\n    max_parallel: 2\n"
            "    parallel_steps:\n" + children.replace("          ", "      ")
        )
    )
    assert out.status == "completed"
    assert engine_funcs.PEAK["par"] == 2
    assert out.record("group").output["succeeded"] == 6


def test_a_group_body_may_hold_a_parallel_group_and_a_nested_loop() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: outer
                step_type: loop
                for_each: [x, y]
                steps:
                  - step_id: both
                    step_type: parallel
                    parallel_steps:
                      - {step_id: left, action: set, with: {values: {l: "{{ loop.item }}"}}}
                      - {step_id: right, action: noop}
                  - step_id: inner
                    step_type: loop
                    for_each: [1, 2]
                    dependencies: [both]
                    steps:
                      - {step_id: leaf, action: set, with: {values: {v: "{{ loop.item }}"}}}
            """
        )
    )
    assert out.status == "completed", out.result.error
    steps = out.result.steps
    assert steps["outer[1].left"].output == {"l": "y"}
    assert {e.container for e in out.state_events("outer[1].left")} == {"outer[1].both"}
    assert steps["outer[1].inner[1].leaf"].output == {"v": 2}
    assert steps["outer[0].inner"].output["iterations"] == 2


def test_a_group_loop_holds_no_slot_so_one_slot_still_runs_its_body() -> None:
    out = run(
        make_workflow(
            """
            max_parallel_steps: 1
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2]
                steps:
                  - {step_id: a, action: noop}
                  - {step_id: b, action: noop, dependencies: [a]}
            """
        )
    )
    assert out.status == "completed"
    assert sum(isinstance(e, StepStateChanged) for e in out.events) > 6


def test_a_loop_timeout_bounds_the_whole_loop_of_pure_actions() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: spin
                step_type: loop
                action: set
                with: {values: {n: "{{ loop.index }}"}}
                loop_condition: "true"
                loop_max_iterations: 100000000
                timeout: 0.5
            """
        )
    )
    assert out.status == "failed"
    record = out.record("spin")
    assert record.error_kind == "timeout"
    assert record.error == "loop timed out after 0.5s"


def test_continue_on_failure_on_a_parallel_child_does_not_fail_the_group() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: group
                step_type: parallel
                parallel_steps:
                  - {step_id: ok, action: noop}
                  - step_id: flaky
                    action: fail
                    retry_policy: {continue_on_failure: true}
              - {step_id: after, action: noop, dependencies: [group]}
            """
        )
    )
    assert out.status == "completed"
    group = out.record("group")
    assert group.status is StepStatus.COMPLETED
    assert group.output["tolerated"] == 1 and group.output["failed"] == 0
    assert group.output["children"]["flaky"]["status"] == "failed"
    assert out.step_status("after") == "completed"


def test_a_parallel_step_let_in_by_all_done_after_a_failure_runs_its_children() -> None:
    """Issue 12: every child was skipped ('run failed') and the group said completed."""
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: broken, action: fail}
              - step_id: cleanup
                step_type: parallel
                dependencies: [broken]
                trigger_rule: all_done
                parallel_steps:
                  - {step_id: wipe, action: set, with: {values: {wiped: true}}}
                  - {step_id: notify, action: noop, dependencies: [wipe]}
              - {step_id: later, action: noop, dependencies: [cleanup]}
            """
        )
    )
    assert out.status == "failed"
    assert out.step_status("wipe") == "completed"
    assert out.step_status("notify") == "completed"
    cleanup = out.record("cleanup")
    assert cleanup.status is StepStatus.COMPLETED
    assert cleanup.output["succeeded"] == 2 and cleanup.output["skipped"] == 0
    assert out.result.vars["wiped"] is True
    # Outside the admitted group, the run's failure still skips what follows.
    assert out.step_status("later") == "skipped"


def test_a_group_loop_let_in_by_all_done_after_a_failure_runs_its_body() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: broken, action: fail}
              - step_id: each
                step_type: loop
                for_each: [1, 2]
                dependencies: [broken]
                trigger_rule: all_done
                steps:
                  - {step_id: tidy, action: noop}
            """
        )
    )
    assert out.status == "failed"
    assert [out.step_status(f"each[{i}].tidy") for i in range(2)] == ["completed"] * 2


def test_the_live_table_nests_iteration_rows_under_their_loop() -> None:
    import io

    from rich.console import Console

    from wfctl.view.live import LiveTable

    workflow = make_workflow(GROUP_FOR_EACH)
    console = Console(file=io.StringIO(), width=100, height=60, force_terminal=False)
    table = LiveTable(workflow, io.StringIO(), console=console)
    run(workflow, subscribers=(table,))
    console.print(table)
    text = console.file.getvalue()  # type: ignore[attr-defined]
    lines = text.splitlines()

    def indent(step_id: str) -> int:
        (line,) = [ln for ln in lines if ln[2:].strip().startswith(f"{step_id} ")]
        return len(line[2:]) - len(line[2:].lstrip())

    assert indent("each") == 0
    assert indent("each[1]") == 2
    assert indent("each[1].check") == 4
    # The body's templates never show as rows of their own.
    assert not [ln for ln in lines if ln[2:].strip().startswith("fetch ")]


def test_single_action_items_cancelled_by_a_failing_item_say_so_in_their_attempts() -> None:
    """Issue 12: the cancelled siblings' attempts had `error: null` and looked successful."""
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [0, 1, 2]
                loop_concurrency: 3
                action: python
                with:
                  # Item 1 fails after a turn of the loop, once its siblings have started.
                  function: "engine_funcs:probe_or_fail"
                  args: ["w", "{{ 30 if loop.item != 1 else 'boom' }}"]
            """
        )
    )
    assert out.status == "failed"
    each = out.record("each")
    assert each.output["failed"] == [1] and each.output["cancelled"] == [0, 2]
    errors = sorted((a.error_kind or "", a.error or "") for a in each.attempts)
    assert len(errors) == 3
    assert [k for k, _ in errors].count("cancelled") == 2
    assert all(e for _, e in errors), errors
    assert ("cancelled", "cancelled: item 1 failed (fail_fast)") in errors
