"""The JSON execution report (schemas/report.schema.json): the one builder of its shape.

Two sources feed it: a run that just ended (`build_report`) and a run's journal
(`wfctl.report.from_journal`, for `wfctl show` and `approve` of any run, even a live
one). Both describe the run as `RunFacts` and `assemble` turns that into the document,
so the two can never drift apart. What a journal does not know (step types, the exit
code, the SLA targets) is None there.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl import __version__
from wfctl.model.scopes import parent_of, template_of
from wfctl.records import skip_kind

if TYPE_CHECKING:
    from wfctl.model import Step, Workflow
    from wfctl.records import Attempt, RunResult, StepRecord
    from wfctl.report.metrics import MetricsCollector

REPORT_FORMAT = 1


def iso(ts: float | None) -> str | None:
    """ISO 8601 UTC with milliseconds, or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class StepMeta:
    """What the report says about a step besides its record."""

    name: str
    step_type: str | None
    parent: str | None


@dataclass(frozen=True)
class RunFacts:
    """Everything a report is made of, from whichever source knows it."""

    run_id: str
    workflow: dict[str, Any]  # id, name, version, file, sha256
    status: str
    started_at: float | None
    ended_at: float | None
    duration: float
    records: Mapping[str, StepRecord]
    steps: Mapping[str, StepMeta]
    metrics: dict[str, Any]
    inputs: dict[str, Any] = field(default_factory=dict)
    exit_code: int | None = None
    error: str | None = None
    waiting_for: tuple[str, ...] = ()
    rollbacks: tuple[dict[str, Any], ...] = ()
    vars: dict[str, Any] = field(default_factory=dict)
    sla: dict[str, Any] | None = None
    # step id -> the `output_tail` of a failed step (wfctl.report.tail)
    tails: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    # step id -> what the journal dropped of its output lines (wfctl.report.tail.truncations)
    truncated: Mapping[str, dict[str, int]] = field(default_factory=dict)
    artifacts_dir: str | None = None  # the run's artifacts directory, if it has one


def _attempt(a: Attempt) -> dict[str, Any]:
    out = {
        "number": a.number,
        "started_at": iso(a.started_at),
        "ended_at": iso(a.ended_at),
        "error": a.error,
        "error_kind": a.error_kind,
    }
    if a.node is not None:  # ran on a Ray worker
        out["node"], out["worker"] = a.node, a.worker or ""
    return out


def _step(step_id: str, r: StepRecord, facts: RunFacts) -> dict[str, Any]:
    meta = facts.steps[step_id]
    return {
        "name": meta.name,
        "step_type": meta.step_type,
        "parent": meta.parent,
        "status": r.status.value,
        "started_at": iso(r.started_at),
        "ended_at": iso(r.ended_at),
        "duration": r.duration,
        "attempts": [_attempt(a) for a in r.attempts],
        "output": r.output,
        "output_tail": facts.tails.get(step_id),
        "output_truncated": facts.truncated.get(step_id),
        "error": r.error,
        "error_kind": r.error_kind,
        "skipped_reason": r.reason if r.status.value == "skipped" else None,
        "skip_kind": skip_kind(r.reason) if r.status.value == "skipped" else None,
        "recovered": r.recovered,
        "cached": r.cached,
        "agent": r.agent,
        "agent_reason": r.agent_reason,
        "slot_wait": round(r.slot_wait, 6),
        "metrics": r.metrics,
        "handler_runs": r.handler_runs,
    }


def assemble(facts: RunFacts) -> dict[str, Any]:
    """The report document (schemas/report.schema.json) for `facts`."""
    return {
        "report_format": REPORT_FORMAT,
        "wfctl_version": __version__,
        "execution_id": facts.run_id,
        "workflow": facts.workflow,
        "inputs": facts.inputs,
        "status": facts.status,
        "exit_code": facts.exit_code,
        "error": facts.error,
        "started_at": iso(facts.started_at),
        "ended_at": iso(facts.ended_at),
        "duration": facts.duration,
        "artifacts_dir": facts.artifacts_dir,
        "steps": {k: _step(k, r, facts) for k, r in facts.records.items()},
        "waiting_for": list(facts.waiting_for),
        "rollbacks": list(facts.rollbacks),
        "vars": facts.vars,
        "metrics": facts.metrics,
        "sla": facts.sla,
    }


