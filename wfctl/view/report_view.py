"""`wfctl report PATH`: a saved JSON report drawn as the live table's rows plus a summary."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rich.console import Console
from rich.text import Text

from wfctl.format.printable import printable
from wfctl.view.rows import (
    GLYPHS,
    RUN_STYLES,
    STYLES,
    RowDict,
    clean_line,
    column_header,
    fmt_duration,
    name_width_for,
    render_rows,
)

_SUMMARY_ORDER = ("completed", "failed", "skipped", "waiting", "running", "retrying", "pending")


def report_rows(report: Mapping[str, Any]) -> list[RowDict]:
    """Rows in tree order: each parallel step followed by its children, indented."""
    steps: Mapping[str, Mapping[str, Any]] = report.get("steps") or {}
    children: dict[str | None, list[str]] = {}
    for step_id, s in steps.items():
        parent = s.get("parent")
        # A parent missing from the report would orphan its children: show them at top level.
        children.setdefault(parent if parent in steps else None, []).append(step_id)

    notes: dict[str, list[str]] = {}
    for step_id, s in steps.items():
        for run in s.get("handler_runs") or ():
            what = "rollback" if run.get("purpose") == "rollback" else "handler"
            mark = GLYPHS.get(str(run.get("status")), "?")
            notes.setdefault(str(run.get("for_step")), []).append(f"{what} {step_id} {mark}")
            notes.setdefault(step_id, []).append(f"{what} for {run.get('for_step')}")

    rows: list[RowDict] = []
    seen: set[str] = set()

    def walk(parent: str | None, depth: int) -> None:
        for step_id in children.get(parent, ()):
            if step_id in seen:  # a cycle of parents in a hand-edited file
                continue
            seen.add(step_id)
            rows.append(_row(step_id, steps[step_id], depth, notes.get(step_id, [])))
            walk(step_id, depth + 1)

    walk(None, 0)
    return rows


def _row(step_id: str, s: Mapping[str, Any], depth: int, notes: list[str]) -> RowDict:
    status = str(s.get("status", "pending"))
    detail = s.get("skipped_reason") if status == "skipped" else s.get("error")
    return {
        "step_id": step_id,
        "status": status,
        "depth": depth,
        "attempt": len(s.get("attempts") or ()),
        "max_attempts": None,
        "duration": s.get("duration"),
        "detail": clean_line(str(detail), last=False) if detail else None,
        "notes": [*notes, *_placed(s.get("attempts") or ())],
    }


def _placed(attempts: Any) -> list[str]:
    """Where the last attempt ran, when it ran on a Ray worker (executor ray)."""
    last = attempts[-1] if attempts else {}
    if not isinstance(last, Mapping) or not last.get("node"):
        return []
    return [f"ran on Ray node {str(last['node'])[:12]} ({last.get('worker', '')})"]


def render_report(report: dict[str, Any], console: Console) -> None:
    """Print the step table and the run summary of a report (schemas/report.schema.json)."""
    width = console.width
    wf = report.get("workflow") or {}
    status = str(report.get("status", "unknown"))

    title = Text(no_wrap=True, overflow="ellipsis")
    title.append(printable(str(wf.get("name") or wf.get("id") or "workflow")), style="bold")
    if wf.get("id"):
        title.append(f" ({wf['id']}" + (f" v{wf['version']}" if wf.get("version") else "") + ")")
    if report.get("execution_id"):
        title.append(f"  run {report['execution_id']}", style="dim")
    if report.get("started_at"):
        title.append(f"  started {report['started_at']}", style="dim")
    title.truncate(width, overflow="ellipsis")
    console.print(title)

    rows = report_rows(report)
    name_width = name_width_for(rows)
    console.print(column_header(width, name_width))
    for line in render_rows(rows, width, name_width=name_width):
        console.print(line)
    console.print()

    for line in summary_lines(report, status):
        line.truncate(width, overflow="ellipsis")
        console.print(line)
    if report.get("artifacts_dir"):
        # Whole, never cut to the width: it is there to be copied.
        console.print(Text(f"artifacts: {printable(str(report['artifacts_dir']))}"), soft_wrap=True)


def _head(report: Mapping[str, Any], status: str) -> list[Text]:
    head = Text(no_wrap=True, overflow="ellipsis")
    head.append(status, style=RUN_STYLES.get(status, "bold"))
    duration = report.get("duration")
    if isinstance(duration, int | float):
        head.append(f" in {fmt_duration(float(duration))}")
    if report.get("exit_code") is not None:
        head.append(f"  (exit code {report['exit_code']})", style="dim")
    if not report.get("error"):
        return [head]
    return [head, Text(f"  {clean_line(str(report['error']), last=False)}", style="red")]


def _status_counts(report: Mapping[str, Any], metrics: Mapping[str, Any]) -> Mapping[str, Any]:
    """The report's status counts, or counted from its steps when it has none."""
    counts = metrics.get("status_counts")
    if isinstance(counts, Mapping):
        return counts
    counted: dict[str, int] = {}
    for s in (report.get("steps") or {}).values():
        key = str(s.get("status", "pending"))
        counted[key] = counted.get(key, 0) + 1
    return counted


