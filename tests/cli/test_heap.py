"""The collector around a command's load: no cyclic collection walks a workflow being built.

A full collection walks every tracked object, and CPython starts one each time the
survivors grow by a quarter: a 100k-step load paid a third of its CPU in walks that found
nothing (its objects form no cycles). Counted here with `gc.callbacks`, not timed.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.cli_helpers import cli
from wfctl.cli._heap import collector_paused
from wfctl.cli._output import load_or_report

STEPS = 3000  # enough objects for CPython's default thresholds to collect many times


def _chain(path: Path, steps: int = STEPS) -> Path:
    lines = ["workflow_id: chain", "name: a long chain", "steps:"]
    for i in range(steps):
        after = f", dependencies: [s{i - 1}]" if i else ""
        lines.append(f"  - {{step_id: s{i}, action: noop{after}}}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of every collection while the test runs; frozen objects thawed after."""
    seen: list[int] = []

    def note(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            seen.append(int(info["generation"]))

    gc.collect()
    gc.callbacks.append(note)
    try:
        yield seen
    finally:
        gc.callbacks.remove(note)
        gc.unfreeze()


def test_a_large_load_runs_no_collection_and_freezes_the_workflow(
    tmp_path: Path, collections: list[int]
) -> None:
    path = _chain(tmp_path / "chain.yaml")
    frozen = gc.get_freeze_count()
    workflow = load_or_report(str(path))
    assert collections == []
    assert workflow is not None and len(workflow.all_steps) == STEPS
    assert gc.isenabled()
    # It lives to the end of the command: later collections (the run) no longer walk it.
    assert gc.get_freeze_count() > frozen


def test_an_invalid_file_still_reports_and_the_collector_comes_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], collections: list[int]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("workflow_id: bad\nname: bad\nsteps:\n  - {step_id: a, action: nope}\n")
    assert load_or_report(str(path)) is None
    assert "bad.yaml:4" in capsys.readouterr().err
    assert gc.isenabled()


def test_validate_of_a_large_file_runs_no_collection(
    tmp_path: Path, collections: list[int]
) -> None:
    _chain(tmp_path / "chain.yaml")
    frozen = gc.get_freeze_count()
    result = cli(["validate", "chain.yaml"], tmp_path)
    assert result.returncode == 0, result.stderr
    # The command's own start and output may start a few; the checks of 3,000 steps, 118.
    assert len(collections) <= 10, collections
    assert gc.isenabled()
    # Nothing of a file's checks survives the command: it is not frozen.
    assert gc.get_freeze_count() == frozen


def test_the_collector_state_is_restored_whatever_the_block_does() -> None:
    gc.disable()
    try:
        with collector_paused(keep=False):
            assert not gc.isenabled()
        assert not gc.isenabled()  # it was off before: it stays off
    finally:
        gc.enable()
    with pytest.raises(ValueError), collector_paused(keep=False):
        raise ValueError("in the block")
    assert gc.isenabled()
