"""The live table and the report view: driven with synthetic events, read back as plain text."""

from __future__ import annotations

import io
import re
import time
from dataclasses import replace
from types import MappingProxyType
from typing import Any, cast

from rich.console import Console

from wfctl.events import (
    CircuitChanged,
    Event,
    HandlerRan,
    RetryScheduled,
    RunFinished,
    RunStarted,
    StepOutputLine,
    StepStateChanged,
)
from wfctl.model import (
    Call,
    CircuitBreakerPolicy,
    ParallelBody,
    RetryPolicy,
    SlaTargets,
    Step,
    StepStatus,
    StepType,
    TriggerRule,
    Workflow,
    WorkflowState,
)
from wfctl.view.live import LiveTable
from wfctl.view.report_view import render_report

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")
RUN = "run-1"
STEP_ROW = re.compile(r"^. +(\S+) +(?:pending|waiting|running|retrying|completed|failed|skipped)\b")


def make_step(
    step_id: str,
    *,
    children: tuple[Step, ...] = (),
    container: str | None = None,
    max_attempts: int = 1,
    rollback: tuple[str, ...] = (),
) -> Step:
    return Step(
        step_id=step_id,
        name=step_id,
        step_type=StepType.PARALLEL if children else StepType.ACTION,
        body=ParallelBody(children) if children else Call("noop", cast(Any, {})),
        timeout=None,
        when=None,
        trigger_rule=TriggerRule.ALL_SUCCESS,
        dependencies=(),
        input_mapping={},
        input_validation=None,
        output_mapping={},
        retry_policy=RetryPolicy(max_attempts=max_attempts),
        error_handlers=(),
        rollback_actions=rollback,
        metrics_enabled=True,
        custom_metrics={},
        container=container,
        line=1,
    )


def make_workflow(steps: tuple[Step, ...], handlers: frozenset[str] = frozenset()) -> Workflow:
    all_steps: dict[str, Step] = {}

    def walk(level: tuple[Step, ...]) -> None:
        for s in level:
            walk(s.children)
            all_steps[s.step_id] = s  # children first, as build_workflow does

    walk(steps)
    return Workflow(
        workflow_id="demo",
        name="Demo workflow",
        description="",
        version="1.0",
        tags=(),
        created_by=None,
        inputs={},
        global_variables={},
        secrets={},
        timeout=60.0,
        max_parallel_steps=10,
        retry_policy=RetryPolicy(),
        circuit_breaker=CircuitBreakerPolicy(),
        sla_targets=SlaTargets(),
        agents=(),
        steps=steps,
        all_steps=MappingProxyType(all_steps),
        handlers=handlers,
        source_file="demo.yaml",
        sha256="0" * 64,
    )


def term(height: int = 40, width: int = 100) -> Console:
    return Console(
        file=io.StringIO(), width=width, height=height, force_terminal=True, color_system="standard"
    )


