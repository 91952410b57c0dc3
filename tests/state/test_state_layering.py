"""state/ and report/ sit below the engine: importing them (and using the store, journal,
replay, lock and both report builders) never imports wfctl.engine or the CLI."""

from __future__ import annotations

import subprocess
import sys

from cli_helpers import ROOT

CODE = """
import sys
import wfctl.state.journal, wfctl.state.lock, wfctl.state.replay, wfctl.state.store
import wfctl.report.build, wfctl.report.from_journal, wfctl.report.junit, wfctl.report.metrics
import wfctl.view.rows, wfctl.view.report_view
upward = sorted(m for m in sys.modules if m.startswith(('wfctl.engine', 'wfctl.cli', 'langgraph')))
assert not upward, upward
"""


def test_state_and_report_import_nothing_above_them() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CODE], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
