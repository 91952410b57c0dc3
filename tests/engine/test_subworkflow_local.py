"""Calls of the workflows a file defines (`workflows:`, `uses: "#name"`) through the real
CLI: each call runs the body with its own inputs under its own id, on both engines; bodies
call each other, themselves and files (whose `#name` is theirs); `graph` draws them.
(A run killed inside one resumes inside it: tests/engine/test_subworkflow_resume.py.)"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli, run_in_copy

DATA = Path(__file__).parents[1] / "data" / "subflow_templates"


def _run(tmp_path: Path, workflow: str, *args: str) -> tuple[int, str, dict[str, Any]]:
    return run_in_copy(DATA, tmp_path, workflow, *args)


@pytest.mark.parametrize("engine", ["events", "langgraph"])
def test_each_call_runs_the_body_with_its_own_inputs_under_its_id(
    tmp_path: Path, engine: str
) -> None:
    code, out, steps = _run(tmp_path, "release.yaml", "--engine", engine)
    assert code == 0, out
    # Its vars, its inputs (a default, then a given value), its step, through its outputs.
    assert steps["staging"]["output"] == {"url": "https://staging.eu/v2", "replicas": 2}
    assert steps["prod"]["output"] == {"url": "https://prod.eu/v3", "replicas": 3}
    assert steps["announce"]["output"]["stdout"] == (
        "released https://staging.eu/v2 https://prod.eu/v3\n"
    )
    for call in ("staging", "prod"):
        assert steps[call]["step_type"] == "workflow"
        assert [steps[f"{call}.{s}"]["parent"] for s in ("push", "cleanup")] == [call] * 2
        # Its retry_policy (2 attempts) let push pass its failing first attempt.
        assert len(steps[f"{call}.push"]["attempts"]) == 2
        assert (tmp_path / "markers" / f"{call}.cleanup").read_text() == "x\n"  # on_exit


@pytest.mark.parametrize("engine", ["events", "langgraph"])
def test_bodies_call_each_other_themselves_and_files_with_their_own_names(
    tmp_path: Path, engine: str
) -> None:
    code, out, steps = _run(tmp_path, "nested.yaml", "--engine", engine)
    assert code == 0, out
    assert steps["count"]["output"] == {"depth": 2}
    assert steps["count.down.down"]["output"] == {"depth": 0}
    assert steps["count.down.down.down"]["status"] == "skipped"  # its `when` ended it
    assert steps["both.inner"]["output"] == {"depth": 1}
    # outer -> ./lib/greet.yaml -> that file's own #hello.
    assert steps["both.lib.say"]["output"] == {"greeting": "hello outer"}
    assert steps["both"]["output"] == {"greeting": "hello outer"}


def test_recursion_past_the_depth_limit_fails_clearly(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "nested.yaml", "-i", "n=20")
    assert code == 1, out
    assert "sub-workflow calls nest deeper than 8 levels (#countdown)" in out
    assert steps["count"]["status"] == "failed"


def test_graph_and_dry_run_show_a_call_as_a_file_call_is_shown(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    mermaid = cli(["graph", "release.yaml"], tmp_path).stdout.splitlines()
    start = mermaid.index('  subgraph s2["staging (uses #deploy)"]')
    inside = mermaid[start + 1 : mermaid.index("  end", start)]
    assert inside == ['    s0["staging.push<br/>shell"]', '    s1["staging.cleanup<br/>shell"]',
                      "    s0 --> s1"]  # fmt: skip
    assert '  subgraph s5["prod (uses #deploy)"]' in mermaid
    dry = cli(["run", "release.yaml", "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    call = next(i for i, line in enumerate(lines) if "prod (workflow)" in line)
    assert "prod.push (action shell)" in lines[call + 1]
