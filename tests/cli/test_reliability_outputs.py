"""Output paths (issue 15 item 3), numbers JSON cannot hold (item 4) and a broken stdout
(item 6), through the real CLI."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import RUN_TIMEOUT, clean_env, load_report, wfctl

from wfctl.format.json_safe import json_problem, json_safe_copy
from wfctl.format.output_file import OutputPathError, output_problem, write_output

TWO_STEPS = """\
workflow_id: two
name: two
steps:
  - {step_id: a, action: shell, with: {command: "echo one; echo two"}}
  - {step_id: b, action: noop, dependencies: [a]}
"""


def _write(tmp_path: Path, text: str, name: str = "wf.yaml") -> Path:
    (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


# -- item 3: output paths ---------------------------------------------------------------


def test_a_symlinked_report_path_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    _write(tmp_path, TWO_STEPS)
    target = tmp_path / "precious.txt"
    target.write_text("keep me", encoding="utf-8")
    (tmp_path / "link.json").symlink_to(target)
    run = wfctl(["run", "wf.yaml", "--no-live", "--report", "link.json"], tmp_path)
    assert run.rc == 2, run
    assert "link.json is a symbolic link" in run.stderr
    assert "nothing was run" in run.stderr
    assert target.read_text(encoding="utf-8") == "keep me"
    assert (tmp_path / "link.json").is_symlink()


def test_a_fifo_junit_path_is_refused_before_anything_runs(tmp_path: Path) -> None:
    _write(tmp_path, TWO_STEPS)
    os.mkfifo(tmp_path / "pipe.xml")
    run = wfctl(["run", "wf.yaml", "--no-live", "--junit", "pipe.xml"], tmp_path)
    assert run.rc == 2, run
    assert "--junit pipe.xml is a FIFO" in run.stderr
    assert not (tmp_path / ".wfctl" / "reports").exists()


def _device(tmp_path: Path, name: str, minor: int) -> Path:
    """A private copy of a memory device (1, minor) in tmp_path: the test must never risk
    the machine's own /dev/null (today's main, as root, replaces it with a file)."""
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    node = tmp_path / name
    os.mknod(node, 0o666 | stat.S_IFCHR, os.makedev(1, minor))
    return node


def test_a_character_device_is_written_through_not_replaced(tmp_path: Path) -> None:
    null = _device(tmp_path, "null", 3)
    before = null.stat()
    _write(tmp_path, TWO_STEPS)
    run = wfctl(["run", "wf.yaml", "--no-live", "--report", "null", "--junit", "null"], tmp_path)
    assert run.rc == 0, run
    after = null.stat()
    assert stat.S_ISCHR(after.st_mode)
    assert (after.st_ino, after.st_rdev) == (before.st_ino, before.st_rdev)


def test_the_process_own_stdout_gets_the_report_through_a_pipe(tmp_path: Path) -> None:
    _write(tmp_path, TWO_STEPS)
    # /dev/fd/1 rather than /dev/stdout: where today's main renames over the path, this
    # one lives in /proc and cannot be replaced.
    run = wfctl(["run", "wf.yaml", "--quiet", "--report", "/dev/fd/1"], tmp_path)
    assert run.rc == 0, run
    report = json.loads(run.stdout[run.stdout.index("{") : run.stdout.rindex("}") + 1])
    assert report["status"] == "completed"


def test_dev_stdout_is_written_through(capfd: pytest.CaptureFixture[str]) -> None:
    write_output("/dev/stdout", "through\n")
    assert capfd.readouterr().out == "through\n"
    assert Path("/dev/stdout").is_symlink()


def test_a_full_device_is_one_clear_error_exit_2(tmp_path: Path) -> None:
    full = _device(tmp_path, "full", 7)
    _write(tmp_path, TWO_STEPS)
    run = wfctl(["run", "wf.yaml", "--no-live", "--report", "full"], tmp_path)
    assert run.rc == 2, run
    assert "cannot write full: No space left on device" in run.stderr
    assert "Traceback" not in run.stderr
    assert stat.S_ISCHR(full.stat().st_mode)


def test_a_report_replaces_a_regular_file_whole_keeping_its_mode(tmp_path: Path) -> None:
    old = tmp_path / "out.json"
    old.write_text("old", encoding="utf-8")
    old.chmod(0o640)
    write_output(old, '{"new": 1}\n')
    assert json.loads(old.read_text(encoding="utf-8")) == {"new": 1}
    assert stat.S_IMODE(old.stat().st_mode) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temp file left


def test_output_problem_names_each_refused_kind(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    assert output_problem(tmp_path / "d") == f"{tmp_path / 'd'} is a directory; give a file name"
    assert output_problem(tmp_path / "new" / "deeper.json") is None
    assert output_problem("/dev/stderr") is None
    with pytest.raises(OutputPathError, match="is a directory"):
        write_output(tmp_path / "d", "x")


# -- item 4: numbers JSON/SQLite cannot hold ---------------------------------------------


BIG_MAPPING = """\
workflow_id: big
name: big
steps:
  - step_id: a
    action: noop
    output_mapping: {n: "2**64"}
  - {step_id: b, action: noop, dependencies: [a]}
"""

INFINITE_OUTPUT = """\
workflow_id: inf
name: inf
steps:
  - step_id: a
    action: shell
    with: {command: "echo '{\\"x\\": 1e999}'"}
