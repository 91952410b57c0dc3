"""`wfctl validate` end to end: the invalid corpus, the examples, every output format.

Each file under tests/data/invalid/ states what it must produce in `# expect: L:C fragment`
lines at its top (files that cannot hold a comment are listed in expectations.json). The
fragment must appear in the diagnostic printed at exactly `file:L:C` (its message, its
JSON path or its hint), and the file must produce exactly one diagnostic per expected
position: no duplicates, nothing extra.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from cli_helpers import ROOT, run_cli, run_subprocess

INVALID = ROOT / "tests" / "data" / "invalid"
WORKFLOWS = ROOT / "workflows"
CORPUS = sorted(INVALID.glob("*.yaml"))
SIDECAR: dict[str, list[str]] = json.loads((INVALID / "expectations.json").read_text("utf-8"))
EXPECT_RE = re.compile(r"^# expect: (\d+):(\d+) (.+)$", re.MULTILINE)
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
GITHUB_RE = re.compile(r"^::error file=[^,]+,line=\d+,col=\d+(,title=[^:]+)?::.+$")


@dataclass(frozen=True)
class Expectation:
    line: int
    col: int
    fragment: str


def expectations(path: Path) -> list[Expectation]:
    if path.name in SIDECAR:
        raw = SIDECAR[path.name]
        parsed = [re.match(r"^(\d+):(\d+) (.+)$", item) for item in raw]
        return [Expectation(int(m[1]), int(m[2]), m[3]) for m in parsed if m]
    text = path.read_bytes().decode("utf-8", errors="replace")
    return [Expectation(int(m[1]), int(m[2]), m[3].strip()) for m in EXPECT_RE.finditer(text)]


def text_blocks(output: str) -> dict[str, str]:
    """`file:line:col` -> the diagnostic's line plus its hint line(s), from text output."""
    blocks: dict[str, str] = {}
    current: str | None = None
    for line in output.splitlines():
        match = re.match(r"^(\S+:\d+:\d+) ", line)
        if match:
            current = match[1]
            blocks[current] = blocks.get(current, "") + line + "\n"
        elif current is not None and line.startswith("    "):
            blocks[current] += line + "\n"
        else:
            current = None
    return blocks


def test_corpus_is_big_enough_and_every_file_states_its_expectation() -> None:
    assert len(CORPUS) >= 35
    for path in CORPUS:
        assert expectations(path), f"{path.name} has no `# expect:` line and no sidecar entry"


