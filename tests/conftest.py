"""Shared helpers for the engine tests: build a validated Workflow from YAML text, run it
with `anyio.run` and collect every event of the run."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import pytest

DATA_DIR = Path(__file__).parent / "data"
ENGINE_DATA_DIR = DATA_DIR / "engine"
for _p in (DATA_DIR, ENGINE_DATA_DIR):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from loopback import serving  # noqa: E402

from wfctl.document.loader import load_text  # noqa: E402
from wfctl.engine import RunOptions  # noqa: E402
from wfctl.engine.runner import run_workflow  # noqa: E402
from wfctl.events import (  # noqa: E402
    Event,
    EventBus,
    RetryScheduled,
    StepOutputLine,
    StepStateChanged,
)
from wfctl.format.diagnostics import WorkflowError  # noqa: E402
from wfctl.model import (  # noqa: E402
    ParallelBody,
    Step,
    StepStatus,
    StepType,
    Workflow,
    build_workflow,
)
from wfctl.records import RunResult  # noqa: E402
from wfctl.validate.files import check_document  # noqa: E402

TERMINAL = (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.SKIPPED)
HEADER = "workflow_id: test\nname: test\n"


def make_workflow(text: str, file: str = "test.yaml") -> Workflow:
    """A Workflow from YAML text (dedented; `workflow_id`/`name` added when missing).

    Raises AssertionError listing every diagnostic: a test workflow must be valid.
    """
    text = textwrap.dedent(text).strip("\n") + "\n"
    if not re.search(r"""^\s*["']?workflow_id["']?\s*:""", text, re.M):
        text = HEADER + text
    doc = None
    try:
        doc = load_text(text, file)
    except WorkflowError as exc:
        problems = exc.diagnostics
    else:
        problems = check_document(doc)
    if problems:
        lines = "\n".join(f"  {d.location()} [{d.code}] {d.message}" for d in problems)
        raise AssertionError(f"test workflow is invalid:\n{lines}\n---\n{text}")
    assert doc is not None
    return build_workflow(doc)


def replace_step(workflow: Workflow, step_id: str, **changes: Any) -> Workflow:
    """A copy of `workflow` with one (top-level or nested) step changed, bypassing
    validation: for states that a valid workflow file cannot express."""
    new_step = replace(workflow.all_steps[step_id], **changes)

    def swap(steps: tuple[Step, ...]) -> tuple[Step, ...]:
        out = []
        for s in steps:
            if s.step_id == step_id:
                out.append(new_step)
            elif s.children:
                out.append(replace(s, body=ParallelBody(swap(s.children))))
            else:
                out.append(s)
        return tuple(out)

    top = swap(workflow.steps)
    all_steps: dict[str, Step] = {}

    def walk(steps: tuple[Step, ...]) -> None:
        for s in steps:
            all_steps[s.step_id] = s
            walk(s.children)

    walk(top)
    return replace(workflow, steps=top, all_steps=all_steps)


@dataclass
class Outcome:
    """A finished run: its RunResult and every event it emitted, in order."""

    result: RunResult
    events: list[Event]
    workflow: Workflow
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- shortcuts -------------------------------------------------------------
    @property
    def status(self) -> str:
        return self.result.status.value

    @property
    def exit_code(self) -> int:
        return self.result.exit_code

    def record(self, step_id: str) -> Any:
        return self.result.steps[step_id]

    def step_status(self, step_id: str) -> str:
        return self.result.steps[step_id].status.value

    def statuses(self) -> dict[str, str]:
        return {k: r.status.value for k, r in self.result.steps.items()}

    # -- events ----------------------------------------------------------------
    def of(self, kind: type[Event]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    def state_events(self, step_id: str | None = None) -> list[StepStateChanged]:
        return [
            e
            for e in self.events
            if isinstance(e, StepStateChanged) and (step_id is None or e.step_id == step_id)
        ]

    def trail(self, step_id: str) -> list[str]:
        """The statuses a step went through, in event order."""
        return [e.status.value for e in self.state_events(step_id)]

    def index(self, step_id: str, status: StepStatus | str, nth: int = 0) -> int:
        """Position in `events` of the nth StepStateChanged(step_id, status)."""
        wanted = StepStatus(status)
        hits = [
            i
            for i, e in enumerate(self.events)
            if isinstance(e, StepStateChanged) and e.step_id == step_id and e.status is wanted
        ]
        assert len(hits) > nth, (
            f"no {wanted.value} event #{nth} for {step_id}: {self.trail(step_id)}"
        )
        return hits[nth]

    def end_index(self, step_id: str) -> int:
        """Position of the step's (first) terminal event."""
        for i, e in enumerate(self.events):
            if isinstance(e, StepStateChanged) and e.step_id == step_id and e.status.terminal:
                return i
        raise AssertionError(f"{step_id} never reached a terminal status: {self.trail(step_id)}")

    def ts(self, step_id: str, status: StepStatus | str, nth: int = 0) -> float:
        return self.events[self.index(step_id, status, nth)].ts

    def start_order(self) -> list[str]:
        """Step ids in the order of their first RUNNING event."""
        seen: list[str] = []
        for e in self.state_events():
            if e.status is StepStatus.RUNNING and e.step_id not in seen:
                seen.append(e.step_id)
        return seen

    def output_lines(self, step_id: str | None = None) -> list[str]:
        return [e.line for e in self.of(StepOutputLine) if step_id is None or e.step_id == step_id]

    def retries(self, step_id: str | None = None) -> list[RetryScheduled]:
        return [e for e in self.of(RetryScheduled) if step_id is None or e.step_id == step_id]

    def max_running(self) -> int:
        """Most steps holding a slot at once, from events: a step holds one from its
        RUNNING event to its next state event (containers hold none)."""
        running: set[str] = set()
        peak = 0
        for e in self.state_events():
            if self.workflow.all_steps[e.step_id].step_type is StepType.PARALLEL:
                continue
            if e.status is StepStatus.RUNNING:
                running.add(e.step_id)
            else:
                running.discard(e.step_id)
            peak = max(peak, len(running))
        return peak

    def dump(self) -> str:
        """Every event, the result and its step records as one JSON text."""
        data = {
            "events": [e.to_json() for e in self.events],
            "result": {
                "status": self.result.status.value,
                "error": self.result.error,
                "vars": self.result.vars,
                "rollbacks": list(self.result.rollbacks),
                "steps": {
                    k: {
                        "output": r.output,
                        "error": r.error,
                        "reason": r.reason,
                        "metrics": r.metrics,
                        "handler_runs": r.handler_runs,
                        "attempts": [(a.error, a.error_kind) for a in r.attempts],
                    }
                    for k, r in self.result.steps.items()
                },
            },
        }
        return json.dumps(data, default=str)


def run(
    workflow: Workflow,
    inputs: dict[str, Any] | None = None,
    *,
    subscribers: tuple[Callable[[Event], None], ...] = (),
    **kw: Any,
) -> Outcome:
    """`anyio.run(run_workflow(...))`, collecting every event through an EventBus."""
    bus = kw.pop("bus", None) or EventBus()
    events: list[Event] = []
    bus.subscribe(events.append)
    for subscriber in subscribers:
        bus.subscribe(subscriber)
    kw.setdefault("env", dict(os.environ))
    options = RunOptions(bus=bus, **kw)
    result = anyio.run(run_workflow, workflow, inputs, options)
    return Outcome(result=result, events=events, workflow=workflow)


@pytest.fixture
def wf() -> Callable[[str], Workflow]:
    """The `make_workflow` helper as a fixture."""
    return make_workflow


@pytest.fixture
def runner() -> Callable[..., Outcome]:
    """The `run` helper as a fixture."""
    return run


@pytest.fixture
def slot_spy(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Every PrioritySlots the executor creates, to read `peak` after the run."""
    from wfctl.engine import executor as executor_mod
    from wfctl.engine.slots import PrioritySlots  # the executor creates the run's slots

    created: list[PrioritySlots] = []

    class SpySlots(PrioritySlots):
        def __init__(self, total: int) -> None:
            super().__init__(total)
            created.append(self)

    monkeypatch.setattr(executor_mod, "PrioritySlots", SpySlots)
    yield created


# -- a real HTTP server on 127.0.0.1 ---------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self) -> None:
        path, _, query = self.path.partition("?")
        params = dict(p.split("=", 1) for p in query.split("&") if "=" in p)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.hits[path] = self.server.hits.get(path, 0) + 1
            hits = self.server.hits[path]
        if path == "/ok":
            self._send(200, {"ok": True, "items": [1, 2]})
        elif path == "/echo":
            self._send(200, {"received": json.loads(raw or b"null")})
        elif path.startswith("/flaky/"):
            # /flaky/<key>?n=K: 503 for the first K requests, then 200
            if hits <= int(params.get("n", "1")):
                self._send(503, {"error": "unavailable", "hit": hits})
            else:
                self._send(200, {"ok": True, "hit": hits})
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), {"error": "as requested"})
        elif path == "/slow":
            time.sleep(float(params.get("s", "1")))
            self._send(200, {"slow": True})
        else:
            self._send(404, {"error": "not found"})

    do_GET = _route
    do_POST = _route


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture(scope="session")
def http_server() -> Iterator[_Server]:
    """A ThreadingHTTPServer on 127.0.0.1, port 0; `hits` counts requests per path."""
    with serving(_Server()) as server:
        yield server