def _steps_line(report: Mapping[str, Any], metrics: Mapping[str, Any]) -> Text:
    counts = _status_counts(report, metrics)
    total = metrics.get("steps_total", sum(counts.values()))
    line = Text(f"  steps: {total}", no_wrap=True, overflow="ellipsis")
    for key in _SUMMARY_ORDER:
        n = counts.get(key, 0)
        if n:
            line.append("  ")
            line.append(f"{GLYPHS[key]} {n} {key}", style=STYLES[key])
    return line


_DURATIONS = (("step_duration_p50", "p50"), ("step_duration_p95", "p95"))
_TOTALS = (
    ("attempts_total", "attempts"),
    ("retries", "retries"),
    ("circuit_breaker_trips", "circuit trips"),
)


def _stats_lines(metrics: Mapping[str, Any]) -> list[Text]:
    stats: list[str] = []
    rate = metrics.get("success_rate")
    if isinstance(rate, int | float):
        stats.append(f"success rate {rate * 100:.1f}%")
    for key, label in _DURATIONS:
        value = metrics.get(key)
        if isinstance(value, int | float):
            stats.append(f"{label} {fmt_duration(float(value))}")
    stats.extend(f"{label} {metrics[key]}" for key, label in _TOTALS if key in metrics)
    if not stats:
        return []
    return [Text("  " + " · ".join(stats), no_wrap=True, overflow="ellipsis")]


def _sla_lines(report: Mapping[str, Any]) -> list[Text]:
    sla: Mapping[str, Any] = report.get("sla") or {}
    breaches = list(sla.get("breaches") or ())
    if not breaches:
        return [Text("  SLA: met", style="green")] if sla else []
    plural = "es" if len(breaches) > 1 else ""
    lines = [Text(f"  SLA: {len(breaches)} breach{plural}", style="bold red")]
    for b in breaches:
        message = clean_line(str(b.get("message", b)), last=False)
        lines.append(Text(f"    {message}", style="red"))
    return lines


def _rollback_lines(report: Mapping[str, Any]) -> list[Text]:
    rollbacks = list(report.get("rollbacks") or ())
    if not rollbacks:
        return []
    lines = [Text(f"  rollbacks: {len(rollbacks)}", style="magenta")]
    for r in rollbacks:
        mark = GLYPHS.get(str(r.get("status")), "?")
        tail = f": {clean_line(str(r['error']), last=False)}" if r.get("error") else ""
        lines.append(Text(f"    {mark} {r.get('step_id')} for {r.get('for_step')}{tail}"))
    return lines


def summary_lines(report: Mapping[str, Any], status: str) -> list[Text]:
    """status, duration, counts, success rate, p50/p95, retries, trips, SLA, rollbacks."""
    metrics: Mapping[str, Any] = report.get("metrics") or {}
    return [
        *_head(report, status),
        _steps_line(report, metrics),
        *_stats_lines(metrics),
        *_sla_lines(report),
        *_rollback_lines(report),
        *(
            Text(f"  waiting for approval: {step_id}", style="yellow")
            for step_id in report.get("waiting_for") or ()
        ),
    ]