@pytest.mark.parametrize("path", CORPUS, ids=[p.name for p in CORPUS])
def test_invalid_file_reports_expected_problems(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rel = os.path.relpath(path, ROOT)
    code, out, err = run_cli(["validate", str(path)], capsys)
    assert code == 2, out + err
    assert "Traceback" not in out + err
    blocks = text_blocks(out)
    for exp in expectations(path):
        where = f"{path}:{exp.line}:{exp.col}"
        assert where in blocks, f"{rel}: nothing reported at {exp.line}:{exp.col}:\n{out}"
        assert exp.fragment in blocks[where], (
            f"{rel}:{exp.line}:{exp.col}: {exp.fragment!r} not in:\n{blocks[where]}"
        )
    # Exactly one diagnostic per expected position: no duplicates, nothing unexpected.
    code, out, _ = run_cli(["validate", "--format", "json", str(path)], capsys)
    diagnostics = json.loads(out)["files"][0]["diagnostics"]
    positions = {(e.line, e.col) for e in expectations(path)}
    got = [(d["line"], d["col"], d["message"]) for d in diagnostics]
    assert len(diagnostics) == len(positions), f"{rel}: {got}"


@pytest.mark.parametrize(
    "name",
    ["loader_non_utf8.yaml", "schema_max_attempts_zero.yaml", "semantic_cycle.yaml"],
)
def test_real_process_reports_invalid_files(name: str) -> None:
    path = INVALID / name
    result = run_subprocess(["validate", str(path.relative_to(ROOT))])
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    for exp in expectations(path):
        assert f"tests/data/invalid/{name}:{exp.line}:{exp.col} " in result.stdout
        assert exp.fragment in result.stdout


def test_issue_example_line_format() -> None:
    result = run_subprocess(["validate", "tests/data/invalid/schema_max_attempts_zero.yaml"])
    assert (
        "tests/data/invalid/schema_max_attempts_zero.yaml:13:34 "
        "steps[2].retry_policy.max_attempts: must be >= 1 (got 0)"
    ) in result.stdout.splitlines()[0]


def test_examples_are_valid() -> None:
    result = run_subprocess(["validate", "workflows/"])
    assert result.returncode == 0, result.stdout + result.stderr
    count = len(list(WORKFLOWS.glob("*.y*ml")))
    assert result.stdout.strip().splitlines()[-1] == f"{count} files valid"


def test_directory_with_valid_and_invalid_files_reports_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    invalid = ["mixed_several_problems.yaml", "loader_yaml11_bool.yaml", "semantic_cycle.yaml"]
    shutil.copy(WORKFLOWS / "release.yaml", tmp_path / "release.yaml")
    nested = tmp_path / "nested"
    nested.mkdir()
    shutil.copy(WORKFLOWS / "agents.yaml", nested / "agents.yml")
    for name in invalid:
        shutil.copy(INVALID / name, nested / name)
    hidden = tmp_path / ".hidden"
    hidden.mkdir()
    shutil.copy(INVALID / "loader_empty.yaml", hidden / "ignored.yaml")
    (tmp_path / "notes.txt").write_text("not a workflow", "utf-8")

    code, out, err = run_cli(["validate", str(tmp_path)], capsys)
    assert code == 2, out + err
    expected = 0
    for name in invalid:
        for exp in expectations(INVALID / name):
            assert f"{nested / name}:{exp.line}:{exp.col} " in out
        expected += len({(e.line, e.col) for e in expectations(INVALID / name)})
    assert "release.yaml" not in out and "agents.yml" not in out
    assert "ignored.yaml" not in out
    assert out.strip().splitlines()[-1] == f"3 of 5 files invalid, {expected} problems"


def test_several_paths_in_one_call_and_a_file_named_twice(
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = INVALID / "semantic_self_dependency.yaml"
    code, out, _ = run_cli(
        ["validate", str(WORKFLOWS), str(bad), str(bad), str(WORKFLOWS / "release.yaml")], capsys
    )
    assert code == 2
    assert out.count("cannot depend on itself") == 1
    count = len(list(WORKFLOWS.glob("*.yaml")))
    assert out.strip().splitlines()[-1] == f"1 of {count + 1} files invalid, 1 problem"


def test_json_format(capsys: pytest.CaptureFixture[str]) -> None:
    bad = INVALID / "mixed_several_problems.yaml"
    code, out, _ = run_cli(
        ["validate", "--format", "json", str(WORKFLOWS / "release.yaml"), str(bad)], capsys
    )
    assert code == 2
    doc = json.loads(out)
    assert doc["valid"] is False
    assert doc["summary"] == {"files": 2, "invalid": 1, "problems": 4}
    by_file = {f["file"]: f for f in doc["files"]}
    assert by_file[str(WORKFLOWS / "release.yaml")] == {
        "file": str(WORKFLOWS / "release.yaml"),
        "valid": True,
        "diagnostics": [],
    }
    diagnostics = by_file[str(bad)]["diagnostics"]
    assert [(d["line"], d["col"]) for d in diagnostics] == [(8, 5), (12, 20), (13, 34), (17, 11)]
    first = diagnostics[0]
    assert first["path"] == "steps[0].dependancies"
    assert first["message"] == "unknown key 'dependancies'"
    assert first["hint"] == "did you mean 'dependencies'?"
    assert first["severity"] == "error"
    assert set(first) == {"file", "line", "col", "code", "severity", "path", "message", "hint"}


def test_json_format_when_everything_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["validate", "-f", "json", str(WORKFLOWS)], capsys)
    assert code == 0
    doc = json.loads(out)
    assert doc["valid"] is True
    assert doc["summary"]["problems"] == 0


def test_github_format(capsys: pytest.CaptureFixture[str]) -> None:
    files = [str(p) for p in CORPUS]
    code, out, _ = run_cli(["validate", "--format", "github", *files], capsys)
    assert code == 2
    lines = out.splitlines()
    assert len(lines) >= len(CORPUS)
    for line in lines:
        assert GITHUB_RE.match(line), line
    # Every corpus file is annotated, and a `:`/`,` in a file name cannot break the syntax.
    for path in CORPUS:
        assert any(line.startswith(f"::error file={path},") for line in lines), path


def test_github_format_escapes_properties(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    odd = tmp_path / "a,b:c.yaml"
    shutil.copy(INVALID / "semantic_cycle.yaml", odd)
    code, out, _ = run_cli(["validate", "--format", "github", str(odd)], capsys)
    assert code == 2
    line = out.splitlines()[0]
    assert GITHUB_RE.match(line), line
    assert "a%2Cb%3Ac.yaml,line=5,col=14" in line
    assert line.endswith(
        "::steps[0].step_id: dependency cycle: a -> b -> c -> a (remove one of these dependencies)"
    )


def test_piped_output_has_no_ansi_escapes() -> None:
    result = run_subprocess(["validate", "tests/data/invalid/", "workflows/"])
    assert result.returncode == 2
    assert not ANSI_RE.search(result.stdout + result.stderr)


def _run_in_pty(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run `python -m wfctl ARGS` with a terminal as stdout; (exit code, output)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "wfctl", *args],
            stdout=slave,
            stderr=slave,
            stdin=subprocess.DEVNULL,
            cwd=ROOT,
            env=env,
        )
    finally:
        os.close(slave)
    chunks: list[bytes] = []
    try:
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            if not ready:
                break
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
    code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


def _terminal_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "FORCE_COLOR", "TERM")}
    env.update(TERM="xterm-256color", COLUMNS="200", **extra)
    return env


