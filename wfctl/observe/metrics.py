"""Prometheus metrics of a finished run, from its report: a text file for node_exporter's
textfile collector (`--metrics-file`, written atomically) and a push to a Pushgateway
(`--push-gateway`).

Read from the report rather than counted from events: the report covers the whole run,
every process of a resumed one included, and a run that exports nothing pays nothing.
Every metric is a gauge: each file or push is a snapshot of one run, replacing the last.
The names and labels are listed in README.md ("Observability"); a test pins them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest, push_to_gateway

__all__ = ["METRICS", "export_metrics", "registry_for"]

_W = ("workflow_id",)
# name -> (help, labels): the documented set.
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "wfctl_run_info": (
        "1 for the run, labelled with its id and end status",
        (*_W, "run_id", "status"),
    ),
    "wfctl_run_success": ("1 if the run completed, else 0", _W),
    "wfctl_run_exit_code": ("wfctl's exit code for the run", _W),
    "wfctl_run_duration_seconds": ("Wall-clock duration of the run", _W),
    "wfctl_run_end_timestamp_seconds": ("When the run ended (Unix time)", _W),
    "wfctl_run_steps": ("Steps of the run by end status", (*_W, "status")),
    "wfctl_run_success_rate": ("Completed among the steps that ran to an end", _W),
    "wfctl_run_attempts": ("Attempts of all steps", _W),
    "wfctl_run_retries": ("Retries scheduled", _W),
    "wfctl_run_circuit_breaker_trips": ("Times a circuit breaker opened", _W),
    "wfctl_run_sla_met": ("1 if every SLA target was met, else 0", _W),
    "wfctl_run_sla_breaches": ("SLA breaches by target", (*_W, "target")),
    "wfctl_step_duration_seconds": ("Duration of each step", (*_W, "step_id", "status")),
    "wfctl_step_attempts": ("Attempts of each step", (*_W, "step_id")),
    "wfctl_step_custom_metric": (
        "A step's numeric custom_metrics value",
        (*_W, "step_id", "name"),
    ),
}


def _number(value: Any) -> float | None:
    """A metric value from a report value: numbers and booleans only."""
    if isinstance(value, bool | int | float) and math.isfinite(float(value)):
        return float(value)
    return None


def _run_values(report: dict[str, Any]) -> list[tuple[str, tuple[str, ...], float]]:
    m = report["metrics"]
    values: list[tuple[str, tuple[str, ...], float]] = [
        ("wfctl_run_info", (report["execution_id"], report["status"]), 1.0),
        ("wfctl_run_success", (), float(report["status"] == "completed")),
        ("wfctl_run_exit_code", (), float(report.get("exit_code") or 0)),
        ("wfctl_run_duration_seconds", (), float(report["duration"])),
        ("wfctl_run_success_rate", (), float(m["success_rate"])),
        ("wfctl_run_attempts", (), float(m["attempts_total"])),
        ("wfctl_run_retries", (), float(m["retries"])),
        ("wfctl_run_circuit_breaker_trips", (), float(m["circuit_breaker_trips"])),
        ("wfctl_run_sla_met", (), float(bool(report["sla"]["met"]))),
    ]
    values += [("wfctl_run_steps", (s,), float(n)) for s, n in m["status_counts"].items()]
    breaches: dict[str, int] = {}
    for breach in report["sla"]["breaches"]:
        breaches[breach["target"]] = breaches.get(breach["target"], 0) + 1
    values += [("wfctl_run_sla_breaches", (t,), float(n)) for t, n in breaches.items()]
    return values


def _step_values(report: dict[str, Any]) -> list[tuple[str, tuple[str, ...], float]]:
    values: list[tuple[str, tuple[str, ...], float]] = []
    for step_id, step in report["steps"].items():
        values.append(("wfctl_step_attempts", (step_id,), float(len(step["attempts"]))))
        if step["duration"] is not None:
            labels = (step_id, step["status"])
            values.append(("wfctl_step_duration_seconds", labels, float(step["duration"])))
        for name, raw in (step.get("metrics") or {}).items():
            number = _number(raw)
            if number is not None:
                values.append(("wfctl_step_custom_metric", (step_id, name), number))
    return values


def registry_for(report: dict[str, Any], ended: float) -> CollectorRegistry:
    """A registry of the documented gauges, set from `report` (a run that ended at `ended`)."""
    registry = CollectorRegistry()
    gauges = {
        name: Gauge(name, doc, labels, registry=registry) for name, (doc, labels) in METRICS.items()
    }
    workflow_id = report["workflow"]["id"]
    values = [*_run_values(report), *_step_values(report)]
    values.append(("wfctl_run_end_timestamp_seconds", (), ended))
    for name, labels, value in values:
        gauges[name].labels(workflow_id, *labels).set(value)
    return registry


def export_metrics(
    report: dict[str, Any],
    ended: float,
    metrics_file: str | None,
    push_gateway: str | None,
    warn: Callable[[str], None],
) -> None:
    """Write the text file and push to the gateway, as asked; a failure is a warning (the
    run's outcome stands), passed to `warn`."""
    registry = registry_for(report, ended)
    if metrics_file is not None:
        from wfctl.format.output_file import OutputPathError, write_output

        try:
            # Like every output file: a temporary file renamed over a regular file (a
            # scraper never reads half a file), a symlink or FIFO refused.
            write_output(Path(metrics_file), generate_latest(registry))
        except (OSError, OutputPathError) as exc:
            warn(f"could not write metrics to {metrics_file}: {exc}")
    if push_gateway is not None:
        try:
            # One group per workflow: each push replaces that workflow's last run.
            push_to_gateway(
                push_gateway,
                job="wfctl",
                registry=registry,
                grouping_key={"workflow_id": report["workflow"]["id"]},
                timeout=10,
            )
        except (OSError, ValueError) as exc:
            warn(f"could not push metrics to {push_gateway}: {exc}")
