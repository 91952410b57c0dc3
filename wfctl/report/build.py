"""The JSON execution report (schemas/report.schema.json) and its JUnit rendering."""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl import __version__

if TYPE_CHECKING:
    from wfctl.model import Workflow
    from wfctl.records import RunResult
    from wfctl.report.metrics import MetricsCollector

REPORT_FORMAT = 1


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_report(
    result: RunResult,
    workflow: Workflow,
    inputs: dict[str, Any],
    metrics: MetricsCollector,
) -> dict[str, Any]:
    """The report document for a finished (or stopped) run."""
    from wfctl.report.metrics import summarize

    summary = summarize(result.steps, metrics.retries, metrics.circuit_trips)
    metrics.finish(summary["success_rate"], result.ended_at)
    steps: dict[str, Any] = {}
    for step_id, r in result.steps.items():
        step = workflow.all_steps[step_id]
        steps[step_id] = {
            "name": step.name,
            "step_type": step.step_type.value,
            "parent": step.container,
            "status": r.status.value,
            "started_at": iso(r.started_at),
            "ended_at": iso(r.ended_at),
            "duration": r.duration,
            "attempts": [
                {
                    "number": a.number,
                    "started_at": iso(a.started_at),
                    "ended_at": iso(a.ended_at),
                    "error": a.error,
                    "error_kind": a.error_kind,
                }
                for a in r.attempts
            ],
            "output": r.output,
            "error": r.error,
            "error_kind": r.error_kind,
            "skipped_reason": r.reason if r.status.value == "skipped" else None,
            "agent": r.agent,
            "agent_reason": r.agent_reason,
            "slot_wait": round(r.slot_wait, 6),
            "metrics": r.metrics,
            "handler_runs": r.handler_runs,
        }
    return {
        "report_format": REPORT_FORMAT,
        "wfctl_version": __version__,
        "execution_id": result.run_id,
        "workflow": {
            "id": workflow.workflow_id,
            "name": workflow.name,
            "version": workflow.version,
            "file": workflow.source_file,
            "sha256": workflow.sha256,
        },
        "inputs": inputs,
        "status": result.status.value,
        "exit_code": result.exit_code,
        "error": result.error,
        "started_at": iso(result.started_at),
        "ended_at": iso(result.ended_at),
        "duration": result.duration,
        "steps": steps,
        "waiting_for": list(result.waiting_for),
        "rollbacks": list(result.rollbacks),
        "vars": result.vars,
        "metrics": summary,
        "sla": {
            "targets": {
                "max_duration": workflow.sla_targets.max_duration,
                "min_success_rate": workflow.sla_targets.min_success_rate,
                "step_max_duration": dict(workflow.sla_targets.step_max_duration),
            },
            "met": not metrics.breaches,
            "breaches": [b.to_json() | {"at": iso(b.ts)} for b in metrics.breaches],
        },
    }


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write JSON so a reader never sees half a file (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".report-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, default=str)
            fh.write("\n")
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """JUnit XML: one testcase per step; failures and skips marked (for CI dashboards)."""
    import xml.etree.ElementTree as ET

    steps = report["steps"]
    suite = ET.Element(
        "testsuite",
        name=report["workflow"]["id"],
        tests=str(len(steps)),
        failures=str(sum(1 for s in steps.values() if s["status"] == "failed")),
        skipped=str(
            sum(1 for s in steps.values() if s["status"] in ("skipped", "pending", "waiting"))
        ),
        errors="0",
        time=f"{report['duration']:.3f}",
        timestamp=report["started_at"] or "",
    )
    for step_id, s in steps.items():
        case = ET.SubElement(
            suite,
            "testcase",
            classname=report["workflow"]["id"],
            name=step_id,
            time=f"{s['duration'] or 0:.3f}",
        )
        if s["status"] == "failed":
            failure = ET.SubElement(case, "failure", message=s["error"] or "failed")
            failure.text = s["error"] or ""
        elif s["status"] in ("skipped", "pending", "waiting"):
            ET.SubElement(case, "skipped", message=s["skipped_reason"] or s["status"])
    root = ET.Element("testsuites")
    root.append(suite)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
