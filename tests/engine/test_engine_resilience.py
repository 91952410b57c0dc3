"""Resilience: retries and backoff, retry_on, circuit breakers, step timeouts, error
handlers, continue_on_failure and rollback."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import engine_funcs
import pytest
from conftest import make_workflow, run

from wfctl.actions import registry
from wfctl.engine.breaker import CircuitBreakers
from wfctl.events import CircuitChanged, HandlerRan
from wfctl.model import CircuitBreakerPolicy, StepStatus
from wfctl.model.policies import MAX_RETRY_DELAY


@pytest.fixture(autouse=True)
def _reset_funcs() -> None:
    engine_funcs.reset()


# -- retries -----------------------------------------------------------------------------


def test_retry_until_success_counts_attempts() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: flaky
                action: python
                with: {function: "engine_funcs:fail_times", args: [flaky, 2]}
                retry_policy: {max_attempts: 3, initial_delay: 0}
            """
        )
    )
    assert out.status == "completed"
    record = out.record("flaky")
    assert record.output == {"calls": 3}
    assert [a.number for a in record.attempts] == [1, 2, 3]
    assert [a.error_kind for a in record.attempts] == ["error", "error", None]
    assert out.trail("flaky") == [
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "completed",
    ]
    retries = out.retries("flaky")
    assert [r.attempt for r in retries] == [1, 2]
    assert all("planned failure" in r.error for r in retries)
    # The retrying state carries the next attempt time; the event says what failed.
    retrying = [e for e in out.state_events("flaky") if e.status is StepStatus.RETRYING]
    assert all(e.next_attempt_at is not None for e in retrying)
    assert [e.attempt for e in retrying] == [1, 2]
    assert [e.attempt for e in out.state_events("flaky") if e.status is StepStatus.RUNNING] == [
        1,
        2,
        3,
    ]


def test_retries_exhausted_fail_the_step() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: always
                action: fail
                with: {message: nope}
                retry_policy: {max_attempts: 3, initial_delay: 0}
            """
        )
    )
    record = out.record("always")
    assert record.status is StepStatus.FAILED
    assert len(record.attempts) == 3
    assert len(out.retries("always")) == 2
    assert record.error == "nope"
    assert out.status == "failed" and out.exit_code == 1


def test_workflow_retry_policy_is_the_default_and_steps_override_fields() -> None:
    out = run(
        make_workflow(
            """
            retry_policy: {max_attempts: 2, initial_delay: 0}
            steps:
              - {step_id: inherits, action: fail, retry_policy: {continue_on_failure: true}}
              - step_id: overrides
                action: fail
                retry_policy: {max_attempts: 4, continue_on_failure: true}
            """
        )
    )
    assert len(out.record("inherits").attempts) == 2
    assert len(out.record("overrides").attempts) == 4
    assert out.status == "completed"


JITTER = """
circuit_breaker: {failure_threshold: 100}
steps:
  - step_id: boom
    action: fail
    retry_policy:
      max_attempts: 6
      backoff: BACKOFF
      initial_delay: 0.01
      max_delay: 0.05
      jitter: JITTER
"""


def retry_delays(backoff: str, jitter: bool, seed: int | None = 7) -> list[float]:
    text = JITTER.replace("BACKOFF", backoff).replace("JITTER", str(jitter).lower())
    out = run(make_workflow(text), seed=seed)
    assert len(out.record("boom").attempts) == 6
    retries = out.retries("boom")
    assert [r.attempt for r in retries] == [1, 2, 3, 4, 5]
    for r in retries:
        assert r.next_attempt_at >= r.ts - 1e-3
    return [r.delay for r in retries]


def test_exponential_backoff_with_full_jitter_stays_within_bounds() -> None:
    delays = retry_delays("exponential", True)
    for n, delay in enumerate(delays, start=1):
        assert 0 <= delay <= min(0.01 * 2 ** (n - 1), 0.05) + 1e-12
    # jitter really spreads the delays (not all at their cap)
    caps = [min(0.01 * 2 ** (n - 1), 0.05) for n in range(1, 6)]
    assert delays != caps


def test_jitter_is_deterministic_with_a_seed() -> None:
    assert retry_delays("exponential", True, seed=3) == retry_delays("exponential", True, seed=3)
    assert retry_delays("exponential", True, seed=3) != retry_delays("exponential", True, seed=4)


@pytest.mark.parametrize(
    ("backoff", "expected"),
    [
        ("exponential", [0.01, 0.02, 0.04, 0.05, 0.05]),
        ("linear", [0.01, 0.02, 0.03, 0.04, 0.05]),
        ("fixed", [0.01] * 5),
    ],
)
def test_backoff_without_jitter_is_exact(backoff: str, expected: list[float]) -> None:
    assert retry_delays(backoff, False) == pytest.approx(expected)


def test_retry_waits_roughly_the_scheduled_delay() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: flaky
                action: python
                with: {function: "engine_funcs:fail_times", args: [waits, 1]}
                retry_policy: {max_attempts: 2, initial_delay: 0.2, jitter: false}
            """
        )
    )
    gap = out.ts("flaky", "running", 1) - out.ts("flaky", "retrying")
    assert out.retries("flaky")[0].delay == pytest.approx(0.2)
    assert gap >= 0.2 * 0.9  # never earlier than scheduled


