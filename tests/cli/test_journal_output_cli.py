"""The journal keeps the tail of each step attempt's output lines (issue 15: 200 MB of
output made a 1.09 GB state file): `--journal-output-limit`, `WFCTL_JOURNAL_OUTPUT_LIMIT`,
the report's `output_truncated`, and `show`, `approve` and `resume` of a capped journal."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tests.cli_helpers import clean_env, wfctl
from wfctl.actions.shell import OUTPUT_CAP_CHARS

MB = 1_000_000
# ~20 MB of 1000-byte lines, then one last line.
BIG = "yes \"$(printf '%0999d' 0)\" | head -c 20000000; echo LAST-LINE"

CHATTY_THEN_APPROVAL = f"""\
workflow_id: chatty
name: chatty
steps:
  - step_id: big
    action: shell
    with: {{command: {json.dumps(BIG)}}}
  - step_id: gate
    step_type: human_approval
    dependencies: [big]
    with: {{message: "go on?"}}
  - step_id: after
    dependencies: [gate]
    action: shell
    with: {{command: "echo after-ran"}}
"""

CHATTY_FAILS = f"""\
workflow_id: fails
name: fails
steps:
  - step_id: big
    action: shell
    with: {{command: {json.dumps(BIG + "; exit 3")}}}
"""


def _journal_lines(state: Path) -> tuple[int, list[str]]:
    """(bytes of output-line text, the lines in order) that the journal holds."""
    conn = sqlite3.connect(state / "state.db")
    try:
        rows = conn.execute("SELECT kind, data FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    lines: list[str] = []
    for kind, data in rows:
        decoded = json.loads(data)
        events = decoded if kind == "batch" else [decoded]
        lines += [e["line"] for e in events if e["kind"] == "step_output"]
    return sum(len(line) + 1 for line in lines), lines


def test_a_step_printing_20_mb_leaves_its_tail_and_resume_goes_on(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(CHATTY_THEN_APPROVAL)
    state = tmp_path / "state"
    first = wfctl(
        ["run", "wf.yaml", "--state-dir", str(state), "--no-input", "--report", "r1.json"],
        tmp_path,
    )
    assert first.rc == 4, first  # waiting for the approval
    report = first.report("r1.json")
    big = report["steps"]["big"]
    assert big["status"] == "completed"
    truncated = big["output_truncated"]
    assert truncated["dropped_bytes"] > 18 * MB and truncated["dropped_lines"] > 18_000
    assert report["steps"]["after"]["output_truncated"] is None
    text_bytes, lines = _journal_lines(state)
    assert text_bytes <= 1024 * 1024 and lines[-1] == "LAST-LINE"
    # What is left is the step's own output (capped by the shell action), not its lines.
    assert (state / "state.db").stat().st_size < OUTPUT_CAP_CHARS + 3 * MB

    run_id = report["execution_id"]
    shown = wfctl(["show", run_id, "--state-dir", str(state)], tmp_path)
    assert shown.rc == 0, shown
    assert wfctl(["approve", run_id, "gate", "--state-dir", str(state)], tmp_path).rc == 0
    resumed = wfctl(
        ["resume", run_id, "--state-dir", str(state), "--no-input", "--report", "r2.json"],
        tmp_path,
    )
    assert resumed.rc == 0, resumed
    final = resumed.report("r2.json")
    assert final["status"] == "completed"
    assert final["steps"]["after"]["output"]["stdout"] == "after-ran\n"
    assert len(final["steps"]["big"]["attempts"]) == 1  # not run again
    assert final["steps"]["big"]["output_truncated"] == truncated


def test_a_failed_steps_tail_counts_the_dropped_lines(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(CHATTY_FAILS)
    state = tmp_path / "state"
    env = clean_env(WFCTL_JOURNAL_OUTPUT_LIMIT="64k")
    run = wfctl(
        ["run", "wf.yaml", "--state-dir", str(state), "--no-live", "--report", "r.json"],
        tmp_path,
        env=env,
    )
    assert run.rc == 1, run
    big = run.report("r.json")["steps"]["big"]
    assert big["output_tail"]["stdout"][-1] == "LAST-LINE"
    assert big["output_tail"]["lines"]["stdout"] == 20_001  # dropped ones counted
    assert big["output_truncated"]["dropped_lines"] > 19_900
    assert "(last 20 of 20001 lines)" in run.stdout
    text_bytes, lines = _journal_lines(state)
    assert text_bytes <= 64_000 and lines[-1] == "LAST-LINE"
    # `show` rebuilds the same from the journal.
    shown = load_report_from_show(state, run.report("r.json")["execution_id"])
    assert shown["output_truncated"] == big["output_truncated"]
    assert shown["output_tail"]["lines"] == big["output_tail"]["lines"]


def load_report_from_show(state: Path, run_id: str) -> dict[str, Any]:
    """The step `big` as `wfctl show` and `approve` rebuild it from the journal."""
    from wfctl.report.from_journal import report_from_journal
    from wfctl.state.store import opened_run

    with opened_run(state, run_id) as (store, row):
        report = report_from_journal(store, row)
    step: dict[str, Any] = report["steps"]["big"]
    return step


def test_zero_keeps_no_lines_and_a_bad_size_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: w\nname: w\nsteps:\n"
        "  - {step_id: s, action: shell, with: {command: 'seq 1 500; exit 1'}}\n"
    )
    state = tmp_path / "state"
    args = ["run", "wf.yaml", "--state-dir", str(state), "--report", "r.json"]
    run = wfctl([*args, "--journal-output-limit", "0", "--no-live"], tmp_path)
    assert run.rc == 1, run
    # The log is fed from the event stream, not the journal: it saw every line.
    assert "s stdout (last 20 of 500 lines):" in run.stdout and "| 500\n" in run.stdout
    step = run.report("r.json")["steps"]["s"]
    assert step["output_truncated"] == {"dropped_lines": 500, "dropped_bytes": 1892}
    assert _journal_lines(state) == (0, [])

    bad = wfctl([*args, "--journal-output-limit", "lots"], tmp_path)
    assert bad.rc == 2
    assert "'lots' is not a size" in bad.stderr and "Traceback" not in bad.stderr
