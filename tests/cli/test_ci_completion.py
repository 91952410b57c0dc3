"""Shell completion: `wfctl --show-completion/--install-completion`, and run ids and step
ids completed from the journal for `resume`, `approve` and `show`, through real bash.

The journal is made by real runs (one waiting for approval, one failed, one completed);
bash sources the script wfctl prints and calls its completion function, which runs
`wfctl` (a shim on PATH for this tree) the way a Tab press does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import DATA, clean_env, wfctl, wfctl_many

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


@pytest.fixture(scope="module")
def journal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """`{"dir": state dir, "waiting"|"failed"|"completed": run id}`."""
    base = tmp_path_factory.mktemp("completion")
    state = base / "state"
    for name in ("approval.yaml", "fail.yaml"):
        shutil.copy(DATA / name, base / name)
    specs = {
        "waiting": (["run", "approval.yaml", "--no-input", "--state-dir", str(state)], base),
        "failed": (["run", "fail.yaml", "--state-dir", str(state)], base),
        "completed": (
            ["run", "approval.yaml", "--approve", "gate", "--state-dir", str(state)],
            base,
        ),
    }
    for name, run in wfctl_many(specs).items():
        assert run.rc == {"waiting": 4, "failed": 1, "completed": 0}[name], run
    listed = wfctl(["runs", "--json", "--state-dir", str(state)], base)
    by_status = {r["status"]: r["run_id"] for r in json.loads(listed.stdout)}
    return {
        "dir": str(state),
        "waiting": by_status["waiting_approval"],
        "failed": by_status["failed"],
        "completed": by_status["completed"],
    }


def shim(tmp_path: Path) -> dict[str, str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "wfctl"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m wfctl "$@"\n', encoding="utf-8")
    script.chmod(0o755)
    return clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", HOME=str(tmp_path))


def complete(words: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """What bash offers after `words` (the last one is being typed), via wfctl's script."""
    array = " ".join(f"'{w}'" for w in words)
    program = (
        'eval "$(wfctl --show-completion bash)"\n'
        f"COMP_WORDS=({array}); COMP_CWORD={len(words) - 1}\n"
        "_wfctl_completion wfctl\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    proc = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", program],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0 and proc.stderr == "", proc
    return [line for line in proc.stdout.splitlines() if line]


def test_commands_complete(tmp_path: Path) -> None:
    assert complete(["wfctl", "re"], tmp_path, shim(tmp_path)) == ["report", "resume"]


def test_show_offers_every_run_newest_first(journal: dict[str, str], tmp_path: Path) -> None:
    env = shim(tmp_path) | {"WFCTL_HOME": journal["dir"]}
    offered = complete(["wfctl", "show", ""], tmp_path, env)
    assert sorted(offered) == sorted(journal[k] for k in ("waiting", "failed", "completed"))


def test_resume_offers_only_runs_that_can_go_on(journal: dict[str, str], tmp_path: Path) -> None:
    env = shim(tmp_path) | {"WFCTL_HOME": journal["dir"]}
    assert complete(["wfctl", "resume", ""], tmp_path, env) == [journal["waiting"]]


def test_approve_offers_waiting_runs_then_their_waiting_steps(
    journal: dict[str, str], tmp_path: Path
) -> None:
    env = shim(tmp_path) | {"WFCTL_HOME": journal["dir"]}
    waiting = journal["waiting"]
    assert complete(["wfctl", "approve", waiting[:12]], tmp_path, env) == [waiting]
    assert complete(["wfctl", "approve", waiting, ""], tmp_path, env) == ["gate"]
    assert complete(["wfctl", "approve", waiting, "x"], tmp_path, env) == []
    # A unique prefix of the run id works for the step too, as it does for approve itself.
    assert complete(["wfctl", "approve", waiting[:-3], "g"], tmp_path, env) == ["gate"]


def test_state_dir_option_is_read(journal: dict[str, str], tmp_path: Path) -> None:
    env = shim(tmp_path)
    words = ["wfctl", "show", "--state-dir", journal["dir"], ""]
    assert journal["failed"] in complete(words, tmp_path, env)


def test_no_journal_offers_nothing_and_creates_nothing(tmp_path: Path) -> None:
    env = shim(tmp_path)
    assert complete(["wfctl", "resume", ""], tmp_path, env) == []
    assert not (tmp_path / ".wfctl").exists()


def test_install_completion_for_bash(tmp_path: Path) -> None:
    env = shim(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", "--install-completion", "bash"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc
    rc = (tmp_path / ".bashrc").read_text(encoding="utf-8")
    [script] = (tmp_path / ".bash_completions").glob("wfctl*")
    assert str(script.name) in rc
    assert "_WFCTL_COMPLETE=complete_bash" in script.read_text(encoding="utf-8")