def text_of(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return ANSI.sub("", file.getvalue())


def frame(table: LiveTable, console: Console) -> list[str]:
    """The table printed once, as plain lines."""
    before = len(text_of(console))
    console.print(table)
    return text_of(console)[before:].rstrip("\n").split("\n")


def state(step_id: str, status: StepStatus, ts: float, **kw: Any) -> StepStateChanged:
    return StepStateChanged(RUN, ts, step_id, status, **kw)


def feed(table: LiveTable, events: list[Event]) -> None:
    for e in events:
        table(e)


def small_run() -> tuple[Workflow, list[Event]]:
    fan = make_step(
        "fan",
        children=(make_step("left", container="fan"), make_step("right", container="fan")),
    )
    wf = make_workflow(
        (
            make_step("build", rollback=("undo",)),
            make_step("fetch", max_attempts=3),
            fan,
            make_step("gate"),
            make_step("deploy"),
            make_step("undo"),
        ),
        handlers=frozenset({"undo"}),
    )
    t = 1000.0
    events: list[Event] = [
        RunStarted(RUN, t, "demo", "Demo workflow", tuple(wf.all_steps)),
        state("build", StepStatus.RUNNING, t + 0.1, attempt=1),
        StepOutputLine(RUN, t + 0.2, "build", "compiling\x1b[31m 42 files\x1b[0m\tok\n"),
        state("build", StepStatus.COMPLETED, t + 1.1, attempt=1, duration=1.0),
        state("fetch", StepStatus.RUNNING, t + 1.2, attempt=1, max_attempts=3),
        RetryScheduled(RUN, t + 1.3, "fetch", 1, 1.5, t + 2.8, "connection refused"),
        state(
            "fetch",
            StepStatus.RETRYING,
            t + 1.3,
            attempt=1,
            max_attempts=3,
            error="connection refused",
            next_attempt_at=t + 2.8,
        ),
        CircuitChanged(RUN, t + 1.3, "http:127.0.0.1:8080", "open", 5),
        state("fetch", StepStatus.RUNNING, t + 2.8, attempt=2, max_attempts=3),
        state("fetch", StepStatus.COMPLETED, t + 3.0, attempt=2, max_attempts=3, duration=1.8),
        state("fan", StepStatus.RUNNING, t + 3.1, attempt=1),
        state("left", StepStatus.RUNNING, t + 3.1, attempt=1, container="fan"),
        state("right", StepStatus.RUNNING, t + 3.1, attempt=1, container="fan"),
        state("left", StepStatus.COMPLETED, t + 3.5, attempt=1, duration=0.4, container="fan"),
        state(
            "right",
            StepStatus.FAILED,
            t + 3.6,
            attempt=1,
            duration=0.5,
            error="exit code 2: disk full\ntraceback...",
            container="fan",
        ),
        state("fan", StepStatus.FAILED, t + 3.6, attempt=1, duration=0.5, error="1 of 2 failed"),
        state("gate", StepStatus.SKIPPED, t + 3.7, reason="upstream failed"),
        state("deploy", StepStatus.SKIPPED, t + 3.7, reason="upstream failed"),
        state("undo", StepStatus.RUNNING, t + 3.8, attempt=1),
        state("undo", StepStatus.COMPLETED, t + 3.9, attempt=1, duration=0.1),
        HandlerRan(RUN, t + 3.9, "undo", "build", "rollback", StepStatus.COMPLETED),
        RunFinished(RUN, t + 4.0, WorkflowState.FAILED, "step right failed", 4.0),
    ]
    return wf, events


def row_of(lines: list[str], step_id: str) -> str:
    found = [ln for ln in lines if re.search(rf"^. +{re.escape(step_id)}\b", ln)]
    assert len(found) == 1, (step_id, lines)
    return found[0]


def test_final_frame_shows_each_status_and_the_header_counts() -> None:
    wf, events = small_run()
    console = term()
    table = LiveTable(wf, io.StringIO(), console=console)
    feed(table, events)
    lines = frame(table, console)

    assert "Demo workflow" in lines[0] and "run run-1" in lines[0] and "failed" in lines[0]
    assert "4.0s" in lines[0]  # elapsed is frozen at RunFinished
    assert "✘ 2 failed  ✔ 4 completed  ⤼ 2 skipped" in lines[1]
    assert "8/8 done (100%)" in lines[2]  # the handler ran, so it counts
    assert any("breaker http:127.0.0.1:8080 open" in ln for ln in lines)
    assert any("step right failed" in ln for ln in lines)

    build = row_of(lines, "build")
    assert build.startswith("✔") and "compiling 42 files    ok" in build
    assert "rollback undo ✔" in build
    fetch = row_of(lines, "fetch")
    assert fetch.startswith("✔") and "2/3" in fetch and "1.8s" in fetch
    assert row_of(lines, "fan").startswith("✘")
    assert row_of(lines, "left").startswith("✔")
    right = row_of(lines, "right")
    assert right.startswith("✘") and "exit code 2: disk full" in right
    assert "traceback" not in right
    # Children indented under their parallel parent, in workflow order.
    assert right.index("right") > row_of(lines, "fan").index("fan")
    first = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["step", "status"]) + 1
    order = [m[1] for ln in lines[first:] if (m := STEP_ROW.match(ln))]
    assert order == ["build", "fetch", "fan", "left", "right", "gate", "deploy", "undo"]
    assert "upstream failed" in row_of(lines, "gate")
    assert row_of(lines, "undo").startswith("✔") and "rollback for build" in row_of(lines, "undo")
    assert all(len(ln) <= 100 for ln in lines)


