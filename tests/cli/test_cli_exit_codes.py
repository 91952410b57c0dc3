"""The one ExitCode enum: the README's table, the --help epilog and the run-state mapping
all come from (or are checked against) it."""

from __future__ import annotations

import re

import pytest
from cli_helpers import ROOT, run_cli

from wfctl.cli.exit_codes import ExitCode, epilog, for_state
from wfctl.model import WorkflowState

TABLE_ROW = re.compile(r"^\| (\d+) \| (.+) \|$")


def readme_exit_codes() -> dict[int, str]:
    """The rows of the README's `## Exit codes` table: code -> meaning."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = (TABLE_ROW.match(line.strip()) for line in section.splitlines())
    return {int(m[1]): m[2].strip() for m in rows if m}


def test_readme_exit_code_table_matches_the_enum() -> None:
    documented = readme_exit_codes()
    assert documented, "README.md has no exit-code table"
    assert documented == {int(c): c.meaning for c in ExitCode}


def test_codes_are_the_documented_values() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 70, 130]
    assert ExitCode.INVALID == 2 and ExitCode.INTERRUPTED == 130


def test_every_run_state_has_an_exit_code() -> None:
    assert {s: for_state(s.value) for s in WorkflowState} == {
        WorkflowState.COMPLETED: ExitCode.OK,
        WorkflowState.FAILED: ExitCode.FAILED,
        WorkflowState.TIMEOUT: ExitCode.TIMEOUT,
        WorkflowState.WAITING_APPROVAL: ExitCode.WAITING,
        WorkflowState.CANCELLED: ExitCode.INTERRUPTED,
        WorkflowState.RUNNING: ExitCode.INTERNAL,
    }


def test_epilog_is_generated_from_the_enum() -> None:
    text = epilog()
    assert text == (
        "Exit codes: 0 completed · 1 failed · 2 invalid workflow or usage · 3 timed out · "
        "4 waiting for approval · 70 internal error · 130 interrupted."
    )
    for code in ExitCode:
        assert f"{int(code)} {code.label}" in text


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["resume", "--help"]])
def test_help_shows_the_exit_codes(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(args, capsys)
    assert code == ExitCode.OK
    flat = " ".join(out.split())
    assert " ".join(epilog().split()) in flat


def test_no_other_module_defines_exit_codes() -> None:
    """Integer `EXIT_*` constants (the four places of old) must not come back."""
    constant = re.compile(r"^\s*EXIT_[A-Z_]+\s*(?::\s*int\s*)?=\s*\d", re.M)
    found = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "wfctl").rglob("*.py"))
        if constant.search(path.read_text(encoding="utf-8"))
    ]
    assert found == []