@pytest.mark.parametrize(
    ("retry_on", "attempts"),
    [
        ("[timeout]", 1),
        ("[exit_code]", 3),
        ("[]", 1),
        ("[timeout, exit_code]", 3),
        (None, 3),  # default: every retryable kind
    ],
)
def test_retry_on_restricts_which_error_kinds_retry(retry_on: str | None, attempts: int) -> None:
    policy = "{max_attempts: 3, initial_delay: 0" + (
        f", retry_on: {retry_on}}}" if retry_on is not None else "}"
    )
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: boom
                action: fail
                with: {{kind: exit_code, message: "exit 2"}}
                retry_policy: {policy}
            """
        )
    )
    record = out.record("boom")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "exit_code"
    assert len(record.attempts) == attempts
    assert len(out.retries("boom")) == attempts - 1


def test_validation_errors_are_never_retried() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: boom
                action: fail
                with: {kind: validation}
                retry_policy: {max_attempts: 3, initial_delay: 0}
            """
        )
    )
    assert len(out.record("boom").attempts) == 1
    assert out.record("boom").error_kind == "validation"


def test_shell_exit_code_is_retried_with_a_real_process() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: sh
                action: shell
                with: {command: 'echo try $WFCTL_ATTEMPT; test "$WFCTL_ATTEMPT" -ge 2'}
                retry_policy: {max_attempts: 3, initial_delay: 0, retry_on: [exit_code]}
            """
        )
    )
    assert out.status == "completed"
    record = out.record("sh")
    assert len(record.attempts) == 2
    assert record.attempts[0].error_kind == "exit_code"
    assert record.output["stdout"].strip() == "try 2"


# -- http through the engine -----------------------------------------------------------------


def test_http_503_then_success_with_retries(http_server: Any) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: call
                action: http
                with: {{url: "{http_server.url}/flaky/retry-ok?n=2"}}
                retry_policy: {{max_attempts: 3, initial_delay: 0}}
            """
        )
    )
    assert out.status == "completed"
    record = out.record("call")
    assert record.output["status"] == 200
    assert record.output["json"] == {"ok": True, "hit": 3}
    assert [a.error_kind for a in record.attempts] == ["http_status", "http_status", None]
    assert all("503" in r.error for r in out.retries("call"))
    assert http_server.hits["/flaky/retry-ok"] == 3


def test_http_timeout_is_kind_timeout(http_server: Any) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: call
                action: http
                with: {{url: "{http_server.url}/slow?s=1", timeout: 0.2}}
                retry_policy: {{max_attempts: 2, initial_delay: 0, retry_on: [timeout]}}
            """
        )
    )
    record = out.record("call")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "timeout"
    assert [a.error_kind for a in record.attempts] == ["timeout", "timeout"]
    # each attempt was cut short: well under the server's 1 s
    for a in record.attempts:
        assert a.ended_at is not None and a.ended_at - a.started_at < 0.9


def test_http_unexpected_status_fails_without_retry_when_not_listed(http_server: Any) -> None:
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: call
                action: http
                with: {{url: "{http_server.url}/status/404"}}
                retry_policy: {{max_attempts: 3, initial_delay: 0, retry_on: [connection]}}
            """
        )
    )
    record = out.record("call")
    assert record.error_kind == "http_status"
    assert len(record.attempts) == 1
    assert "404" in (record.error or "")


# -- circuit breaker ----------------------------------------------------------------------