def test_running_and_retrying_rows_tick_from_the_event_timestamps() -> None:
    wf, _ = small_run()
    console = term()
    table = LiveTable(wf, io.StringIO(), console=console)
    now = time.time()
    feed(
        table,
        [
            RunStarted(RUN, now - 5, "demo", "Demo workflow", tuple(wf.all_steps)),
            state("build", StepStatus.RUNNING, now - 3, attempt=1),
            state("fetch", StepStatus.RUNNING, now - 2, attempt=1, max_attempts=3),
            state(
                "fetch",
                StepStatus.RETRYING,
                now - 1,
                attempt=1,
                max_attempts=3,
                error="timeout after 1s",
                next_attempt_at=now + 30,
            ),
        ],
    )
    lines = frame(table, console)
    build = row_of(lines, "build")
    assert build.startswith("▶") and re.search(r"\b3\.\ds\b", build)
    fetch = row_of(lines, "fetch")
    assert fetch.startswith("↻")
    assert re.search(r"retry in (29\.\d|30\.0)s · timeout after 1s", fetch)
    assert "1/3" in fetch
    # The idle handler is listed but not counted as work still to do.
    assert "rollback for build" in row_of(lines, "undo")
    assert "· 5 pending" in lines[1] and "0/7 done" in lines[2]


def many_steps(n: int) -> Workflow:
    return make_workflow(tuple(make_step(f"step-{i:03d}") for i in range(n)))


def test_two_hundred_steps_fit_the_terminal_with_active_rows_visible() -> None:
    wf = many_steps(200)
    console = term(height=40)
    table = LiveTable(wf, io.StringIO(), console=console)
    t = 1000.0
    events: list[Event] = [RunStarted(RUN, t, "demo", "Demo workflow", tuple(wf.all_steps))]
    for i in range(150):
        sid = f"step-{i:03d}"
        events.append(state(sid, StepStatus.RUNNING, t + i, attempt=1))
        if i >= 145:
            continue
        if i == 40:
            events.append(state(sid, StepStatus.FAILED, t + i + 0.5, attempt=1, error="boom"))
        elif i % 10 == 5:
            events.append(state(sid, StepStatus.SKIPPED, t + i + 0.5, reason="when was false"))
        else:
            events.append(state(sid, StepStatus.COMPLETED, t + i + 0.5, attempt=1, duration=0.5))
    feed(table, events)

    lines = frame(table, console)
    assert len(lines) <= 40
    assert "✘ 1 failed  ▶ 5 running  ✔ 130 completed  ⤼ 14 skipped  · 50 pending" in lines[1]
    assert "145/200 done (72%)" in lines[2]
    assert row_of(lines, "step-040").startswith("✘")
    for i in range(145, 150):
        assert row_of(lines, f"step-{i:03d}").startswith("▶")
    hidden = [ln for ln in lines if ln.startswith("… ") and ln.endswith("hidden")]
    assert len(hidden) == 1
    assert re.fullmatch(r"… \d+ completed, \d+ skipped hidden", hidden[0]), hidden
    more = [ln for ln in lines if re.fullmatch(r"… \d+ pending", ln)]
    assert len(more) == 1
    shown_pending = sum(1 for ln in lines if ln.startswith("· step-"))
    assert shown_pending + int(more[0].split()[1]) == 50
    assert shown_pending > 0
    # Every step is accounted for: shown rows + hidden counts.
    shown = sum(1 for ln in lines if re.match(r"^. step-\d{3}", ln))
    hidden_n = sum(int(n) for n in re.findall(r"(\d+) (?:completed|skipped)", hidden[0]))
    assert shown + hidden_n + int(more[0].split()[1]) == 200


