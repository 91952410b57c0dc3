"""Step types through the engine: parallel, loop, for_each, human_approval, agent routing,
react, and the actions (shell, python, http) run by real steps."""

from __future__ import annotations

import itertools
import json
from typing import Any

import engine_funcs
import pytest
from conftest import make_workflow, run

from wfctl.engine import ApprovalDecision, ApprovalRequest
from wfctl.events import CircuitChanged, HandlerRan, RunFinished
from wfctl.model import StepStatus


@pytest.fixture(autouse=True)
def _reset_funcs() -> None:
    engine_funcs.reset()


# -- parallel -------------------------------------------------------------------------


def parallel_workflow(failing: int, threshold: float | None) -> str:
    policy = f"    retry_policy: {{parallel_failure_threshold: {threshold}}}\n" if threshold else ""
    children = ""
    for i in range(3):
        if i < failing:
            children += f"      - {{step_id: c{i}, action: fail, with: {{message: 'child {i}'}}}}\n"
        else:
            children += f"      - {{step_id: c{i}, action: set, with: {{values: {{n: {i}}}}}}}\n"
    return (
        "steps:\n  - step_id: par\n    step_type: parallel\n"
        + policy
        + "    parallel_steps:\n"
        + children
        + "  - {step_id: after, action: noop, dependencies: [par]}\n"
    )


def test_parallel_children_run_and_output_has_per_child_results() -> None:
    out = run(make_workflow(parallel_workflow(0, None)))
    assert out.status == "completed"
    par = out.record("par")
    assert par.status is StepStatus.COMPLETED
    assert par.output["succeeded"] == 3
    assert par.output["failed"] == 0
    assert par.output["success_rate"] == 1.0
    assert par.output["children"] == {
        f"c{i}": {"status": "completed", "output": {"n": i}, "error": None} for i in range(3)
    }
    # The container ends after its children, its dependents start after it.
    assert out.end_index("par") > max(out.end_index(f"c{i}") for i in range(3))
    assert out.index("after", "running") > out.end_index("par")
    assert all(e.container == "par" for i in range(3) for e in out.state_events(f"c{i}"))


@pytest.mark.parametrize(
    ("failing", "threshold", "expected"),
    [
        (1, 0.5, "completed"),
        (2, 0.5, "failed"),
        (1, None, "failed"),  # default threshold 1.0: every child must succeed
        (0, None, "completed"),
        (3, 0.5, "failed"),
    ],
)
def test_parallel_failure_threshold(failing: int, threshold: float | None, expected: str) -> None:
    out = run(make_workflow(parallel_workflow(failing, threshold)))
    par = out.record("par")
    assert par.status.value == expected
    assert out.status == expected
    assert out.exit_code == (0 if expected == "completed" else 1)
    assert par.output["failed"] == failing
    assert par.output["succeeded"] == 3 - failing
    assert par.output["success_rate"] == pytest.approx((3 - failing) / 3)
    for i in range(failing):
        child = par.output["children"][f"c{i}"]
        assert child["status"] == "failed"
        assert child["error"] == f"child {i}"
    if expected == "failed":
        assert "threshold" in (par.error or "")
        assert out.step_status("after") == "skipped"
    else:
        assert out.step_status("after") == "completed"


@pytest.mark.parametrize(
    ("third_child", "expected", "rate"),
    [
        # skipped by `when`: does not count (FORMAT.md: completed / (completed + failed))
        ("{step_id: third, action: noop, when: 'false'}", "completed", 0.5),
        # skipped because its sibling failed: does not count either, as documented
        ("{step_id: third, action: noop, dependencies: [bad]}", "completed", 0.5),
        # a third child that runs and succeeds
        ("{step_id: third, action: noop}", "completed", 2 / 3),
    ],
)
def test_parallel_threshold_ignores_skipped_children(
    third_child: str, expected: str, rate: float
) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: par
                step_type: parallel
                retry_policy: {{parallel_failure_threshold: 0.5}}
                parallel_steps:
                  - {{step_id: good, action: noop}}
                  - {{step_id: bad, action: fail}}
                  - {third_child}
            """
        )
    )
    par = out.record("par")
    assert par.output["success_rate"] == pytest.approx(rate)
    assert par.status.value == expected
    skipped = out.step_status("third") == "skipped"
    assert par.output["skipped"] == (1 if skipped else 0)


def test_parallel_with_every_child_skipped_succeeds() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: par
                step_type: parallel
                parallel_steps:
                  - {step_id: one, action: noop, when: "false"}
                  - {step_id: two, action: noop, when: "false"}
            """
        )
    )
    assert out.record("par").status is StepStatus.COMPLETED
    assert out.record("par").output["skipped"] == 2