def test_breaker_opens_fails_fast_half_opens_and_closes(http_server: Any) -> None:
    """failure_threshold 2: two 503s open it; attempt 3 fails fast (the server is not
    called); after reset_timeout a half-open trial succeeds and closes it."""
    out = run(
        make_workflow(
            f"""
            circuit_breaker: {{failure_threshold: 2, reset_timeout: 0.3}}
            steps:
              - step_id: call
                action: http
                with: {{url: "{http_server.url}/flaky/breaker?n=2"}}
                retry_policy: {{max_attempts: 4, initial_delay: 0, jitter: false}}
            """
        )
    )
    assert out.status == "completed"
    record = out.record("call")
    assert [a.error_kind for a in record.attempts] == [
        "http_status",
        "http_status",
        "circuit_open",
        None,
    ]
    assert http_server.hits["/flaky/breaker"] == 3  # the fail-fast attempt made no request
    host = http_server.url.removeprefix("http://")
    changes = [(e.target, e.state, e.failures) for e in out.of(CircuitChanged)]
    assert changes == [
        (f"http:{host}", "open", 2),
        (f"http:{host}", "half_open", 2),
        (f"http:{host}", "closed", 0),
    ]
    # The fail-fast retry waited for the breaker, not for the (zero) backoff.
    waits = [r.delay for r in out.retries("call")]
    assert waits[0] == 0 and waits[1] == 0
    assert 0 < waits[2] <= 0.3
    # open is emitted right after the second failure, before the third attempt
    opened = next(i for i, e in enumerate(out.events) if isinstance(e, CircuitChanged))
    assert out.index("call", "running", 1) < opened < out.index("call", "running", 2)


def test_a_breaker_that_never_resets_waits_a_year_at_most(http_server: Any) -> None:
    """reset_timeout 1e300 is a valid Duration, but a retry waiting for it would be due
    past any date (issue 15: exit 70): the wait is clamped to MAX_RETRY_DELAY and the run
    ends by its own timeout."""
    out = run(
        make_workflow(
            f"""
            timeout: 1
            circuit_breaker: {{failure_threshold: 1, reset_timeout: 1.0e300}}
            steps:
              - step_id: call
                action: http
                with: {{url: "{http_server.url}/flaky/never?n=100"}}
                retry_policy: {{max_attempts: 3, initial_delay: 0, jitter: false}}
            """
        )
    )
    assert out.status == "timeout"
    assert [r.delay for r in out.retries("call")] == [0, MAX_RETRY_DELAY]
    assert [a.error_kind for a in out.record("call").attempts][:2] == [
        "http_status",
        "circuit_open",
    ]


def test_breaker_is_shared_by_steps_calling_the_same_host(http_server: Any) -> None:
    out = run(
        make_workflow(
            f"""
            circuit_breaker: {{failure_threshold: 2, reset_timeout: 30}}
            steps:
              - step_id: first
                action: http
                with: {{url: "{http_server.url}/status/500"}}
                retry_policy: {{max_attempts: 2, initial_delay: 0, continue_on_failure: true}}
              - step_id: second
                action: http
                dependencies: [first]
                trigger_rule: all_done
                with: {{url: "{http_server.url}/ok?from=second"}}
                retry_policy: {{max_attempts: 1}}
            """
        )
    )
    assert out.record("first").error_kind == "http_status"
    second = out.record("second")
    assert second.status is StepStatus.FAILED
    assert second.error_kind == "circuit_open"
    assert "open" in (second.error or "")
    states = [e.state for e in out.of(CircuitChanged)]
    assert states == ["open"]
    assert http_server.hits.get("/status/500") == 2


def test_breaker_recovers_after_a_half_open_trial_that_failed_validation() -> None:
    out = run(
        make_workflow(
            """
            circuit_breaker: {failure_threshold: 1, reset_timeout: 0.1}
            steps:
              - step_id: trip
                action: python
                with: {function: "engine_funcs:fail_times", args: [trip, 1]}
                retry_policy: {continue_on_failure: true}
              - step_id: pause
                action: sleep
                with: {seconds: 0.15}
                dependencies: [trip]
                trigger_rule: all_done
              - step_id: trial
                action: python
                dependencies: [pause]
                with: {function: "engine_funcs:fail_times", args: [trial, 1, validation]}
                retry_policy: {continue_on_failure: true}
              - step_id: later
                action: python
                dependencies: [trial]
                trigger_rule: all_done
                with: {function: "engine_funcs:fail_times", args: [later, 0]}
            """
        )
    )
    assert out.record("trial").error_kind == "validation"
    assert out.step_status("later") == "completed"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def breakers() -> Iterator[tuple[CircuitBreakers, FakeClock, list[tuple[str, str, int]]]]:
    clock = FakeClock()
    changes: list[tuple[str, str, int]] = []
    cb = CircuitBreakers(
        CircuitBreakerPolicy(failure_threshold=3, reset_timeout=10.0),
        lambda target, state, failures: changes.append((target, state, failures)),
        clock=clock,
    )
    yield cb, clock, changes