def test_small_terminal_keeps_failed_and_running_rows() -> None:
    wf = many_steps(200)
    console = term(height=12, width=60)
    table = LiveTable(wf, io.StringIO(), console=console)
    t = 1000.0
    feed(table, [RunStarted(RUN, t, "demo", "Demo workflow", tuple(wf.all_steps))])
    for i in range(100):
        table(state(f"step-{i:03d}", StepStatus.COMPLETED, t + i, attempt=1, duration=1))
    table(state("step-100", StepStatus.FAILED, t + 101, error="boom"))
    table(state("step-101", StepStatus.RUNNING, t + 101, attempt=1))
    table(state("step-150", StepStatus.WAITING, t + 101, reason="waiting for approval"))
    lines = frame(table, console)
    assert len(lines) <= 12
    assert all(len(ln) <= 60 for ln in lines)
    for sid in ("step-100", "step-101", "step-150"):
        assert any(ln[2:].startswith(sid) for ln in lines), (sid, lines)


def test_start_stop_and_alert_on_a_terminal() -> None:
    wf, events = small_run()
    console = term()
    table = LiveTable(wf, io.StringIO(), console=console, refresh_per_second=20)
    table.start()
    try:
        feed(table, events[:5])
        table.alert("step fetch took 3.0s, over its 2s target")
        feed(table, events[5:])
    finally:
        table.stop()
    out = text_of(console)
    assert "SLA ALERT: step fetch took 3.0s, over its 2s target" in out
    assert table.alerts == ["step fetch took 3.0s, over its 2s target"]
    tail = out[out.rindex("Demo workflow") :]  # the final frame stays on screen
    assert "⚠ 1 SLA alert" in tail
    assert re.search(r"^✘ +right +failed", tail, re.M)


def test_no_color_output_has_no_colour_codes(monkeypatch: Any) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    wf, events = small_run()
    out = io.StringIO()
    table = LiveTable(wf, out)
    feed(table, events)
    table.console.print(table)
    assert not re.search(r"\x1b\[[0-9;]*3[0-7]m", out.getvalue())
    assert "✘" in out.getvalue()


def minimal_report() -> dict[str, Any]:
    def step(status: str, **kw: Any) -> dict[str, Any]:
        base: dict[str, Any] = {
            "name": "x",
            "step_type": "action",
            "parent": None,
            "status": status,
            "attempts": [],
            "output": None,
            "error": None,
            "skipped_reason": None,
            "duration": 1.0,
        }
        return base | kw

    attempt = {"number": 1, "started_at": None, "ended_at": None, "error": "refused"}
    return {
        "execution_id": "run-42",
        "workflow": {"id": "demo", "name": "Demo workflow", "version": "1.0"},
        "status": "failed",
        "exit_code": 1,
        "error": "step push failed",
        "duration": 12.5,
        "steps": {
            "child": step("completed", parent="fan"),
            "fan": step("completed", step_type="parallel"),
            "fetch": step("completed", attempts=[attempt, attempt, attempt]),
            "push": step("failed", error="exit code 1: denied"),
            "notify": step("skipped", skipped_reason="upstream failed", duration=None),
            "undo": step(
                "completed",
                handler_runs=[
                    {
                        "step_id": "undo",
                        "for_step": "fetch",
                        "purpose": "rollback",
                        "status": "completed",
                    }
                ],
            ),
        },
        "rollbacks": [
            {"step_id": "undo", "for_step": "fetch", "purpose": "rollback", "status": "completed"}
        ],
        "metrics": {
            "steps_total": 6,
            "status_counts": {"completed": 4, "failed": 1, "skipped": 1},
            "success_rate": 0.8,
            "attempts_total": 7,
            "retries": 2,
            "circuit_breaker_trips": 1,
            "step_duration_p50": 1.0,
            "step_duration_p95": 2.25,
        },
        "sla": {
            "targets": {"max_duration": 10},
            "met": False,
            "breaches": [
                {"target": "max_duration", "message": "run took 12.5s, over 10s", "at": None}
            ],
        },
    }


