"""Workflows of other engines' example suites (Argo Workflows, GitHub Actions, the Serverless
Workflow conformance kit), translated to wfctl under tests/data/peers/, each run through the
real CLI and checked against the outcome its peer documents.

Each file carries its expectation next to the workflow, in a `# expect:` comment block (YAML):
`inputs` (given with -i), `exit_code`, `status` (of the run), `steps` (id -> status, or a
mapping of report fields, `output` compared as a subset), `vars` (subset), `order` (each
step ends before the next one starts), `last` (the step that ended last), `serve` (an HTTP
status that a server on 127.0.0.1 answers every GET with; its URL is given as input
`base_url`: the peer's remote endpoint made local), `max_running` (records matching a regular
expression -> how many of them ran at once at most: the peer's concurrency limit).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import re
import subprocess
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from cli_helpers import cli, load_report
from loopback import serving

PEERS = Path(__file__).resolve().parent.parent / "data" / "peers"
FILES = sorted(PEERS.glob("*.yaml"))


def expectation(path: Path) -> dict[str, Any]:
    """The `# expect:` comment block of a peer file, parsed as YAML."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index("# expect:")
    block = []
    for line in lines[start:]:
        if not line.startswith("#"):
            break
        block.append(line[2:] if line.startswith("# ") else line[1:])
    expect: dict[str, Any] = yaml.safe_load("\n".join(block))["expect"]
    return expect


def assert_subset(actual: Any, expected: Any, where: str) -> None:
    """Every key of `expected` (recursively) has its value in `actual`; lists item by item."""
    if isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_subset(got, want, f"{where}[{index}]")
    elif isinstance(expected, dict):
        assert isinstance(actual, dict), f"{where}: {actual!r} is not a mapping"
        for key, value in expected.items():
            assert key in actual, f"{where}: no {key!r} in {sorted(actual)}"
            assert_subset(actual[key], value, f"{where}.{key}")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def check_steps(steps: dict[str, Any], expected: dict[str, Any]) -> None:
    """Each named step's report record holds the expected fields."""
    for step_id, want in expected.items():
        assert step_id in steps, f"no step {step_id} in the report: {sorted(steps)}"
        fields = {"status": want} if isinstance(want, str) else want
        assert_subset(steps[step_id], fields, step_id)


def check_order(steps: dict[str, Any], order: list[str], last: str | None) -> None:
    """`order`: each step ended before the next started; `last`: nothing ended after it."""
    for before, after in itertools.pairwise(order):
        assert steps[before]["ended_at"] <= steps[after]["started_at"], (before, after)
    if last is not None:
        ended = {sid: s["ended_at"] for sid, s in steps.items() if s["ended_at"]}
        assert max(ended.values()) == ended[last], (last, ended)


def most_at_once(steps: dict[str, Any], pattern: str) -> int:
    """The most records matching `pattern` that were running at the same time."""
    edges = sorted(
        edge
        for sid, s in steps.items()
        if re.fullmatch(pattern, sid) and s["started_at"]
        for edge in ((s["started_at"], 1), (s["ended_at"], -1))
    )  # at equal times the end (-1) sorts first: a slot handed over is not an overlap
    running = peak = 0
    for _, delta in edges:
        running += delta
        peak = max(peak, running)
    return peak


def answering(status: int) -> ThreadingHTTPServer:
    """A server on 127.0.0.1 (not yet serving) answering every GET with `status`."""

    class Answer(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Answer)


def cli_value(value: Any) -> str:
    """A value as `-i` takes it: string inputs verbatim, others as JSON."""
    return value if isinstance(value, str) else json.dumps(value)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_a_peer_workflow_has_its_documented_outcome(path: Path, tmp_path: Path) -> None:
    expect = expectation(path)
    head = path.read_text(encoding="utf-8").splitlines()[0]
    assert head.startswith("# Source: "), f"{path.name} does not name its source"
    workflow = tmp_path / path.name
    workflow.write_bytes(path.read_bytes())

    checked = cli(["validate", str(workflow)], tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    given = dict(expect.get("inputs", {}))
    with contextlib.ExitStack() as stack:
        if "serve" in expect:
            server = stack.enter_context(serving(answering(expect["serve"])))
            given["base_url"] = f"http://127.0.0.1:{server.server_address[1]}"
        ran = run(workflow, given, tmp_path)
    assert ran.returncode == expect["exit_code"], ran.stdout + ran.stderr
    report = load_report(tmp_path / "report.json")
    assert report["status"] == expect["status"]
    check_steps(report["steps"], expect.get("steps", {}))
    assert_subset(report["vars"], expect.get("vars", {}), "vars")
    check_order(report["steps"], expect.get("order", []), expect.get("last"))
    for pattern, limit in expect.get("max_running", {}).items():
        assert most_at_once(report["steps"], pattern) == limit, pattern


def run(workflow: Path, given: dict[str, Any], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """`wfctl run` of `workflow` in `tmp_path`, its report in report.json."""
    inputs = [arg for k, v in given.items() for arg in ("-i", f"{k}={cli_value(v)}")]
    args = ["run", "--no-live", "-q", "--report", "report.json", *inputs, str(workflow)]
    return cli(args, tmp_path, WFCTL_HOME=str(tmp_path / ".wfctl"))


def test_there_are_at_least_twelve_peers_from_three_suites() -> None:
    suites = {p.name.split("-")[0] for p in FILES}
    assert len(FILES) >= 12 and len(suites) >= 3, (len(FILES), suites)
