"""The README's CI snippets do what they say: every `wfctl` command of the GitHub Actions
and GitLab snippets is run as written (through `sh`, as those runners do) in a checkout
holding the example workflows, and the files the CI services then read are checked:
the SARIF log against the SARIF 2.1.0 schema, the JUnit files against the Jenkins XSD,
the report against the report schema. (The pre-commit snippet: test_ci_precommit.py.)"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from ci_schemas import assert_valid_junit, assert_valid_sarif
from cli_helpers import EXAMPLES, ROOT, clean_env, load_report


def ci_blocks() -> list[dict[str, Any]]:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = readme[readme.index("\n## CI\n") :]
    ci = ci[: ci.index("\n## ", 1)]
    return [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", ci, re.DOTALL)]


def github_commands() -> list[str]:
    [block] = [b for b in ci_blocks() if "jobs" in b]
    [job] = block["jobs"].values()
    return [step["run"] for step in job["steps"] if "run" in step]


def gitlab_commands() -> list[str]:
    [block] = [b for b in ci_blocks() if "wfctl" in b and "script" in b["wfctl"]]
    commands: list[str] = block["wfctl"]["script"]
    return commands


def checkout(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A checkout with the example workflows, and an environment with `wfctl` on PATH
    (a shim running this tree's wfctl with the test's Python) and CI set."""
    work = tmp_path / "repo"
    shutil.copytree(EXAMPLES, work / "workflows")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "wfctl"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m wfctl "$@"\n', encoding="utf-8")
    shim.chmod(0o755)
    env = clean_env(CI="true", PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return work, env


def run_snippet(commands: list[str], work: Path, env: dict[str, str]) -> list[str]:
    """Run each `wfctl` command with sh; the commands run (installing is left out)."""
    ran = []
    for command in commands:
        if not command.startswith("wfctl "):
            assert command.startswith("pip install"), command  # only installing is skipped
            continue
        proc = subprocess.run(
            ["sh", "-c", command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{command} -> {proc.returncode}\n{proc.stdout}{proc.stderr}"
        ran.append(command)
    return ran


def test_github_actions_snippet(tmp_path: Path) -> None:
    work, env = checkout(tmp_path)
    ran = run_snippet(github_commands(), work, env)
    assert len(ran) == 3
    assert_valid_sarif(json.loads((work / "wfctl.sarif").read_text(encoding="utf-8")))
    assert_valid_junit(work / "junit.xml")
    assert load_report(work / "report.json")["status"] == "completed"


def test_gitlab_snippet(tmp_path: Path) -> None:
    work, env = checkout(tmp_path)
    ran = run_snippet(gitlab_commands(), work, env)
    assert len(ran) == 2
    [block] = [b for b in ci_blocks() if "wfctl" in b and "script" in b["wfctl"]]
    artifacts = block["wfctl"]["artifacts"]
    for name in artifacts["reports"]["junit"]:
        assert_valid_junit(work / name)
    for name in artifacts["paths"]:
        assert (work / name).is_file(), name


@pytest.mark.parametrize("snippet", ["github", "gitlab"])
def test_snippets_fail_the_job_on_an_invalid_workflow(tmp_path: Path, snippet: str) -> None:
    work, env = checkout(tmp_path)
    (work / "workflows" / "broken.yaml").write_text(
        "workflow_id: broken\nname: Broken\nsteps:\n  - step_id: a\n    acton: noop\n",
        encoding="utf-8",
    )
    commands = github_commands() if snippet == "github" else gitlab_commands()
    validate = next(c for c in commands if c.startswith("wfctl validate"))
    proc = subprocess.run(
        ["sh", "-c", validate], cwd=work, env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2, proc
    assert "broken.yaml" in proc.stdout + proc.stderr