def test_breaker_unit_transitions(
    breakers: tuple[CircuitBreakers, FakeClock, list[tuple[str, str, int]]],
) -> None:
    cb, clock, changes = breakers
    t = "http:example:80"
    assert cb.state(t) == "closed" and cb.allow(t)
    cb.record_failure(t)
    cb.record_failure(t)
    assert cb.state(t) == "closed" and cb.allow(t)
    cb.record_failure(t)
    assert cb.state(t) == "open"
    assert changes == [(t, "open", 3)]
    assert cb.trips == 1
    assert not cb.allow(t)
    assert cb.retry_after(t) == pytest.approx(10.0)
    clock.now += 4
    assert not cb.allow(t)
    assert cb.retry_after(t) == pytest.approx(6.0)
    clock.now += 6
    assert cb.state(t) == "half_open"
    assert cb.allow(t)  # the one trial
    assert not cb.allow(t)  # nobody else while it runs
    assert changes[-1] == (t, "half_open", 3)
    cb.record_failure(t)  # the trial failed: open again, for a full reset_timeout
    assert cb.state(t) == "open"
    assert cb.trips == 2
    assert changes[-1] == (t, "open", 4)
    assert not cb.allow(t)
    clock.now += 10
    assert cb.allow(t)
    cb.record_success(t)
    assert cb.state(t) == "closed"
    assert changes[-1] == (t, "closed", 0)
    # the count restarts from zero after closing
    cb.record_failure(t)
    cb.record_failure(t)
    assert cb.state(t) == "closed"


def test_breaker_unit_success_resets_consecutive_failures(
    breakers: tuple[CircuitBreakers, FakeClock, list[tuple[str, str, int]]],
) -> None:
    cb, _, changes = breakers
    t = "agent:a"
    for _ in range(2):
        cb.record_failure(t)
    cb.record_success(t)
    for _ in range(2):
        cb.record_failure(t)
    assert cb.state(t) == "closed"
    assert changes == []  # a success while closed emits nothing
    cb.record_failure(t)
    assert cb.state(t) == "open"


def test_breaker_unit_targets_are_independent(
    breakers: tuple[CircuitBreakers, FakeClock, list[tuple[str, str, int]]],
) -> None:
    cb, _, _ = breakers
    for _ in range(3):
        cb.record_failure("a")
    assert cb.state("a") == "open"
    assert cb.state("b") == "closed" and cb.allow("b")
    assert cb.retry_after("b") == 0.0


# -- step timeout -----------------------------------------------------------------------------


def test_step_timeout_cancels_the_attempt_and_retries() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: slow
                action: python
                timeout: 0.2
                with: {function: "engine_funcs:async_slow_first", args: [slow, 30]}
                retry_policy: {max_attempts: 2, initial_delay: 0}
            """
        )
    )
    assert out.status == "completed"
    record = out.record("slow")
    assert record.output == {"calls": 2}
    assert [a.error_kind for a in record.attempts] == ["timeout", None]
    assert "timed out" in (record.attempts[0].error or "")
    assert record.duration is not None and record.duration < 15


def test_step_timeout_not_retried_when_retry_on_excludes_it() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: slow
                action: sleep
                timeout: 0.05
                with: {seconds: 5}
                retry_policy: {max_attempts: 3, initial_delay: 0, retry_on: [error]}
            """
        )
    )
    record = out.record("slow")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "timeout"
    assert len(record.attempts) == 1


class _TimeoutErrorAction:
    """A third-party action whose own client raises the builtin TimeoutError."""

    name = "raises_timeout"

    async def run(self, args: Any, ctx: Any) -> Any:
        raise TimeoutError("upstream took too long")

    def target(self, args: Any) -> str:
        return "raises_timeout"


class _BuggyAction:
    name = "buggy"

    async def run(self, args: Any, ctx: Any) -> Any:
        raise KeyError("oops")

    def target(self, args: Any) -> str:
        return "buggy"


