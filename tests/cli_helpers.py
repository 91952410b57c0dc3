"""Helpers shared by every CLI test: a clean environment, workspaces of fixture workflows,
`wfctl` as a real subprocess (one, or many started at once), `wfctl` in this process, and
the report schema check.

A subprocess gets the environment of a user's shell (no CI, colour, debug, state or
terminal-size settings leaking in from the test runner) with this checkout first on
PYTHONPATH, and stdin from /dev/null (no terminal).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "run"
EXAMPLES = ROOT / "workflows"
RUN_TIMEOUT = 60.0
ANSI = re.compile(r"\x1b\[")
# Settings of the test runner's environment that would change what wfctl prints.
CLEARED = ("CI", "NO_COLOR", "FORCE_COLOR", "WFCTL_HOME", "WFCTL_DEBUG", "COLUMNS", "LINES")


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no CI / colour / debug settings leaking in."""
    env = dict(os.environ)
    for var in CLEARED:
        env.pop(var, None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def workspace(base: Path, *files: str) -> Path:
    """`base` created with copies of fixture workflows (tests/data/run/ first, then workflows/)."""
    base.mkdir(parents=True, exist_ok=True)
    for name in files:
        src = DATA / name if (DATA / name).exists() else EXAMPLES / name
        shutil.copy(src, base / name)
    return base


@functools.cache
def report_validator() -> Draft202012Validator:
    """The validator of schemas/report.schema.json, formats checked."""
    schema = json.loads((ROOT / "schemas" / "report.schema.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)


def assert_valid_report(data: dict[str, Any], what: str = "report") -> None:
    """Fail listing every place `data` does not match the report schema."""
    errors = sorted(report_validator().iter_errors(data), key=lambda e: list(e.absolute_path))
    assert not errors, f"{what} does not match schemas/report.schema.json:\n" + "\n".join(
        f"  {'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors
    )


def load_report(path: Path) -> dict[str, Any]:
    """A report file, checked against the report schema."""
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    assert_valid_report(data, str(path))
    return data


def parse_utc(text: str) -> datetime:
    """An ISO 8601 UTC timestamp as the report writes it (`...Z`)."""
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", text), f"not ISO UTC: {text!r}"
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    offset = parsed.utcoffset()
    assert offset is not None and offset.total_seconds() == 0
    return parsed


@dataclass
class Run:
    """A finished `wfctl` subprocess; `began`/`finished` bracket it in wall-clock time."""

    args: list[str]
    cwd: Path
    rc: int
    stdout: str
    stderr: str
    began: float = 0.0
    finished: float = 0.0

    def report(self, name: str = "report.json") -> dict[str, Any]:
        """The report the run wrote to `name` in its directory, schema-checked."""
        return load_report(self.cwd / name)

    def __str__(self) -> str:
        return (
            f"wfctl {' '.join(self.args)} -> {self.rc}\n"
            f"--- stdout\n{self.stdout}--- stderr\n{self.stderr}"
        )


def _popen(args: list[str], cwd: Path, env: dict[str, str] | None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wfctl", *args],
        cwd=cwd,
        env=env or clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wfctl(
    args: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = RUN_TIMEOUT
) -> Run:
    """`python -m wfctl ARGS` in `cwd`, to its end."""
    began = time.time()
    proc = subprocess.run(
        [sys.executable, "-m", "wfctl", *args],
        cwd=cwd,
        env=env or clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return Run(args, cwd, proc.returncode, proc.stdout, proc.stderr, began, time.time())


def wfctl_many(
    specs: dict[str, tuple[list[str], Path]], timeout: float = RUN_TIMEOUT
) -> dict[str, Run]:
    """Start every `wfctl` at once, then collect them: the suite stays fast."""
    began = time.time()
    procs = {name: _popen(args, cwd, None) for name, (args, cwd) in specs.items()}
    results: dict[str, Run] = {}
    try:
        for name, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            args, cwd = specs[name]
            results[name] = Run(args, cwd, proc.returncode, out, err, began, time.time())
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def run_subprocess(
    args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m wfctl ARGS` with the test runner's environment (or `env`)."""
    return subprocess.run(
        [sys.executable, "-m", "wfctl", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=timeout,
        check=False,
    )


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """`wfctl.cli.main(args)` in-process: (exit code, stdout, stderr)."""
    from wfctl.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(args)
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 0), out, err


def cli(args: Iterable[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`wfctl ARGS` in this process (cwd and environment as for a subprocess, restored
    afterwards): for the steps of a test that need not be a separate process."""
    from wfctl.cli import main

    argv = list(args)
    saved_env = {var: os.environ.pop(var) for var in CLEARED if var in os.environ}
    saved_env.update({var: os.environ[var] for var in env if var in os.environ})
    added = [var for var in env if var not in os.environ and var not in saved_env]
    os.environ.update(env)
    saved_cwd = Path.cwd()
    out, err = io.StringIO(), io.StringIO()
    code: Any = 0
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(argv)
            except SystemExit as exc:
                code = exc.code
    finally:
        os.chdir(saved_cwd)
        for var in added:
            os.environ.pop(var, None)
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(argv, int(code or 0), out.getvalue(), err.getvalue())


def run_in_copy(
    data: Path, tmp_path: Path, workflow: str, *args: str
) -> tuple[int, str, dict[str, Any]]:
    """`wfctl run WORKFLOW ARGS` (no live table) in a copy of the fixture directory `data`
    (plus an empty markers/): (exit code, its output, the report's steps)."""
    shutil.copytree(data, tmp_path, dirs_exist_ok=True)
    (tmp_path / "markers").mkdir(exist_ok=True)
    res = cli(["run", workflow, "--no-live", "--report", "r.json", *args], tmp_path)
    assert "Traceback" not in res.stderr
    return res.returncode, res.stdout + res.stderr, load_report(tmp_path / "r.json")["steps"]