def test_render_report_prints_steps_and_summary() -> None:
    console = term(width=100)
    render_report(minimal_report(), console)
    text = text_of(console)
    lines = text.splitlines()
    assert "Demo workflow (demo v1.0)" in lines[0] and "run run-42" in lines[0]
    assert row_of(lines, "fan").startswith("✔")
    child = row_of(lines, "child")
    assert child.index("child") == row_of(lines, "fan").index("fan") + 2  # indented under fan
    assert lines.index(child) == lines.index(row_of(lines, "fan")) + 1
    assert "#3" in row_of(lines, "fetch") and "rollback undo ✔" in row_of(lines, "fetch")
    assert row_of(lines, "push").startswith("✘") and "exit code 1: denied" in row_of(lines, "push")
    assert "upstream failed" in row_of(lines, "notify")
    for expected in (
        "failed in 12.5s",
        "step push failed",
        "✔ 4 completed",
        "✘ 1 failed",
        "success rate 80.0%",
        "p50 1.0s",
        "p95 2.2s",
        "retries 2",
        "circuit trips 1",
        "SLA: 1 breach",
        "run took 12.5s, over 10s",
        "rollbacks: 1",
        "undo for fetch",
    ):
        assert expected in text, expected


def test_max_rows_caps_the_rows_below_the_header() -> None:
    wf = many_steps(50)
    console = term(height=200)
    table = LiveTable(wf, io.StringIO(), console=console, max_rows=10)
    feed(table, [RunStarted(RUN, 1000.0, "demo", "Demo workflow", tuple(wf.all_steps))])
    table(state("step-030", StepStatus.RUNNING, 1000.0, attempt=1))
    lines = frame(table, console)
    first = next(i for i, ln in enumerate(lines) if ln.split()[:2] == ["step", "status"]) + 1
    assert len(lines[first:]) == 10
    assert row_of(lines, "step-030").startswith("▶")
    assert lines[-1] == "… 41 pending"


def test_a_loop_row_shows_its_round_not_an_attempt_count() -> None:
    """A loop appends an attempt per round: `3/1` would read as a retry storm."""
    wf = make_workflow((make_step("poll"),))
    console = term()
    table = LiveTable(wf, io.StringIO(), console=console)
    t = time.time()
    feed(table, [RunStarted(RUN, t, "demo", "Demo workflow", ("poll",), {})])
    for n in range(3):
        feed(table, [state("poll", StepStatus.RUNNING, t + n, attempt=n + 1, iteration=n)])
        assert f"↻{n + 1}" in row_of(frame(table, console), "poll")
    feed(table, [state("poll", StepStatus.COMPLETED, t + 3, attempt=3, duration=3.0)])
    done = row_of(frame(table, console), "poll")
    assert "↻3" in done and "3/1" not in done


def test_a_narrow_terminal_keeps_status_time_and_the_whole_run_id() -> None:
    """At 40 columns the step column narrows first: status and time stay on every row,
    and the run id moves to a line of its own instead of being cut."""
    wf, events = small_run()
    run_id = "20261207T025758Z-052911d0"
    events = [replace(e, run_id=run_id) if isinstance(e, RunStarted) else e for e in events]
    console = term(width=40)
    table = LiveTable(wf, io.StringIO(), console=console)
    feed(table, events)
    lines = frame(table, console)
    assert all(len(ln) <= 40 for ln in lines), lines
    assert f"run {run_id}" in lines
    assert "Demo workflow" in lines[0] and "failed" in lines[0]
    fetch = next(ln for ln in lines if ln.startswith("✔ fetch"))
    assert "completed" in fetch and "2/3" in fetch and "1.8s" in fetch
    # A child's id is cut (with an ellipsis) before its status or time would be.
    right = next(ln for ln in lines if ln.startswith("✘   rig…"))
    assert "failed" in right and "0.5s" in right