def test_parallel_children_respect_their_own_dependencies() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: par
                step_type: parallel
                parallel_steps:
                  - {step_id: first, action: sleep, with: {seconds: 0.02}}
                  - {step_id: second, action: noop, dependencies: [first]}
                  - {step_id: free, action: noop}
            """
        )
    )
    assert out.status == "completed"
    assert out.index("second", "running") > out.end_index("first")


# -- loops ------------------------------------------------------------------------------


def test_loop_runs_until_condition_false_with_index_and_previous() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: poll
                step_type: loop
                action: python
                with:
                  function: "engine_funcs:async_echo"
                  args:
                    - i: "{{ loop.index }}"
                      prev: "{{ loop.previous.i if loop.previous else -1 }}"
                loop_condition: "loop.output.i < 3"
            """
        )
    )
    assert out.status == "completed"
    record = out.record("poll")
    assert record.output["iterations"] == 4
    assert record.output["outputs"] == [
        {"i": 0, "prev": -1},
        {"i": 1, "prev": 0},
        {"i": 2, "prev": 1},
        {"i": 3, "prev": 2},
    ]
    assert record.output["last"] == {"i": 3, "prev": 2}
    assert len(record.attempts) == 4
    assert out.trail("poll") == ["running"] * 4 + ["completed"]


def test_loop_previous_is_none_on_the_first_iteration() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: poll
                step_type: loop
                action: python
                with: {function: "engine_funcs:async_echo", args: ["{{ loop.previous }}"]}
                loop_condition: "loop.index < 1"
            """
        )
    )
    assert out.record("poll").output["outputs"] == [None, None]


def test_loop_condition_sees_upstream_and_the_iteration_output() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: limit, action: set, with: {values: {n: 2}}}
              - step_id: poll
                step_type: loop
                dependencies: [limit]
                action: python
                with: {function: "engine_funcs:count", args: [poll]}
                loop_condition: "loop.output < steps.limit.output.n"
            """
        )
    )
    assert out.record("poll").output["outputs"] == [1, 2]


def test_loop_max_iterations_bounds_the_loop() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: forever
                step_type: loop
                action: python
                with: {function: "engine_funcs:count", args: [forever]}
                loop_condition: "true"
                loop_max_iterations: 3
            """
        )
    )
    record = out.record("forever")
    assert record.status is StepStatus.FAILED
    assert "loop did not finish" in (record.error or "")
    assert engine_funcs.CALLS["forever"] == 3
    assert len(record.attempts) == 3
    assert out.status == "failed"


def test_for_each_sequential_outputs_in_item_order() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [a, b, c]
                action: python
                with:
                  function: "engine_funcs:probe"
                  args: [seq, 0.01, "{{ loop.index }}-{{ loop.item }}"]
            """
        )
    )
    assert out.status == "completed"
    assert out.record("each").output == {
        "iterations": 3,
        "outputs": ["0-a", "1-b", "2-c"],
        "last": "2-c",
    }
    assert engine_funcs.PEAK["seq"] == 1


