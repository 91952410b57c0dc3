"""From Python: the engine runs `on_sla_breach` handlers when the caller says what was
breached (`RunOptions.sla_breaches`), and never without it."""

from __future__ import annotations

from pathlib import Path

import anyio

import wfctl
from wfctl.engine.options import RunOptions
from wfctl.events import EventBus
from wfctl.model import StepStatus
from wfctl.observe.sla import breaches_at_end
from wfctl.report.metrics import MetricsCollector

WORKFLOW = """\
workflow_id: api-sla
name: API SLA
sla_targets: {step_max_duration: {slow: 0.01}}
on_sla_breach: [alert]
steps:
  - {step_id: slow, action: sleep, with: {seconds: 0.1}}
  - step_id: alert
    action: set
    with: {values: {alerted: "{{ error.kind }}: {{ error.breaches | length }}"}}
"""


def _workflow(tmp_path: Path) -> wfctl.Workflow:
    path = tmp_path / "api-sla.yaml"
    path.write_text(WORKFLOW, encoding="utf-8")
    return wfctl.load_workflow(str(path))


def test_breach_handlers_run_with_the_collectors_breaches(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    bus = EventBus()
    collector = MetricsCollector(workflow.sla_targets)
    bus.subscribe(collector)
    options = RunOptions(bus=bus, sla_breaches=breaches_at_end(collector), workdir=tmp_path)
    result = anyio.run(wfctl.run_workflow, workflow, {}, options)
    assert result.status.value == "completed"
    assert result.steps["alert"].status is StepStatus.COMPLETED
    assert result.vars["alerted"] == "sla_breach: 1"
    assert [b.target for b in collector.breaches] == ["step_max_duration"]


def test_without_a_breach_source_the_handlers_are_skipped(tmp_path: Path) -> None:
    workflow = _workflow(tmp_path)
    result = anyio.run(wfctl.run_workflow, workflow, {}, RunOptions(workdir=tmp_path))
    assert result.status.value == "completed"
    assert result.steps["alert"].status is StepStatus.SKIPPED
    assert "alerted" not in result.vars