"""

BIG_SET = """\
workflow_id: bigset
name: bigset
steps:
  - {step_id: s, action: set, with: {values: {m: "{{ -(2**63) - 1 }}"}}}
"""


@pytest.mark.parametrize(
    ("text", "step", "message"),
    [
        (BIG_MAPPING, "a", "vars.n: 18446744073709551616 does not fit in 64 bits"),
        (INFINITE_OUTPUT, "a", "output.json.x: inf is not a finite number"),
        (BIG_SET, "s", "output.m: -9223372036854775809 does not fit in 64 bits"),
    ],
)
def test_a_number_json_cannot_hold_fails_its_step_with_a_valid_report(
    tmp_path: Path, text: str, step: str, message: str
) -> None:
    _write(tmp_path, text)
    run = wfctl(["run", "wf.yaml", "--no-live", "--report", "report.json"], tmp_path)
    assert run.rc == 1, run
    assert message in run.stdout
    # Strict JSON: no Infinity/NaN constants anywhere.
    text_report = (tmp_path / "report.json").read_text(encoding="utf-8")
    json.loads(text_report, parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))
    report = load_report(tmp_path / "report.json")
    assert report["steps"][step]["status"] == "failed"
    assert message in report["steps"][step]["error"]
    # The journal stays readable: show and resume answer instead of crashing.
    shown = wfctl(["show", report["execution_id"]], tmp_path)
    assert shown.rc == 0, shown
    resumed = wfctl(["resume", report["execution_id"], "--no-live"], tmp_path)
    assert resumed.rc == 1, resumed
    assert "Traceback" not in resumed.stderr + shown.stderr


def test_a_yaml_integer_over_64_bits_is_a_validation_error(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "workflow_id: g\nname: g\nglobal_variables: {n: 18446744073709551616}\n"
        "steps:\n  - {step_id: a, action: noop}\n",
    )
    run = wfctl(["validate", "wf.yaml"], tmp_path)
    assert run.rc == 2, run
    assert "wf.yaml:3:" in run.stdout + run.stderr
    assert "does not fit in 64 bits" in run.stdout + run.stderr


def test_json_problem_walks_deep_values_without_recursion() -> None:
    deep: object = 2**64
    for _ in range(100_000):
        deep = [deep]
    problem = json_problem(deep, "output")
    assert problem is not None and problem.endswith(
        "does not fit in 64 bits (at most 9223372036854775807); make it a string"
    )
    assert json_problem({"a": [1, 2.5, True, None, "x"]}, "output") is None
    assert json_safe_copy({"a": [float("nan"), 2**64]}) == {"a": ["nan", "18446744073709551616"]}


@pytest.mark.parametrize(
    ("value", "found"),
    [
        (None, None),
        ("", None),
        ("9" * 30, None),  # a string of digits is a string
        ({}, None),
        (0, None),
        (-0.0, None),
        (float("nan"), "output: nan is not a finite number"),
        (float("-inf"), "output: -inf is not a finite number"),
        (-(2**63) - 1, "output: -9223372036854775809 does not fit in 64 bits"),
        ([0, [{"x": 1e308 * 10}]], "output[1][0].x: inf is not a finite number"),
    ],
)
def test_json_problem_of_plain_and_falsy_values(value: object, found: str | None) -> None:
    problem = json_problem(value, "output")
    assert (problem if found is None else (problem or "")[: len(found)]) == found


# -- item 6: a broken stdout -------------------------------------------------------------


def _run_with_stdout(
    tmp_path: Path, stdout: object, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "wfctl",
            "run",
            "wf.yaml",
            "--no-live",
            "--report",
            "r.json",
            *extra,
        ],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.PIPE,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )


def test_stdout_on_a_full_device_the_run_goes_on(tmp_path: Path) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    _write(tmp_path, TWO_STEPS)
    with Path("/dev/full").open("w") as full:
        proc = _run_with_stdout(tmp_path, full)
    assert proc.returncode == 0, proc.stderr
    assert "stdout is unusable (No space left on device)" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert load_report(tmp_path / "r.json")["status"] == "completed"


def test_stdout_closed_the_run_goes_on(tmp_path: Path) -> None:
    _write(tmp_path, TWO_STEPS.replace("action: noop", "action: fail"))
    proc = subprocess.run(
        f"exec {sys.executable} -m wfctl run wf.yaml --no-live --report r.json >&-",
        shell=True,
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr  # as its result says: b failed
    assert "Traceback" not in proc.stderr
    report = load_report(tmp_path / "r.json")
    assert report["steps"]["a"]["status"] == "completed"
    # Nothing wrote into the state file through a reused descriptor 1.
    assert wfctl(["runs"], tmp_path).rc == 0


def test_a_reader_that_leaves_early_does_not_stop_the_run(tmp_path: Path) -> None:
    # Step a waits until the reader has gone, so the run's next line meets a closed pipe.
    waits = "until [ -e gone ]; do sleep 0.02; done; echo late"
    _write(tmp_path, TWO_STEPS.replace("echo one; echo two", waits))
    proc = subprocess.Popen(
        [sys.executable, "-m", "wfctl", "run", "wf.yaml", "--no-live", "--report", "r.json"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()  # `| head -1`
    proc.stdout.close()
    (tmp_path / "gone").touch()
    _, err = proc.communicate(timeout=RUN_TIMEOUT)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert load_report(tmp_path / "r.json")["status"] == "completed"