@pytest.fixture
def plugins() -> Iterator[None]:
    added = [registry.register_action(a) for a in (_TimeoutErrorAction(), _BuggyAction())]
    yield
    for action in added:
        registry.unregister_action(action.name)


@pytest.mark.usefixtures("plugins")
def test_exception_from_an_action_fails_only_that_step() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: bug, action: buggy, retry_policy: {continue_on_failure: true}}
              - {step_id: fine, action: noop}
            """
        )
    )
    assert out.record("bug").status is StepStatus.FAILED
    assert "KeyError" in (out.record("bug").error or "")
    assert out.record("bug").error_kind == "error"
    assert out.step_status("fine") == "completed"
    assert out.status == "completed"


@pytest.mark.usefixtures("plugins")
def test_timeout_error_from_an_action_without_step_timeout() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: tmo, action: raises_timeout}
            """
        )
    )
    record = out.record("tmo")
    assert record.status is StepStatus.FAILED
    assert record.error_kind == "timeout"
    assert out.status == "failed"


# -- error handlers, continue_on_failure, rollback ----------------------------------------------


def test_error_handler_runs_with_the_error_in_context() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: deploy
                action: fail
                with: {message: "disk full", kind: exit_code}
                retry_policy: {max_attempts: 2, initial_delay: 0}
                error_handlers: [alert, log_it]
              - step_id: alert
                action: shell
                with:
                  command: >-
                    echo 'handled: {{ error.message }} ({{ error.kind }})
                    in {{ error.step_id }}'
              - step_id: log_it
                action: set
                with: {values: {last_error: "{{ error.message }}"}}
              - {step_id: unused, action: noop}
              - {step_id: other, action: noop, error_handlers: [unused]}
            """
        )
    )
    assert out.status == "failed"
    alert = out.record("alert")
    assert alert.status is StepStatus.COMPLETED
    assert alert.output["stdout"].strip() == "handled: disk full (exit_code) in deploy"
    handled = [(e.step_id, e.for_step, e.purpose) for e in out.of(HandlerRan)]
    assert handled == [("alert", "deploy", "error_handler"), ("log_it", "deploy", "error_handler")]
    # handlers run once, after the final attempt, and before the run ends
    assert out.index("alert", "running") > out.end_index("deploy")
    assert out.record("deploy").handler_runs == []
    assert alert.handler_runs[0]["for_step"] == "deploy"
    # a handler nobody invoked is skipped with a reason
    assert out.step_status("unused") == "skipped"
    assert out.record("unused").reason == "handler not invoked"


def test_failing_error_handler_is_recorded() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: deploy, action: fail, error_handlers: [alert]}
              - {step_id: alert, action: fail, with: {message: "pager down"}}
            """
        )
    )
    events = out.of(HandlerRan)
    assert len(events) == 1
    assert events[0].status is StepStatus.FAILED
    assert events[0].error == "pager down"
    assert out.step_status("alert") == "failed"
    assert out.status == "failed"


def test_continue_on_failure_lets_the_run_complete() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: optional
                action: fail
                retry_policy: {continue_on_failure: true}
                rollback_actions: [undo_optional]
              - {step_id: needs_it, action: noop, dependencies: [optional]}
              - {step_id: tolerant, action: noop, dependencies: [optional], trigger_rule: all_done}
              - {step_id: independent, action: sleep, with: {seconds: 0.02}}
              - {step_id: undo_optional, action: noop}
            """
        )
    )
    assert out.status == "completed"
    assert out.exit_code == 0
    assert out.result.error is None
    assert out.step_status("optional") == "failed"
    assert out.step_status("needs_it") == "skipped"
    assert out.step_status("tolerant") == "completed"
    assert out.step_status("independent") == "completed"
    assert out.result.rollbacks == ()


ROLLBACK = """
steps:
  - {step_id: a, action: noop, rollback_actions: [undo_a]}
  - {step_id: b, action: noop, dependencies: [a], rollback_actions: [undo_b1, undo_b2]}
  - {step_id: side, action: sleep, with: {seconds: 0.03}, rollback_actions: [undo_side]}
  - {step_id: c, action: noop, dependencies: [b], rollback_actions: [undo_c]}
  - {step_id: d, action: fail, dependencies: [c, side], rollback_actions: [undo_d]}
  - {step_id: skipped_one, action: noop, when: "false", rollback_actions: [undo_skipped]}
  - {step_id: undo_a, action: noop}
  - {step_id: undo_b1, action: noop}
  - {step_id: undo_b2, action: noop}
  - {step_id: undo_c, action: shell, with: {command: "echo undoing c"}}
  - {step_id: undo_d, action: noop}
  - {step_id: undo_side, action: noop}
  - {step_id: undo_skipped, action: noop}
