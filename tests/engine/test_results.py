"""Result semantics in the engine: `depends` over every kind of result, skip kinds,
structured errors, `retry_if`, the retry deadline, `backoff_factor`, recovery and on_exit."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from conftest import make_workflow, run

from wfctl.model import RetryPolicy
from wfctl.model.enums import Backoff

UPSTREAM = """
steps:
  - step_id: ok
    action: noop
  - step_id: bad
    action: fail
    with: {message: boom}
    retry_policy: {continue_on_failure: true}
  - step_id: slow
    action: sleep
    with: {seconds: 5}
    timeout: 0.05
    retry_policy: {continue_on_failure: true}
  - step_id: invalid
    action: shell
    with: {command: ["true"]}
    input_mapping: {n: "1"}
    input_validation: {type: object, properties: {n: {type: string}}}
    retry_policy: {continue_on_failure: true}
  - step_id: skp
    action: noop
    when: "false"
"""

DEPENDS_CASES = [
    ("ok.succeeded and not ok.failed and ok.done", "completed"),
    ("bad.failed and not bad.errored and not bad.timed_out", "completed"),
    ("slow.timed_out and slow.failed and slow.error_kind == 'timeout'", "completed"),
    ("invalid.errored and invalid.failed", "completed"),
    ("skp.skipped and skp.skip_reason == 'when' and skp.status == 'skipped'", "completed"),
    ("ok.failed or skp.succeeded", "skipped"),
    ("bad.succeeded", "skipped"),
]


@pytest.mark.parametrize(("expr", "expected"), DEPENDS_CASES)
def test_depends_sees_each_kind_of_result(expr: str, expected: str) -> None:
    text = UPSTREAM + f'  - step_id: target\n    action: noop\n    depends: "{expr}"\n'
    out = run(make_workflow(text))
    assert out.step_status("target") == expected, out.dump()
    # depends names its dependencies: the decision waits for all of them.
    named = [s for s in ("ok", "bad", "slow", "invalid", "skp") if s in expr]
    assert out.end_index("target") > max(out.end_index(s) for s in named)
    if expected == "skipped":
        assert out.record("target").reason == f"depends is false: {expr}"


def test_depends_runs_after_the_run_failed() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: a, action: fail, with: {message: broke}}
              - {step_id: on_failure, action: noop, depends: "a.failed"}
              - {step_id: normal, action: noop, dependencies: [a]}
            """
        )
    )
    assert out.status == "failed"
    assert out.step_status("on_failure") == "completed"
    assert out.step_status("normal") == "skipped"


def test_steps_view_has_results_skip_reasons_and_structured_errors() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: pick
                step_type: conditional
                conditions:
                  - {when: "false", next_steps: [left]}
                  - {next_steps: [right]}
              - {step_id: left, action: noop}
              - {step_id: right, action: noop}
              - {step_id: after_left, action: noop, dependencies: [left]}
              - step_id: sh
                action: shell
                with: {command: "echo out; echo err >&2; exit 9"}
                retry_policy: {continue_on_failure: true}
              - step_id: look
                dependencies: [after_left, right, sh]
                trigger_rule: all_done
                action: set
                with:
                 values:
                  left: "{{ steps.left.skip_reason }}"
                  after_left: "{{ steps.after_left.skip_reason }}"
                  right: "{{ steps.right.result }}"
                  sh: "{{ steps.sh.result }}"
                  kind: "{{ steps.sh.error.kind }}"
                  code: "{{ steps.sh.error.exit_code }}"
                  message: "{{ steps.sh.error.message }}"
                  as_text: "{{ steps.sh.error }}"
                  stdout: "{{ steps.sh.output.stdout }}"
            """
        )
    )
    got = out.result.vars
    assert got["left"] == "not_chosen"
    assert got["after_left"] == "upstream_skipped"
    assert got["right"] == "succeeded"
    assert got["sh"] == "failed"
    assert got["kind"] == "exit_code"
    assert got["code"] == 9
    assert got["message"] == got["as_text"] == "command exited with code 9: err"
    assert got["stdout"] == "out\n"


def test_retry_if_decides_per_attempt_from_output(tmp_path: Path) -> None:
    # Exits 75 twice, then 3: retried while 75, not for 3.
    out = run(
        make_workflow(
            """
            steps:
              - step_id: s
                action: shell
                with:
                  command: >-
                    n=$(cat n 2>/dev/null || echo 0); n=$((n+1)); echo $n > n;
                    [ $n -ge 3 ] && exit 3; echo "try $n"; exit 75
                retry_policy:
                  max_attempts: 10
                  initial_delay: 0
                  retry_if: >-
                    output.exit_code == 75 and 'try' in output.stdout
                    and error.kind == 'exit_code'
            """
        ),
        workdir=tmp_path,
    )
    record = out.record("s")
    assert out.status == "failed"
    assert len(record.attempts) == 3
    assert "not retried: retry_if is false" in record.error
    assert record.output["exit_code"] == 3


def test_retry_deadline_stops_retries() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: s
                action: fail
                with: {message: nope}
                retry_policy:
                  {max_attempts: 50, backoff: fixed, initial_delay: 0.2, jitter: false,
                   deadline: 0.1}
            """
        )
    )
    record = out.record("s")
    assert len(record.attempts) == 1  # the first retry would start past the deadline
    assert "not retried: retry deadline of 0.1s" in record.error


