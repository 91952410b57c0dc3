"""An approval inside a parallel group, on both engines: its siblings and the rest of the
run go on to their end while it waits; then the run waits for it (exit 4; on
`--engine langgraph` an interrupt in the run's checkpoint); approved, resume continues
inside the group and after it, running nothing that had completed again."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "data" / "durable"))

from durable_helpers import checkpoint_channels

import wfctl
from wfctl.state.store import StateStore

GATED = """\
workflow_id: gated
name: Gated group
steps:
  - {step_id: prep, action: set, with: {values: {n: 1}}}
  - step_id: group
    step_type: parallel
    dependencies: [prep]
    parallel_steps:
      - {step_id: gate, step_type: human_approval, with: {message: ok?}}
      - {step_id: after_gate, action: set, dependencies: [gate], with: {values: {gated: 1}}}
      - {step_id: sibling, action: sleep, with: {seconds: 0.2}}
      - {step_id: after_sibling, action: noop, dependencies: [sibling]}
  - {step_id: b1, action: noop, dependencies: [prep]}
  - {step_id: b2, action: noop, dependencies: [b1]}
  - {step_id: b3, action: noop, dependencies: [b2]}
  - {step_id: ship, action: set, dependencies: [group, b3], with: {values: {shipped: 1}}}
"""
RAN_BEFORE_THE_GATE = ("prep", "sibling", "after_sibling", "b1", "b2", "b3")


def _run(tmp_path: Path, engine: str) -> wfctl.RunResult:
    (tmp_path / "gated.yaml").write_text(GATED, encoding="utf-8")
    store = StateStore(tmp_path / "st", create=True)
    try:
        options = wfctl.RunOptions(store=store, engine=engine)
        return anyio.run(
            wfctl.run_workflow, wfctl.load_workflow(tmp_path / "gated.yaml"), {}, options
        )
    finally:
        store.close()


@pytest.mark.parametrize("engine", ["events", "langgraph"])
def test_an_approval_in_a_parallel_group_lets_the_rest_of_the_run_finish(
    tmp_path: Path, engine: str
) -> None:
    first = _run(tmp_path, engine)
    assert first.status is wfctl.WorkflowState.WAITING_APPROVAL
    assert first.waiting_for == ("gate",)  # only an approval step can be approved
    statuses = {k: r.status.value for k, r in first.steps.items()}
    assert {s: statuses[s] for s in RAN_BEFORE_THE_GATE} == dict.fromkeys(
        RAN_BEFORE_THE_GATE, "completed"
    )
    assert statuses["gate"] == statuses["group"] == "waiting"
    assert statuses["after_gate"] == statuses["ship"] == "pending"
    if engine == "langgraph":
        assert "__interrupt__" in checkpoint_channels(tmp_path / "st", first.run_id)

    wfctl.approve_run(tmp_path / "st", first.run_id, "gate", wfctl.ApprovalDecision(True, "ann"))
    result = anyio.run(wfctl.resume_run, tmp_path / "st", first.run_id)
    assert result.status is wfctl.WorkflowState.COMPLETED
    assert result.vars == {"n": 1, "gated": 1, "shipped": 1}
    assert result.steps["group"].output["succeeded"] == 4
    assert result.steps["gate"].output["by"] == "ann"
    for step_id in RAN_BEFORE_THE_GATE:
        assert len(result.steps[step_id].attempts) == 1, step_id  # not run again


# A step skipped by its `when`, joined with another into a third, beside an approval
# that waits: once LangGraph ran the approval's deferred wait in the same superstep as
# the skip (a `Send`), interrupted, and left the join undecided (failed as a deadlock).
SKIP_BESIDE_A_WAIT = """\
workflow_id: skip_beside_wait
name: Skip beside a wait
inputs:
  flag: {type: boolean, default: true}
steps:
  - {step_id: s0, action: noop}
  - {step_id: s1, action: noop, dependencies: [s0], when: "not inputs.flag"}
  - {step_id: s2, action: noop, dependencies: [s0, s1]}
  - {step_id: s3, step_type: human_approval, with: {message: ok?}}
"""


@pytest.mark.parametrize("engine", ["events", "langgraph"])
def test_a_skip_beside_a_waiting_approval_is_decided_before_the_run_waits(
    tmp_path: Path, engine: str
) -> None:
    (tmp_path / "wf.yaml").write_text(SKIP_BESIDE_A_WAIT, encoding="utf-8")
    options = wfctl.RunOptions(engine=engine)
    result = anyio.run(wfctl.run_workflow, wfctl.load_workflow(tmp_path / "wf.yaml"), {}, options)
    assert result.status is wfctl.WorkflowState.WAITING_APPROVAL
    statuses = {k: (r.status.value, r.reason) for k, r in result.steps.items()}
    assert statuses == {
        "s0": ("completed", None),
        "s1": ("skipped", "when is false: not inputs.flag"),
        "s2": ("skipped", "upstream skipped: s1"),
        "s3": ("waiting", "waiting for approval"),
    }
