"""Sub-workflow calls (`uses:`) through the real CLI: the child's steps run under the
call's id with the child's own inputs, vars and retry policy; its outputs reach the
caller; the report, `show` and `--dry-run` nest them under the call; recursion stops at
its `when` or fails past the depth limit; a matrix cell calls a child per cell."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from cli_helpers import cli, load_report, run_in_copy

DATA = Path(__file__).parents[1] / "data" / "subflow"


def _run(tmp_path: Path, workflow: str, *args: str) -> tuple[int, str, dict[str, Any]]:
    return run_in_copy(DATA, tmp_path, workflow, *args)


def test_a_call_runs_the_child_with_its_inputs_and_gives_its_outputs(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "release.yaml", "-i", "target=staging")
    assert code == 0, out
    # The child's vars and defaulted input, its build's stdout, through its outputs.
    assert steps["deploy"]["output"] == {"url": "https://staging.eu/v1-2", "replicas": 2}
    assert steps["announce"]["output"]["stdout"] == "released https://staging.eu/v1-2\n"
    assert [steps[f"deploy.{s}"]["parent"] for s in ("build", "push", "cleanup")] == ["deploy"] * 3
    assert steps["deploy"]["step_type"] == "workflow"
    # The child's retry_policy (2 attempts) let push pass its failing first attempt.
    assert len(steps["deploy.push"]["attempts"]) == 2
    assert (tmp_path / "markers" / "deploy.cleanup").read_text() == "x\n"  # its on_exit


def test_show_and_dry_run_list_the_childs_steps_under_the_call(tmp_path: Path) -> None:
    code, out, _ = _run(tmp_path, "release.yaml")
    assert code == 0, out
    dry = cli(["run", "release.yaml", "--dry-run"], tmp_path)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    call = next(i for i, line in enumerate(lines) if "deploy (workflow)" in line)
    assert "deploy.build (action shell)" in lines[call + 1]
    assert lines[call + 1].startswith("     ")  # indented under the call
    runs = cli(["runs", "--json"], tmp_path)
    run_id = json.loads(runs.stdout)[0]["run_id"]
    show = cli(["show", run_id], tmp_path)
    assert show.returncode == 0, show.stderr
    assert "  deploy.push" in show.stdout


def test_a_matrix_cell_calls_the_child_with_the_cells_values(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "matrix.yaml")
    assert code == 0, out
    urls = [steps[f"cells[{i}].note"]["output"]["stdout"].strip() for i in range(4)]
    assert urls == [
        "https://a.eu/v1-1",
        "https://a.eu/v1-3",
        "https://b.eu/v1-1",
        "https://b.eu/v1-3",
    ]
    assert steps["cells[2].deploy.build"]["parent"] == "cells[2].deploy"


def test_recursion_ends_at_its_when_and_skips_the_rest(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "recurse.yaml", "-i", "n=2")
    assert code == 0, out
    assert steps["down"]["output"] == {"depth": 1}
    assert steps["down.down.down"]["status"] == "skipped"
    assert "when is false" in steps["down.down.down"]["skipped_reason"]
    assert steps["down.down.down.down"]["status"] == "skipped"  # inside the skipped call


def test_recursion_past_the_depth_limit_fails_clearly(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "recurse.yaml", "-i", "n=20")
    assert code == 1, out
    assert "sub-workflow calls nest deeper than 8 levels (./recurse.yaml)" in out
    assert steps["down"]["status"] == "failed"


def test_the_langgraph_engine_runs_a_call_too(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "release.yaml", "--engine", "langgraph")
    assert code == 0, out
    assert steps["announce"]["output"]["stdout"] == "released https://prod.eu/v1-2\n"
    assert steps["deploy.build"]["parent"] == "deploy"


def test_the_sub_workflow_examples_run_green_through_the_cli(tmp_path: Path) -> None:
    examples = Path(__file__).parents[2] / "workflows"
    for name in ("release-matrix.yaml", "ingest-sources.yaml"):
        res = cli(["run", str(examples / name), "--no-live", "--report", f"{name}.json"], tmp_path)
        assert res.returncode == 0, (name, res.stdout, res.stderr)
    release = load_report(tmp_path / "release-matrix.yaml.json")["steps"]
    assert release["publish"]["output"]["stdout"].split()[1:] == [
        f"wfctl-demo-1.0.0-{os}-py{py}.whl" for os in ("linux", "macos") for py in ("3.11", "3.12")
    ]
    assert release["notify_failure"]["status"] == "skipped"
    assert release["build[3].cell.clean_workspace"]["status"] == "completed"  # child's on_exit
    ingest = load_report(tmp_path / "ingest-sources.yaml.json")["steps"]
    assert ingest["merge"]["output"]["stdout"] == "merged 1060 rows\n"
    assert ingest["sources[2].ingest"]["output"] == {"table": "analytics.events", "rows": 900}


def test_graph_draws_a_call_as_a_box_around_the_childs_steps(tmp_path: Path) -> None:
    shutil.copytree(DATA, tmp_path, dirs_exist_ok=True)
    mermaid = cli(["graph", "release.yaml", "-f", "mermaid"], tmp_path).stdout.splitlines()
    start = mermaid.index('  subgraph s4["deploy (uses ./lib/deploy.yaml)"]')
    inside = mermaid[start + 1 : mermaid.index("  end", start)]
    assert '    s1["deploy.build<br/>shell"]' in inside and "    s1 --> s2" in inside
    dot = cli(["graph", "release.yaml", "-f", "dot"], tmp_path).stdout
    cluster = dot.split('subgraph "cluster_deploy" {', 1)[1].split("\n  }", 1)[0]
    assert 'label="deploy (uses ./lib/deploy.yaml)";' in cluster
    assert '"deploy.build" -> "deploy.push";' in cluster
    assert 'lhead="cluster_deploy"' in dot  # prep's edge ends at the call's box


def test_the_calls_timeout_stops_the_child(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "timeout.yaml")
    assert code == 1, out
    assert steps["call"]["error"] == "sub-workflow timed out after 1s"
    assert steps["call"]["error_kind"] == "timeout"
    # The held child step was stopped with it (it would sleep 30 s), and nothing after ran.
    assert steps["call.gate"]["status"] == "failed"
    assert steps["call.gate"]["duration"] < 10
    assert steps["call.last"]["status"] != "completed"
    assert steps["never"]["status"] == "skipped"


def test_a_group_loop_inside_the_child_names_the_childs_own_steps(tmp_path: Path) -> None:
    code, out, steps = _run(tmp_path, "loop_call.yaml")
    assert code == 0, out
    assert steps["call"]["output"] == {"last": "got 10"}
    assert steps["call.each[0].call.b"]["output"]["stdout"] == "got 5\n"


def test_a_childs_on_exit_sees_the_childs_own_status_and_failures(tmp_path: Path) -> None:
    shutil.copytree(DATA.parent / "subflow_exit", tmp_path, dirs_exist_ok=True)
    for engine in ("events", "langgraph"):
        res = cli(["run", "parent.yaml", "--no-live", "--report", f"{engine}.json",
                   "--engine", engine], tmp_path)  # fmt: skip
        assert res.returncode == 0, (engine, res.stdout, res.stderr)
        steps = load_report(tmp_path / f"{engine}.json")["steps"]
        assert steps["call"]["status"] == "failed"  # the caller went on (continue_on_failure)
        # The child's hook: the child failed, by its own step `bad` (its own id).
        assert steps["call.report"]["status"] == "completed", (engine, steps["call.report"])
        assert steps["call.report"]["output"]["stdout"] == "child status=failed failed=bad\n"
        # The run's own hook: the run completed; its failures name the inlined ids.
        assert steps["summary"]["output"]["stdout"] == (
            "parent status=completed failed=call.bad,call\n"
        )