def test_for_each_bounded_parallel_keeps_item_order_and_the_bound() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [0, 1, 2, 3, 4, 5, 6]
                loop_concurrency: 3
                action: python
                with:
                  function: "engine_funcs:probe"
                  args: [par, "{{ 0.08 - 0.01 * loop.item }}", "{{ loop.item * 10 }}"]
            """
        )
    )
    assert out.status == "completed"
    # Later items finish first, yet the outputs are in item order.
    assert out.record("each").output["outputs"] == [0, 10, 20, 30, 40, 50, 60]
    assert engine_funcs.PEAK["par"] == 3


def test_for_each_concurrency_stays_under_max_parallel_steps() -> None:
    out = run(
        make_workflow(
            """
            max_parallel_steps: 2
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2, 3, 4, 5]
                loop_concurrency: 4
                action: python
                with: {function: "engine_funcs:probe", args: [capped, 0.03]}
            """
        )
    )
    assert out.status == "completed"
    assert engine_funcs.PEAK["capped"] == 2


def test_for_each_over_an_expression() -> None:
    out = run(
        make_workflow(
            """
            inputs:
              names: {type: array, items: {type: string}}
            steps:
              - step_id: each
                step_type: loop
                for_each: "inputs.names"
                input_mapping: {who: "loop.item | upper"}
                action: python
                with: {function: "engine_funcs:async_echo", args: ["hi {{ input.who }}"]}
            """
        ),
        {"names": ["ann", "bob"]},
    )
    assert out.record("each").output["outputs"] == ["hi ANN", "hi BOB"]


def test_for_each_with_more_items_than_the_bound_fails() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2, 3]
                loop_max_iterations: 2
                action: noop
            """
        )
    )
    record = out.record("each")
    assert record.status is StepStatus.FAILED
    assert "loop_max_iterations" in (record.error or "")


@pytest.mark.parametrize("concurrency", [1, 2])
def test_for_each_item_failure_fails_the_step(concurrency: int) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2, 3]
                loop_concurrency: {concurrency}
                action: python
                with:
                  function: "engine_funcs:fail_times"
                  args: ["item{{{{ loop.item }}}}", "{{{{ 1 if loop.item == 2 else 0 }}}}"]
              - {{step_id: cleanup, action: noop, dependencies: [each], trigger_rule: all_done}}
            """
        )
    )
    record = out.record("each")
    assert record.status is StepStatus.FAILED
    assert "planned failure" in (record.error or "")
    assert out.step_status("cleanup") == "completed"
    assert out.status == "failed"
    assert engine_funcs.CALLS["item1"] == 1 and engine_funcs.CALLS["item2"] == 1
    if concurrency == 1:
        assert "item3" not in engine_funcs.CALLS  # items after the failure never start


# -- human approval -------------------------------------------------------------------

APPROVAL = """
inputs:
  version: {type: string, default: "1.2"}
steps:
  - {step_id: build, action: noop, rollback_actions: [unbuild]}
  - step_id: approve
    step_type: human_approval
    dependencies: [build]
    with: {message: "Ship {{ inputs.version }}?", approvers: [alice]}
  - {step_id: deploy, action: noop, dependencies: [approve]}
  - {step_id: docs, action: sleep, with: {seconds: 0.02}}
  - {step_id: docs_publish, action: noop, dependencies: [docs]}
  - {step_id: unbuild, action: noop}