def test_backoff_factor_scales_exponential_delays() -> None:
    rng = random.Random(0)
    policy = RetryPolicy(
        backoff=Backoff.EXPONENTIAL, initial_delay=1.0, max_delay=1000.0, jitter=False,
        backoff_factor=3.0,
    )  # fmt: skip
    assert [policy.delay(n, rng) for n in (1, 2, 3, 4)] == [1.0, 3.0, 9.0, 27.0]
    huge = RetryPolicy(initial_delay=1.0, max_delay=5.0, jitter=False, backoff_factor=10.0)
    assert huge.delay(10_000, rng) == 5.0  # no overflow


def test_recover_runs_output_mapping_and_stops_later_handlers() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: a
                action: fail
                with: {message: "db down"}
                error_handlers: [fix, never]
                output_mapping: {value: "output.value"}
              - {step_id: b, action: noop, depends: "a.succeeded"}
              - step_id: fix
                recover: true
                action: set
                with: {values: {value: 42}}
              - {step_id: never, action: noop}
            """
        )
    )
    assert out.status == "completed"
    a = out.record("a")
    assert a.status.value == "completed"
    assert a.output == {"value": 42}
    assert a.recovered == {"error": "db down", "error_kind": "error", "by": "fix"}
    assert out.result.vars["value"] == 42
    assert out.step_status("b") == "completed"
    assert out.step_status("never") == "skipped"


def test_a_failing_recovery_keeps_the_failure() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: a, action: fail, with: {message: x}, error_handlers: [fix]}
              - {step_id: fix, recover: true, action: fail, with: {message: "fix broke"}}
            """
        )
    )
    assert out.status == "failed"
    assert out.record("a").recovered is None


def test_on_exit_sees_the_outcome_and_failures() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: a, action: fail, with: {message: broke, kind: exit_code}}
            on_exit:
              - step_id: hook
                action: set
                with:
                 values:
                  status: "{{ workflow.status }}"
                  failed: "{{ workflow.failures | map(attribute='step_id') | list }}"
                  kinds: "{{ workflow.failures | map(attribute='kind') | list }}"
              - {step_id: second, action: noop, when: "steps.hook.status == 'completed'"}
            """
        )
    )
    assert out.status == "failed"
    assert out.result.vars["status"] == "failed"
    assert out.result.vars["failed"] == ["a"]
    assert out.result.vars["kinds"] == ["exit_code"]
    assert out.step_status("second") == "completed"
    # The hooks come last.
    assert out.end_index("second") > out.end_index("hook") > out.end_index("a")