def _sla(workflow: Workflow, metrics: MetricsCollector) -> dict[str, Any]:
    return {
        "targets": {
            "max_duration": workflow.sla_targets.max_duration,
            "min_success_rate": workflow.sla_targets.min_success_rate,
            "step_max_duration": dict(workflow.sla_targets.step_max_duration),
        },
        "met": not metrics.breaches,
        "breaches": [b.to_json() | {"at": iso(b.ts)} for b in metrics.breaches],
    }


def _meta(steps: Mapping[str, Step], step_id: str) -> StepMeta:
    """A step's meta; an iteration's (``each[2]``, ``each[2].fetch``) from the step of the
    file it stands for, nested under its iteration (wfctl.model.scopes)."""
    if step_id in steps:
        step = steps[step_id]
        return StepMeta(step.name, step.step_type.value, step.container)
    template = steps[template_of(step_id)]
    name = step_id if step_id.endswith("]") else template.name
    return StepMeta(name, template.step_type.value, parent_of(step_id))


def build_report(
    result: RunResult,
    workflow: Workflow,
    inputs: dict[str, Any],
    metrics: MetricsCollector,
    exit_code: int | None = None,
    tails: Mapping[str, dict[str, Any]] | None = None,
    truncated: Mapping[str, dict[str, int]] | None = None,
) -> dict[str, Any]:
    """The report document for a finished (or stopped) run; `exit_code` as the CLI decided;
    `tails` the `output_tail` of failed steps (`wfctl.report.tail.failed_tails`),
    `truncated` what the journal dropped of steps' output (`...tail.truncations`)."""
    from wfctl.report.metrics import summarize

    summary = summarize(result.steps, metrics.retries, metrics.circuit_trips)
    metrics.finish(summary["success_rate"], result.ended_at)
    steps = workflow.all_steps
    facts = RunFacts(
        run_id=result.run_id,
        workflow={
            "id": workflow.workflow_id,
            "name": workflow.name,
            "version": workflow.version,
            "file": workflow.source_file,
            "sha256": workflow.sha256,
        },
        status=result.status.value,
        started_at=result.started_at,
        ended_at=result.ended_at,
        duration=result.duration,
        records=result.steps,
        steps={k: _meta(steps, k) for k in result.steps},
        metrics=summary,
        inputs=inputs,
        exit_code=result.exit_code if exit_code is None else int(exit_code),
        error=result.error,
        waiting_for=result.waiting_for,
        rollbacks=result.rollbacks,
        vars=result.vars,
        sla=_sla(workflow, metrics),
        tails=tails or {},
        truncated=truncated or {},
        artifacts_dir=None if result.artifacts_dir is None else str(result.artifacts_dir),
    )
    return assemble(facts)


_encode = json.JSONEncoder(allow_nan=False, default=str, separators=(", ", ": ")).encode


def _member(key: str, value: Any) -> str:
    # Each step on a line of its own: readable, diffable, and every piece goes through
    # the C encoder (`indent=` forces the pure-Python one, 3.5x slower: PITFALLS.md).
    if key == "steps" and isinstance(value, dict) and value:
        inner = ",\n".join(f"    {_encode(k)}: {_encode(v)}" for k, v in value.items())
        return f"  {_encode(key)}: {{\n{inner}\n  }}"
    return f"  {_encode(key)}: {_encode(value)}"


def report_json(data: Mapping[str, Any]) -> str:
    """The report as JSON text: one line per top-level field and per step; strict JSON
    (a number JSON cannot hold, NaN or Infinity, is written as its text instead)."""
    try:
        body = ",\n".join(_member(k, v) for k, v in data.items())
    except ValueError:
        from wfctl.format.json_safe import json_safe_copy

        body = ",\n".join(_member(k, json_safe_copy(v)) for k, v in data.items())
    return "{\n" + body + "\n}\n"


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write the report so a reader never sees half a file (temp file + rename), onto a
    regular file only (see wfctl.format.output_file). Raises OutputPathError."""
    from wfctl.format.output_file import write_output

    write_output(path, report_json(data))