"""


def test_pre_approved_step_completes() -> None:
    out = run(
        make_workflow(APPROVAL),
        approvals={"approve": ApprovalDecision(True, by="alice", comment="ship it")},
    )
    assert out.status == "completed"
    approve = out.record("approve")
    assert approve.status is StepStatus.COMPLETED
    assert approve.output == {"approved": True, "by": "alice", "comment": "ship it"}
    assert out.step_status("deploy") == "completed"
    assert out.index("deploy", "running") > out.end_index("approve")
    assert out.result.rollbacks == ()


def test_undecided_approval_pauses_the_run_but_independent_steps_finish() -> None:
    out = run(make_workflow(APPROVAL))
    assert out.status == "waiting_approval"
    assert out.exit_code == 4
    assert out.result.waiting_for == ("approve",)
    assert out.step_status("approve") == "waiting"
    assert out.record("approve").reason
    assert out.step_status("build") == "completed"
    assert out.step_status("docs") == "completed"
    assert out.step_status("docs_publish") == "completed"
    # deploy neither ran nor was skipped: it waits with the approval.
    assert out.step_status("deploy") == "pending"
    assert out.trail("deploy") == []
    # a paused run is not a failed one: no rollback, handlers not marked unused
    assert out.result.rollbacks == ()
    finished = out.of(RunFinished)
    assert finished[-1].status.value == "waiting_approval"


def test_rejected_approval_fails_and_rolls_back() -> None:
    out = run(
        make_workflow(APPROVAL),
        approvals={"approve": ApprovalDecision(False, by="bob", comment="not today")},
    )
    assert out.status == "failed"
    assert out.exit_code == 1
    approve = out.record("approve")
    assert approve.status is StepStatus.FAILED
    assert "rejected by bob" in (approve.error or "")
    assert "not today" in (approve.error or "")
    assert out.step_status("deploy") == "skipped"
    assert [(r["step_id"], r["for_step"], r["status"]) for r in out.result.rollbacks] == [
        ("unbuild", "build", "completed")
    ]
    rolled = [e for e in out.of(HandlerRan) if e.purpose == "rollback"]
    assert [e.step_id for e in rolled] == ["unbuild"]


def test_approval_handler_gets_the_rendered_request() -> None:
    requests: list[ApprovalRequest] = []

    async def handler(request: ApprovalRequest) -> ApprovalDecision:
        requests.append(request)
        return ApprovalDecision(True, by="carol")

    out = run(make_workflow(APPROVAL), approval_handler=handler, inputs={"version": "2.0"})
    assert out.status == "completed"
    assert len(requests) == 1
    assert requests[0].message == "Ship 2.0?"
    assert requests[0].approvers == ("alice",)
    assert requests[0].step_id == "approve"
    assert out.record("approve").output["by"] == "carol"


# -- agent routing ----------------------------------------------------------------------

AGENTS = """
circuit_breaker: {failure_threshold: 1, reset_timeout: 30}
agents:
  - name: alpha
    capabilities: [work, risky]
    action: fail
    with: {message: "alpha is down"}
  - name: beta
    capabilities: [work]
    action: python
    with: {function: "engine_funcs:async_echo", args: ["beta did it"]}
"""


def test_agent_routing_records_the_chosen_agent() -> None:
    out = run(
        make_workflow(
            """
            agents:
              - name: solo
                capabilities: [echo]
                action: python
                with: {function: "engine_funcs:async_echo", args: ["from agent"]}
            steps:
              - step_id: job
                agent_capability: echo
                input_mapping: {x: "'from step'"}
                with: {args: ["{{ input.x }}"]}
            """
        )
    )
    assert out.status == "completed"
    record = out.record("job")
    assert record.agent == "solo"
    assert record.agent_reason == "only agent providing 'echo'"
    assert record.output == "from step"  # the step's `with` is merged over the agent's
    lines = out.output_lines("job")
    assert any("routed to agent solo" in line for line in lines)
    assert out.state_events("job")[-1].agent == "solo"
    assert out.state_events("job")[-1].agent_reason == "only agent providing 'echo'"


def test_agent_with_open_breaker_is_avoided() -> None:
    out = run(
        make_workflow(
            AGENTS
            + """
steps:
  - step_id: first
    agent_capability: risky
    retry_policy: {continue_on_failure: true}
  - {step_id: second, agent_capability: work, dependencies: [first], trigger_rule: all_done}
"""
        )
    )
    assert out.record("first").agent == "alpha"
    assert out.step_status("first") == "failed"
    opened = [(e.target, e.state) for e in out.of(CircuitChanged)]
    assert ("agent:alpha", "open") in opened
    second = out.record("second")
    assert second.status is StepStatus.COMPLETED
    assert second.agent == "beta"
    assert second.output == "beta did it"
    assert any("routed to agent beta" in line for line in out.output_lines("second"))
    assert any("breaker" in line for line in out.output_lines("second"))


def test_no_usable_agent_fails_with_circuit_open() -> None:
    out = run(
        make_workflow(
            AGENTS
            + """