def test_terminal_output_is_styled_unless_no_color() -> None:
    args = ["validate", "tests/data/invalid/schema_max_attempts_zero.yaml"]
    code, styled = _run_in_pty(args, _terminal_env())
    assert code == 2
    assert ANSI_RE.search(styled), styled  # on a terminal: Rich styles
    assert "must be >= 1 (got 0)" in ANSI_RE.sub("", styled)

    code, plain = _run_in_pty(args, _terminal_env(NO_COLOR="1"))
    assert code == 2
    assert not ANSI_RE.search(plain), plain
    assert "schema_max_attempts_zero.yaml:13:34 steps[2].retry_policy.max_attempts" in plain


def test_nonexistent_path(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["validate", "does/not/exist.yaml", str(WORKFLOWS)], capsys)
    assert code == 2
    assert "does/not/exist.yaml:1:1 no such file or directory" in out
    assert "Traceback" not in out + err
    result = run_subprocess(["validate", "nope.yaml"])
    assert result.returncode == 2
    assert "nope.yaml:1:1 no such file or directory" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_directory_without_workflows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["validate", str(tmp_path)], capsys)
    assert code == 2
    assert "no *.yaml or *.yml files in this directory" in out


def test_relative_parent_directory(capsys: pytest.CaptureFixture[str]) -> None:
    # `..` starts with a dot but is not a hidden directory.
    result = run_subprocess(["validate", "../workflows"], cwd=ROOT / "tests")
    assert result.returncode == 0, result.stdout
    assert "files valid" in result.stdout


def test_file_over_the_size_limit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from wfctl.document.loader import MAX_FILE_BYTES

    big = tmp_path / "big.yaml"
    body = "workflow_id: big\nname: Big\nsteps:\n  - {step_id: a, action: noop}\n"
    big.write_text(body + "#" * (MAX_FILE_BYTES + 1 - len(body)) + "\n", "utf-8")
    code, out, err = run_cli(["validate", str(big)], capsys)
    assert code == 2
    assert f"{big}:1:1 file is" in out and "the limit is" in out
    assert "Traceback" not in out + err


def test_validate_stays_light() -> None:
    """validate must not import LangGraph, the engine, an action backend or pydantic (which
    typer >= 0.29 would import for every command: +120 ms on the CI gate)."""
    code = (
        "import sys\n"
        "from wfctl.cli import main\n"
        "try:\n"
        "    main(['validate', 'workflows/', 'tests/data/invalid/semantic_cycle.yaml'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 2, exc.code\n"
        "heavy = sorted(m for m in sys.modules if m.startswith(('langgraph', 'wfctl.engine',\n"
        "    'httpx', 'anyio', 'wfctl.actions.shell', 'wfctl.actions.http',\n"
        "    'wfctl.actions.react',\n"
        "    'langchain', 'openai', 'pydantic', 'ray')))\n"
        "assert not heavy, heavy\n"
        "assert 'wfctl.validate.semantic' in sys.modules\n"
        "assert 'wfctl.validate.schema_messages' in sys.modules\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "dependency cycle" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [(["validate"], "Missing argument"), (["validate", "-f", "xml", "workflows"], "xml")],
)
def test_usage_errors_exit_2(args: list[str], message: str) -> None:
    result = run_subprocess(args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "internal error" not in result.stderr
