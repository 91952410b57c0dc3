"""The plain log: one timestamped line per state change, saying what a reader needs."""

from __future__ import annotations

import io
import re

from conftest import make_workflow, run

from wfctl.events import StepStateChanged
from wfctl.model import StepStatus
from wfctl.view.plain import PlainLog


def lines(*events: StepStateChanged) -> list[str]:
    out = io.StringIO()
    log = PlainLog(out)
    for event in events:
        log(event)
    return [re.sub(r"^\d\d:\d\d:\d\d\.\d{3} ", "", ln) for ln in out.getvalue().splitlines()]


def test_running_says_the_attempt_when_retries_are_allowed() -> None:
    assert lines(
        StepStateChanged("r", 1.0, "a", StepStatus.RUNNING, attempt=2, max_attempts=3),
        StepStateChanged("r", 1.0, "b", StepStatus.RUNNING, attempt=1, max_attempts=1),
    ) == ["▶ a running (attempt 2/3)", "▶ b running"]


def test_each_loop_iteration_says_which_round_it_is() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: poll
                step_type: loop
                action: noop
                loop_condition: "loop.index < 2"
                retry_policy: {max_attempts: 2}
            """
        )
    )
    running = [e for e in out.state_events("poll") if e.status is StepStatus.RUNNING]
    assert lines(*running) == [f"▶ poll running (iteration {n})" for n in (1, 2, 3)]


def test_a_container_says_no_attempt_of_its_own() -> None:
    out = run(
        make_workflow(
            """
            retry_policy: {max_attempts: 2}
            steps:
              - step_id: checks
                step_type: parallel
                parallel_steps:
                  - {step_id: unit, action: noop}
            """
        )
    )
    running = [
        e for s in ("checks", "unit") for e in out.state_events(s) if e.status is StepStatus.RUNNING
    ]
    assert lines(*running) == ["▶ checks running", "▶ unit running (attempt 1/2)"]