steps:
  - step_id: first
    agent_capability: risky
    retry_policy: {continue_on_failure: true}
  - {step_id: second, agent_capability: risky, dependencies: [first], trigger_rule: all_done}
"""
        )
    )
    second = out.record("second")
    assert second.status is StepStatus.FAILED
    assert second.error_kind == "circuit_open"
    assert "alpha" in (second.error or "")


def test_retry_falls_back_to_another_agent_when_the_breaker_opens() -> None:
    out = run(
        make_workflow(
            AGENTS.replace("reset_timeout: 30", "reset_timeout: 0.2")
            + """
steps:
  - step_id: job
    agent_capability: work
    retry_policy: {max_attempts: 3, initial_delay: 0}
"""
        )
    )
    assert ("agent:alpha", "open") in [(e.target, e.state) for e in out.of(CircuitChanged)]
    record = out.record("job")
    assert record.status is StepStatus.COMPLETED
    assert record.agent == "beta"


# -- actions through the engine --------------------------------------------------------


def test_shell_step_runs_a_real_process_and_parses_json() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: sh
                action: shell
                with:
                  command: 'printf "{\\"n\\": %s, \\"who\\": \\"%s\\"}\\n" 42 "$WHO"; echo warn >&2'
                  env: {WHO: "engine"}
              - step_id: argv
                action: shell
                dependencies: [sh]
                with:
                  command:
                    - python3
                    - "-c"
                    - "import sys; print(sys.argv[1])"
                    - "{{ steps.sh.output.json.who }}"
            """
        )
    )
    assert out.status == "completed"
    output = out.record("sh").output
    assert output["exit_code"] == 0
    assert output["json"] == {"n": 42, "who": "engine"}
    assert "warn" in output["stderr"]
    assert out.record("argv").output["stdout"].strip() == "engine"
    assert any("engine" in line for line in out.output_lines("sh"))


def test_shell_step_non_zero_exit_fails_with_exit_code_kind() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: sh, action: shell, with: {command: "echo nope; exit 3"}}
            """
        )
    )
    record = out.record("sh")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "exit_code"
    assert "3" in (record.error or "")


def test_shell_step_gets_run_and_step_ids_in_its_environment() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: sh
                action: shell
                with: {command: 'echo "$WFCTL_STEP_ID $WFCTL_ATTEMPT $WFCTL_IDEMPOTENCY_KEY"'}
            """
        ),
        run_id="run-env-1",
    )
    assert out.record("sh").output["stdout"].split() == ["sh", "1", "run-env-1:sh"]


@pytest.mark.parametrize("function", ["engine_funcs:sync_echo", "engine_funcs:async_echo"])
def test_python_callables_sync_and_async(function: str) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: call
                action: python
                with: {{function: "{function}", kwargs: {{value: [1, "two"]}}}}
            """
        )
    )
    assert out.status == "completed"
    output = out.record("call").output
    if function == "engine_funcs:sync_echo":
        assert output == {"value": [1, "two"], "thread": True}  # ran in a worker thread
    else:
        assert output == [1, "two"]


def test_python_step_from_the_shared_pyfuncs_module() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: add, action: python, with: {function: "pyfuncs:add", args: [2, 3]}}
              - step_id: aadd
                action: python
                dependencies: [add]
                with: {function: "pyfuncs:async_add", args: ["{{ steps.add.output }}", 10]}
              - step_id: boom
                action: python
                dependencies: [aadd]
                with: {function: "pyfuncs:boom", args: ["bad thing"]}
            """
        )
    )
    assert out.record("add").output == 5
    assert out.record("aadd").output == 15
    boom = out.record("boom")
    assert boom.status is StepStatus.FAILED
    assert "ValueError" in (boom.error or "") and "bad thing" in (boom.error or "")
    assert out.status == "failed"


