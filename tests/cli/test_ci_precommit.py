"""The `wfctl-validate` pre-commit hook, run by the real pre-commit.

The README's `.pre-commit-config.yaml` snippet is used as written, pointed at a git clone
of this checkout's committed state (`repo:` + `rev:` reads `.pre-commit-hooks.yaml` from
that commit, as it will for users; `repo: local` would bypass the hook file, and
`try-repo` would pick up uncommitted edits). The hook installs what it declares into its
own environment (from the package index pip is configured with), so this test needs one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest
import yaml
from cli_helpers import EXAMPLES, ROOT
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

INVALID = ROOT / "tests" / "data" / "invalid"
REQUIREMENTS = ROOT / "requirements-validate.txt"
# What `wfctl validate` never needs: the engine's dependencies (tests/cli/test_validate_cli.py
# checks it imports none of them).
ENGINE_ONLY = {"anyio", "langgraph", "langgraph-checkpoint-sqlite", "httpx", "prometheus-client"}
PRE_COMMIT = shutil.which("pre-commit") or str(Path(sys.executable).parent / "pre-commit")


def readme_snippet() -> dict[str, object]:
    """The README's pre-commit config snippet (the YAML block with `repos:`)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = readme[readme.index("\n## CI\n") :]
    ci = ci[: ci.index("\n## ", 1)]
    blocks = re.findall(r"```yaml\n(.*?)```", ci, re.DOTALL)
    [config] = [yaml.safe_load(b) for b in blocks if b.startswith("repos:")]
    assert isinstance(config, dict)
    return config


def requirement_lines() -> list[Requirement]:
    lines = REQUIREMENTS.read_text(encoding="utf-8").splitlines()
    return [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]


def closure(roots: set[str]) -> set[str]:
    """`roots` and everything they depend on (installed metadata, markers evaluated)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        for text in distribution(name).requires or []:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def test_the_hook_file_declares_the_validate_hook() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    assert hook["id"] == "wfctl-validate"
    assert hook["entry"] == "wfctl validate" and hook["language"] == "python"
    files = re.compile(hook["files"])
    assert files.search("workflows/release.yaml") and files.search("ci/workflows/a.yml")
    assert not files.search(".github/workflows.txt") and not files.search("config.yaml")
    assert hook["additional_dependencies"] == ["--no-deps", "-r", REQUIREMENTS.name]
    [repo] = readme_snippet()["repos"]  # type: ignore[index]
    assert [h["id"] for h in repo["hooks"]] == ["wfctl-validate"]


def test_the_validate_requirements_are_the_closure_of_the_light_dependencies() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {canonicalize_name(Requirement(r).name): Requirement(r) for r in project["dependencies"]}
    listed = {canonicalize_name(r.name): r for r in requirement_lines()}
    light = {name for name in core if name not in ENGINE_ONLY}
    # A new core dependency must be sorted into "validate needs it" or ENGINE_ONLY.
    assert light | ENGINE_ONLY == set(core), set(core) - light - ENGINE_ONLY
    # rich is used by validate's styled output; typer pulls it in too.
    assert closure(light | {"rich"}) == set(listed)
    for name in light:
        assert str(listed[name].specifier) == str(core[name].specifier), name


def git(*args: str, cwd: Path) -> str:
    env = dict(os.environ, GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1")
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def pre_commit(args: list[str], cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PRE_COMMIT", "VIRTUAL"))}
    env.update(PRE_COMMIT_HOME=str(home), GIT_CONFIG_GLOBAL=os.devnull, NO_COLOR="1")
    env.pop("PYTHONPATH", None)  # the hook must run what it installed, not this checkout
    return subprocess.run(
        [PRE_COMMIT, *args, "--color", "never"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a user's repository using the README's config, PRE_COMMIT_HOME after the install)."""
    if not Path(PRE_COMMIT).exists() or shutil.which("git") is None:
        pytest.skip("needs pre-commit (the test extra) and git")
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout of wfctl to clone the hook from")
    base = tmp_path_factory.mktemp("pre-commit")
    hook_repo = base / "wfctl"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(hook_repo)], check=True)
    rev = git("rev-parse", "HEAD", cwd=hook_repo)
    user = base / "user"
    (user / "workflows").mkdir(parents=True)
    (user / "config").mkdir()
    shutil.copy(EXAMPLES / "release.yaml", user / "workflows" / "release.yaml")
    shutil.copy(INVALID / "schema_misspelt_dependencies.yaml", user / "workflows" / "bad.yaml")
    # Not a workflow (outside workflows/): the hook must leave it alone.
    (user / "config" / "settings.yaml").write_text("colour: blue\n", encoding="utf-8")
    config = readme_snippet()
    config["repos"][0].update(repo=str(hook_repo), rev=rev)  # type: ignore[index]
    (user / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    git("init", "-q", cwd=user)
    git("add", "-A", cwd=user)
    home = base / "home"
    installed = pre_commit(["install-hooks"], user, home)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return user, home


def test_a_valid_workflow_passes_and_other_yaml_is_not_checked(
    scratch: tuple[Path, Path],
) -> None:
    user, home = scratch
    run = pre_commit(
        ["run", "--files", "workflows/release.yaml", "config/settings.yaml"], user, home
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert re.search(r"^wfctl validate\.+Passed$", run.stdout, re.MULTILINE), run.stdout


def test_an_invalid_workflow_fails_with_file_line_and_column(scratch: tuple[Path, Path]) -> None:
    user, home = scratch
    run = pre_commit(["run", "--all-files"], user, home)
    assert run.returncode == 1, run.stdout + run.stderr
    assert re.search(r"^wfctl validate\.+Failed$", run.stdout, re.MULTILINE), run.stdout
    assert "- exit code: 2" in run.stdout
    assert (
        "workflows/bad.yaml:9:5 steps[1].dependancies: unknown key 'dependancies' (schema)"
        in run.stdout
    ), run.stdout
    assert "settings.yaml" not in run.stdout and "Traceback" not in run.stdout


def test_the_hook_environment_has_no_engine_dependencies(scratch: tuple[Path, Path]) -> None:
    _, home = scratch
    [python] = home.glob("repo*/py_env-*/bin/python")
    listed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    names = {canonicalize_name(line.split("==")[0]) for line in listed.splitlines()}
    expected = {canonicalize_name(r.name) for r in requirement_lines()} | {"wfctl"}
    assert expected <= names and not names & ENGINE_ONLY, names
    # Nothing validation needs is missing: pip check only misses the engine's packages.
    check = subprocess.run(
        [str(python), "-m", "pip", "check"], capture_output=True, text=True, check=False
    )
    missing = set(re.findall(r"requires (\S+), which is not installed", check.stdout))
    assert {canonicalize_name(m) for m in missing} <= ENGINE_ONLY, check.stdout
    assert "has requirement" not in check.stdout, check.stdout  # versions all agree
    assert textwrap.dedent(check.stdout).count("wfctl") == len(missing)
