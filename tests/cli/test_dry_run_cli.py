"""`wfctl run --dry-run`: the plan as text or JSON, nothing run, and the checks a run makes
before it starts (secrets) made too."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_helpers import DATA, ROOT, clean_env, wfctl

TOOLS = DATA.parent / "dry_run" / "tools.yaml"


def test_dry_run_json_is_the_plan_as_data(tmp_path: Path) -> None:
    shutil.copy(ROOT / "workflows" / "release.yaml", tmp_path)
    run = wfctl(["run", "release.yaml", "--dry-run", "--json"], tmp_path)
    assert run.rc == 0, run
    plan = json.loads(run.stdout)
    steps = {s["step_id"]: s for s in plan["steps"]}
    assert plan["workflow"]["id"] == "release"
    assert {"build", "checks", "unit", "deploy", "smoke_test"} <= set(steps)
    # Waves respect dependencies within a container; children name their container.
    for step in steps.values():
        for dep in step["after"]:
            if steps.get(dep, {}).get("container") == step["container"]:
                assert steps[dep]["wave"] < step["wave"], (dep, step["step_id"])
    assert steps["unit"]["container"] == "checks"
    assert steps["health_check"]["when"] == "inputs.health_url | length > 0"
    assert plan["handlers"] == ["undeploy"]
    assert not (tmp_path / ".wfctl").exists(), "a dry run writes nothing"


def test_react_tool_steps_are_tools_not_handlers(tmp_path: Path) -> None:
    shutil.copy(TOOLS, tmp_path)
    env = clean_env(DRY_RUN_TOKEN="x")
    text = wfctl(["run", "tools.yaml", "--dry-run"], tmp_path, env=env)
    assert text.rc == 0, text
    assert "handlers (run on failure/rollback): page\n" in text.stdout
    assert "react tools (run when a model calls them): lookup_tool\n" in text.stdout
    assert "on_exit (run last, in order, whatever the outcome): bye" in text.stdout
    data = json.loads(wfctl(["run", "tools.yaml", "--dry-run", "--json"], tmp_path, env=env).stdout)
    assert (data["handlers"], data["tools"], data["on_exit"]) == (
        ["page"],
        ["lookup_tool"],
        ["bye"],
    )


def test_dry_run_checks_the_secrets_a_run_needs(tmp_path: Path) -> None:
    shutil.copy(TOOLS, tmp_path)
    run = wfctl(["run", "tools.yaml", "--dry-run"], tmp_path)
    assert run.rc == 2, run
    assert "missing secret environment variable DRY_RUN_TOKEN" in run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
