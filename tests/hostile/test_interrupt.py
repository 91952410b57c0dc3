"""Issue 15: Ctrl-C reaches a run whose step is in the middle of a long template
evaluation (on main the evaluation ran to its end first, ~minutes, and the step completed)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from cli_helpers import clean_env, load_report

WORKFLOW = """\
workflow_id: interrupt_hog
name: interrupt a long evaluation
steps:
  - step_id: first
    action: shell
    with: {command: "echo go"}
  - step_id: hog
    dependencies: [first]
    action: set
    with:
      values:
        x: >-
          {% set s = 'a' * 1000000 %}{% for i in range(10000) %}{% for j in range(10) %}{%
          if s.count('b') %}x{% endif %}{% endfor %}{% endfor %}
"""
START_DEADLINE = 60.0
EXIT_DEADLINE = 30.0


def test_ctrl_c_stops_a_long_evaluation(tmp_path: Path) -> None:
    (tmp_path / "hog.yaml").write_text(WORKFLOW, encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "wfctl", "run", "hog.yaml", "--no-live", "--report", "r.json"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    seen = threading.Event()
    lines: list[str] = []

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            if "first completed" in line:
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert seen.wait(START_DEADLINE), "".join(lines)
        # `hog` starts evaluating as soon as `first` completes.
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(EXIT_DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    reader.join(5)
    output = "".join(lines)
    assert rc == 130, output
    assert "Traceback" not in output, output
    report = load_report(tmp_path / "r.json")
    assert report["status"] == "cancelled", output
    hog = report["steps"]["hog"]
    assert hog["status"] != "completed", output
    if hog["status"] == "failed" and hog["error_kind"] != "cancelled":
        assert hog["error_kind"] == "expression_limit", hog