"""


def test_rollback_runs_in_reverse_completion_order() -> None:
    out = run(make_workflow(ROLLBACK))
    assert out.status == "failed"
    # The completion order, read from the events (side may end before or after a..c).
    completed = [
        e.step_id
        for e in out.state_events()
        if e.status is StepStatus.COMPLETED and not e.step_id.startswith("undo_")
    ]
    assert set(completed) == {"a", "b", "c", "side"}
    handlers = {"a": ["undo_a"], "b": ["undo_b1", "undo_b2"], "c": ["undo_c"]}
    handlers["side"] = ["undo_side"]
    expected = [h for step in reversed(completed) for h in handlers[step]]
    rollbacks = [e for e in out.of(HandlerRan) if e.purpose == "rollback"]
    assert [e.step_id for e in rollbacks] == expected
    assert [r["step_id"] for r in out.result.rollbacks] == expected
    assert [r["for_step"] for r in out.result.rollbacks] == [
        step for step in reversed(completed) for _ in handlers[step]
    ]
    assert all(r["status"] == "completed" for r in out.result.rollbacks)
    undo_c = next(r for r in out.result.rollbacks if r["step_id"] == "undo_c")
    assert undo_c["output"]["stdout"].strip() == "undoing c"
    # failed and skipped steps are not rolled back
    assert out.step_status("undo_d") == "skipped"
    assert out.step_status("undo_skipped") == "skipped"
    # rollbacks run after the failure, and before the run finishes
    first_rollback = out.events.index(rollbacks[0])
    assert first_rollback > out.end_index("d")


def test_failed_rollback_is_recorded_and_the_others_still_run() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: a, action: noop, rollback_actions: [undo_a]}
              - {step_id: b, action: noop, dependencies: [a], rollback_actions: [undo_b]}
              - {step_id: c, action: fail, dependencies: [b]}
              - {step_id: undo_a, action: noop}
              - {step_id: undo_b, action: fail, with: {message: "cannot undo b"}}
            """
        )
    )
    assert out.status == "failed"
    assert [(r["step_id"], r["status"]) for r in out.result.rollbacks] == [
        ("undo_b", "failed"),
        ("undo_a", "completed"),
    ]
    assert out.result.rollbacks[0]["error"] == "cannot undo b"


def test_no_rollback_when_the_run_succeeds() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: a, action: noop, rollback_actions: [undo_a]}
              - {step_id: undo_a, action: noop}
            """
        )
    )
    assert out.status == "completed"
    assert out.result.rollbacks == ()
    assert out.of(HandlerRan) == []


def test_events_of_one_step_are_in_a_sane_order() -> None:
    """Every step's event trail is a walk through the allowed transitions."""
    out = run(make_workflow(ROLLBACK))
    allowed = {
        None: {"running", "skipped", "completed", "failed", "waiting"},
        "running": {"running", "retrying", "completed", "failed"},
        "retrying": {"running", "failed"},
        "waiting": {"running", "completed", "failed"},
    }
    for step_id in out.workflow.all_steps:
        trail: list[str | None] = [None, *out.trail(step_id)]
        for before, after in itertools.pairwise(trail):
            if step_id.startswith("undo_") and before in ("completed", "failed", "skipped"):
                continue  # a handler may run after the step it serves ended
            assert after in allowed.get(before, set()), (step_id, trail)
    assert all(e.run_id == out.result.run_id for e in out.events)


def test_output_mapping_failure_runs_error_handlers() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: produce
                action: noop
                output_mapping: {x: "output.missing"}
                error_handlers: [alert]
              - {step_id: alert, action: noop}
            """
        )
    )
    assert out.step_status("produce") == "failed"
    assert [e.step_id for e in out.of(HandlerRan)] == ["alert"]
    assert out.step_status("alert") == "completed"


def test_set_handler_merges_into_vars() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: boom, action: fail, error_handlers: [note]}
              - {step_id: note, action: set, with: {values: {handled: "{{ error.step_id }}"}}}
            """
        )
    )
    assert out.step_status("note") == "completed"
    assert out.result.vars == {"handled": "boom"}
