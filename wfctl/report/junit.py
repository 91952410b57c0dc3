"""JUnit XML for CI dashboards: a run report (a testcase per step) and validation results
(a testcase per file, a failure per problem)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wfctl.format.diagnostics import Diagnostic
from wfctl.report._junit_xml import Case, Problem, Suite, write_suites

# Steps that did not run to an end are skipped testcases, with the reason or status.
_NOT_RUN = ("skipped", "pending", "waiting")
#: The classname of validation testcases (dashboards group cases by it).
VALIDATE_CLASSNAME = "wfctl.validate"


def _joined(lines: Sequence[str] | None) -> str | None:
    return "\n".join(lines) + "\n" if lines else None


def _step_case(classname: str, step_id: str, s: dict[str, Any]) -> Case:
    tail = s.get("output_tail") or {}
    problems: tuple[Problem, ...] = ()
    skipped = None
    if s["status"] == "failed":
        error = s["error"] or "failed"
        problems = (Problem(error, s.get("error_kind") or "failed", error),)
    elif s["status"] in _NOT_RUN:
        skipped = s["skipped_reason"] or s["status"]
    return Case(
        name=step_id,
        classname=classname,
        time=s["duration"] or 0.0,
        problems=problems,
        skipped=skipped,
        stdout=_joined(tail.get("stdout")),
        stderr=_joined(tail.get("stderr")),
    )


def write_junit(path: Path, report: dict[str, Any]) -> None:
    """JUnit XML of a run report: one testcase per step; failures (with the tail of the
    step's stdout/stderr as system-out/system-err) and skips marked."""
    workflow_id = report["workflow"]["id"]
    cases = [_step_case(workflow_id, k, s) for k, s in report["steps"].items()]
    suite = Suite(workflow_id, cases, report["duration"], report["started_at"])
    write_suites(path, [suite])


def _problem(d: Diagnostic) -> Problem:
    where = f"{d.path}: " if d.path else ""
    message = f"{d.location()} {where}{d.message}"
    text = message + (f"\nhint: {d.hint}" if d.hint else "")
    return Problem(message, d.code, text)


def write_validation_junit(
    path: Path, files: Sequence[tuple[str, Sequence[Diagnostic]]], name: str = "wfctl validate"
) -> None:
    """JUnit XML of validation results: one testcase per file, one failure per error
    (warnings go to the case's system-out)."""
    cases = []
    for file, diagnostics in files:
        errors = [d for d in diagnostics if d.severity.value == "error"]
        warnings = [_problem(d).text for d in diagnostics if d.severity.value != "error"]
        cases.append(
            Case(
                name=file,
                classname=VALIDATE_CLASSNAME,
                problems=[_problem(d) for d in errors],
                stdout=_joined(warnings),
            )
        )
    write_suites(path, [Suite(name, cases)])