def test_http_step_against_a_real_server(http_server: Any) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: get
                action: http
                with: {{url: "{http_server.url}/ok"}}
              - step_id: post
                action: http
                dependencies: [get]
                with:
                  method: POST
                  url: "{http_server.url}/echo"
                  json: {{items: "{{{{ steps.get.output.json['items'] }}}}"}}
            """
        )
    )
    assert out.status == "completed"
    assert out.record("get").output["status"] == 200
    assert out.record("get").output["json"] == {"ok": True, "items": [1, 2]}
    assert out.record("post").output["json"] == {"received": {"items": [1, 2]}}
    assert json.loads(out.record("post").output["body"]) == {"received": {"items": [1, 2]}}


# -- misc -------------------------------------------------------------------------------


def test_noop_and_sleep_outputs() -> None:
    out = run(
        make_workflow(
            """
            global_variables: {pause: 0.01}
            steps:
              - {step_id: nothing, action: noop}
              - {step_id: pause, action: sleep, with: {seconds: "{{ vars.pause }}"}}
            """
        )
    )
    assert out.record("nothing").output is None
    assert out.record("pause").output == {"slept": 0.01}
    assert out.record("pause").status is StepStatus.COMPLETED
    assert out.record("nothing").attempts[0].number == 1
    assert out.record("nothing").duration is not None
    assert StepStatus.COMPLETED.terminal and not StepStatus.WAITING.terminal


APPROVAL_IN_PARALLEL = """
steps:
  - step_id: par
    step_type: parallel
    parallel_steps:
      - {step_id: sibling, action: noop}
      - {step_id: ask, step_type: human_approval, with: {message: "ok?"}}
      - {step_id: after_ask, action: noop, dependencies: [ask]}
  - {step_id: next, action: noop, dependencies: [par]}
"""


def test_approval_inside_a_parallel_step_pauses_its_container() -> None:
    out = run(make_workflow(APPROVAL_IN_PARALLEL))
    assert out.status == "waiting_approval"
    assert out.exit_code == 4
    assert "ask" in out.result.waiting_for
    assert out.step_status("sibling") == "completed"
    assert out.step_status("par") == "waiting"
    assert out.step_status("after_ask") == "pending"
    assert out.step_status("next") == "pending"


def test_pre_approved_step_inside_a_parallel_step() -> None:
    out = run(make_workflow(APPROVAL_IN_PARALLEL), approvals={"ask": ApprovalDecision(True)})
    assert out.status == "completed"
    assert out.record("par").output["children"]["ask"]["output"]["approved"] is True
    assert out.step_status("next") == "completed"


def test_loop_with_set_action_merges_the_values_into_vars() -> None:
    out = run(
        make_workflow(
            """
            global_variables: {keep: 1}
            steps:
              - step_id: each
                step_type: loop
                for_each: [1, 2]
                action: set
                with: {values: {item: "{{ loop.item }}"}}
            """
        )
    )
    assert out.status == "completed"
    assert "iterations" not in out.result.vars
    assert out.result.vars == {"keep": 1, "item": 2}


def test_agent_max_concurrency_is_enforced() -> None:
    out = run(
        make_workflow(
            """
            agents:
              - name: solo
                capabilities: [work]
                max_concurrency: 1
                action: python
                with: {function: "engine_funcs:probe", args: [agent, 0.05]}
            steps:
              - {step_id: a, agent_capability: work}
              - {step_id: b, agent_capability: work}
              - {step_id: c, agent_capability: work}
            """
        )
    )
    assert out.status == "completed"
    assert engine_funcs.PEAK["agent"] == 1


def test_loop_delay_pauses_between_iterations() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: poll
                step_type: loop
                action: noop
                loop_condition: "loop.index < 2"
                loop_delay: 0.1
            """
        )
    )
    assert out.record("poll").output["iterations"] == 3
    starts = [e.ts for e in out.state_events("poll") if e.status is StepStatus.RUNNING]
    assert len(starts) == 3
    assert all(b - a >= 0.09 for a, b in itertools.pairwise(starts))


def test_expression_error_in_when_fails_the_step_clearly() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: first, action: noop}
              - step_id: gated
                action: noop
                dependencies: [first]
                when: "steps.first.output.x > 1"
            """
        )
    )
    record = out.record("gated")
    assert record.status is StepStatus.FAILED
    assert record.error and "expression" in record.error
    assert out.status == "failed"
