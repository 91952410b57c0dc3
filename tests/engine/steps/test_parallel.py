"""`fail_fast` on a parallel step: a failing child stops its running siblings (their
process groups killed) and keeps pending ones from starting; the step fails with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import make_workflow, run

from wfctl.model import StepStatus


@pytest.mark.parametrize("engine", ["events", "langgraph"])
def test_a_failing_child_cancels_its_running_sibling_and_skips_the_pending_one(
    tmp_path: Path, engine: str
) -> None:
    marker = tmp_path / "marker"
    out = run(
        make_workflow(
            f"""
            steps:
              - step_id: checks
                step_type: parallel
                fail_fast: true
                max_parallel: 2
                parallel_steps:
                  - step_id: slow
                    action: shell
                    with: {{command: "sleep 30 && touch {marker}"}}
                  - {{step_id: boom, action: shell, with: {{command: "sleep 0.3; exit 3"}}}}
                  - {{step_id: later, action: noop}}
            """
        ),
        engine=engine,
    )
    steps = out.result.steps
    assert out.status == "failed"
    assert steps["slow"].status is StepStatus.FAILED
    assert steps["slow"].error_kind == "cancelled"
    assert steps["slow"].error == "cancelled: child 'boom' failed (fail_fast)"
    assert steps["later"].status is StepStatus.SKIPPED
    assert steps["later"].reason == "cancelled: child 'boom' failed (fail_fast)"
    checks = steps["checks"]
    assert checks.error == "boom: command exited with code 3"
    assert checks.error_kind == steps["boom"].error_kind
    assert checks.output["cancelled"] == ["slow", "later"]
    assert not marker.exists()


def test_by_default_a_parallel_step_lets_its_siblings_finish() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: checks
                step_type: parallel
                parallel_steps:
                  - {step_id: slow, action: shell, with: {command: "sleep 0.5"}}
                  - {step_id: boom, action: fail}
            """
        )
    )
    assert out.step_status("slow") == "completed"
    assert out.step_status("checks") == "failed"
