"""A report rendered as JUnit XML: one testcase per step (for CI dashboards)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

# Steps that did not run to an end are skipped testcases, with the reason or status.
_NOT_RUN = ("skipped", "pending", "waiting")


def _testcase(suite: ET.Element, classname: str, step_id: str, s: dict[str, Any]) -> None:
    case = ET.SubElement(
        suite, "testcase", classname=classname, name=step_id, time=f"{s['duration'] or 0:.3f}"
    )
    if s["status"] == "failed":
        failure = ET.SubElement(case, "failure", message=s["error"] or "failed")
        failure.text = s["error"] or ""
    elif s["status"] in _NOT_RUN:
        ET.SubElement(case, "skipped", message=s["skipped_reason"] or s["status"])


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """JUnit XML: one testcase per step; failures and skips marked (for CI dashboards)."""
    steps = report["steps"]
    workflow_id = report["workflow"]["id"]
    suite = ET.Element(
        "testsuite",
        name=workflow_id,
        tests=str(len(steps)),
        failures=str(sum(1 for s in steps.values() if s["status"] == "failed")),
        skipped=str(sum(1 for s in steps.values() if s["status"] in _NOT_RUN)),
        errors="0",
        time=f"{report['duration']:.3f}",
        timestamp=report["started_at"] or "",
    )
    for step_id, s in steps.items():
        _testcase(suite, workflow_id, step_id, s)
    root = ET.Element("testsuites")
    root.append(suite)
    from wfctl.format.output_file import write_output

    write_output(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))
