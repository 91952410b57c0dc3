"""`wfctl run` end to end, as a user drives it: inputs, every exit code, the options.

Every run here is a real `python -m wfctl run ...` subprocess in its own temporary working
directory (the fixtures are copied there, so `.wfctl/` and marker files never land in the
repository). The runs that get past input validation pay for importing the engine
(about a second each), so the module starts them all at once in one fixture (`runs`) and
the tests read their results; the quick ones (exit 2 before anything runs) are run inline.

The reports' contents, JUnit and `wfctl report` are in test_report.py; signals in
test_run_signals.py; the live table in test_run_tty.py.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import (
    ANSI,
    RUN_TIMEOUT,
    Run,
    clean_env,
    parse_utc,
    wfctl,
    wfctl_many,
    workspace,
)

# -- helpers -------------------------------------------------------------------------


# -- the runs that execute something, started together ------------------------------


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    base = tmp_path_factory.mktemp("run_cli")

    def ws(name: str, *files: str) -> Path:
        return workspace(base / name, *files)

    (ws("inputs_yaml", "inputs.yaml") / "in.yaml").write_text(
        "who: alice\nn: 5\ns: from-file\n", encoding="utf-8"
    )
    (ws("inputs_json", "inputs.yaml") / "in.json").write_text(
        json.dumps({"who": "carol", "list": ["a", {"b": 1}], "flag": False}), encoding="utf-8"
    )
    # name -> (command line, split on spaces; working directory)
    specs: dict[str, tuple[str, Path]] = {
        "inputs_cli": (
            "run inputs.yaml --report report.json -i who=bob -i n=3 -i s=abc -i flag=true "
            "-i list=[1,2] -i token=hunter2-hunter2",
            ws("inputs_cli", "inputs.yaml"),
        ),
        "inputs_yaml": (
            "run inputs.yaml --inputs-file in.yaml -i n=7 --report report.json",
            base / "inputs_yaml",
        ),
        "inputs_json": (
            "run inputs.yaml --inputs-file in.json --report report.json",
            base / "inputs_json",
        ),
        "completed": (
            "run release.yaml --approve approve --report report.json",
            ws("completed", "release.yaml"),
        ),
        "failed": ("run fail.yaml --report report.json", ws("failed", "fail.yaml")),
        "failed_quiet": (
            "run fail.yaml --quiet --report report.json",
            ws("failed_quiet", "fail.yaml"),
        ),
        "timeout": ("run timeout.yaml --report report.json", ws("timeout", "timeout.yaml")),
        "waiting": ("run approval.yaml --report report.json", ws("waiting", "approval.yaml")),
        "sla": ("run sla.yaml --report report.json", ws("sla", "sla.yaml")),
        "sla_fail": ("run sla.yaml --fail-on-sla --report report.json", ws("sla_fail", "sla.yaml")),
        "serial": (
            "run fanout.yaml --max-parallel 1 --report report.json",
            ws("serial", "fanout.yaml"),
        ),
        "quiet_ok": ("run fanout.yaml -q --report report.json", ws("quiet_ok", "fanout.yaml")),
    }
    return wfctl_many({name: (line.split(), cwd) for name, (line, cwd) in specs.items()})


# -- inputs ----------------------------------------------------------------------------


def test_input_values_are_parsed_as_json_when_they_parse(runs: dict[str, Run]) -> None:
    run = runs["inputs_cli"]
    inputs = run.report()["inputs"]
    assert inputs["n"] == 3 and type(inputs["n"]) is int, run
    assert inputs["s"] == "abc"
    assert inputs["flag"] is True
    assert inputs["list"] == [1, 2]
    assert inputs["who"] == "bob"
    # flag=true enables the step that fails with the (masked) token in its message
    assert run.rc == 1, run


def test_inputs_file_yaml_then_i_overrides(runs: dict[str, Run]) -> None:
    run = runs["inputs_yaml"]
    assert run.rc == 0, run
    inputs = run.report()["inputs"]
    assert inputs["who"] == "alice"
    assert inputs["s"] == "from-file"
    assert inputs["n"] == 7, "a later -i must override the inputs file"
    assert inputs["flag"] is False and inputs["list"] == [], "defaults apply to the rest"


def test_inputs_file_json(runs: dict[str, Run]) -> None:
    run = runs["inputs_json"]
    assert run.rc == 0, run
    inputs = run.report()["inputs"]
    assert inputs["who"] == "carol"
    assert inputs["list"] == ["a", {"b": 1}]
    assert inputs["flag"] is False
    assert (run.cwd / "ran.marker").exists()


BAD_INPUTS = {
    "pattern": (["-i", "who=Bob"], "who"),
    "type": (["-i", "who=bob", "-i", "n=abc"], "'n'"),
    "unknown": (["-i", "who=bob", "-i", "colour=red"], "colour"),
    "missing-required": ([], "who"),
    "not-key-value": (["-i", "who"], "who"),
    "inputs-file-missing": (["--inputs-file", "nope.yaml"], "nope.yaml"),
    "inputs-file-not-a-mapping": (["--inputs-file", "list.json"], "list.json"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_exits_2_names_it_and_runs_nothing(case: str, tmp_path: Path) -> None:
    args, named = BAD_INPUTS[case]
    ws = workspace(tmp_path, "inputs.yaml")
    (ws / "list.json").write_text("[1, 2]", encoding="utf-8")
    run = wfctl(["run", "inputs.yaml", *args], ws)
    assert run.rc == 2, run
    assert named in run.stderr, run
    assert "Traceback" not in run.stderr, run
    assert not (ws / "ran.marker").exists(), "the first step ran despite bad inputs"
    assert not list(ws.glob(".wfctl/reports/*.json")), "a bad input must not leave a report"
    assert run.stdout == "", run


def test_bad_secret_input_is_not_echoed(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "inputs.yaml")
    run = wfctl(["run", "inputs.yaml", "-i", "who=bob", "-i", "token=short7"], ws)
    assert run.rc == 2, run
    assert "token" in run.stderr, run
    assert "short7" not in run.stderr, run


def test_non_utf8_inputs_file_is_a_usage_error(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "inputs.yaml")
    (ws / "bad.yaml").write_bytes(b"who: \xff\xfe\n")
    run = wfctl(["run", "inputs.yaml", "--inputs-file", "bad.yaml"], ws)
    assert run.rc == 2, run
    assert "bad.yaml" in run.stderr
    assert "internal error" not in run.stderr


def test_approve_unknown_step_is_a_usage_error(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "inputs.yaml")
    run = wfctl(["run", "inputs.yaml", "-i", "who=bob", "--approve", "nope"], ws)
    assert run.rc == 2, run
    assert "nope" in run.stderr
    assert not (ws / "ran.marker").exists()


# -- exit codes, one by one --------------------------------------------------------------


def test_exit_0_completed(runs: dict[str, Run]) -> None:
    run = runs["completed"]
    assert run.rc == 0, run
    report = run.report()
    assert report["status"] == "completed" and report["exit_code"] == 0
    assert re.search(r"^completed: .*\n^report: report\.json$", run.stdout, re.M), run


def test_exit_1_failed(runs: dict[str, Run]) -> None:
    run = runs["failed"]
    assert run.rc == 1, run
    report = run.report()
    assert report["status"] == "failed" and report["exit_code"] == 1
    assert report["steps"]["boom"]["status"] == "failed"
    assert "boom on purpose" in run.stdout


def test_exit_2_invalid_workflow_with_location_and_nothing_run(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "invalid.yaml")
    run = wfctl(["run", "invalid.yaml"], ws)
    assert run.rc == 2, run
    assert re.search(r"^invalid\.yaml:9:5\b.*dependancies", run.stderr, re.M), run
    assert "Traceback" not in run.stderr
    assert not (ws / "ran.marker").exists()
    assert not (ws / ".wfctl").exists()


def test_exit_2_missing_workflow_file(tmp_path: Path) -> None:
    run = wfctl(["run", "nowhere.yaml"], tmp_path)
    assert run.rc == 2, run
    assert "nowhere.yaml" in run.stderr
    assert "Traceback" not in run.stderr


def test_exit_2_bad_option_value(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "fanout.yaml")
    run = wfctl(["run", "fanout.yaml", "--max-parallel", "0"], ws)
    assert run.rc == 2, run
    assert "--max-parallel" in run.stderr
    assert "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "args",
    [["run", "--no-such-option", "fanout.yaml"], ["run"], ["no-such-command"]],
    ids=["unknown-option", "missing-file-argument", "unknown-command"],
)
def test_exit_2_bad_usage(args: list[str], tmp_path: Path) -> None:
    ws = workspace(tmp_path, "fanout.yaml")
    run = wfctl(args, ws)
    assert "internal error" not in run.stderr, run
    assert run.rc == 2, run


def test_exit_3_timed_out(runs: dict[str, Run]) -> None:
    run = runs["timeout"]
    assert run.rc == 3, run
    report = run.report()
    assert report["status"] == "timeout" and report["exit_code"] == 3
    assert "timed out" in (report["error"] or "")
    nap = report["steps"]["nap"]
    assert nap["status"] == "failed" and "timed out" in nap["error"]
    assert nap["duration"] < 20, "the 30 s sleep must have been stopped after about 1 s"


def test_exit_4_waiting_for_approval_says_how_to_approve(runs: dict[str, Run]) -> None:
    run = runs["waiting"]
    assert run.rc == 4, run
    report = run.report()
    assert report["status"] == "waiting_approval" and report["waiting_for"] == ["gate"]
    assert report["steps"]["ship"]["status"] == "pending"
    assert not (run.cwd / "shipped.marker").exists()
    # how to approve: `--approve gate` on a new run, or `wfctl approve RUN_ID gate`
    assert re.search(r"(--approve gate\b|wfctl approve \S+ gate\b)", run.stdout), run


def _boom(opts: object) -> int:
    raise RuntimeError("boom from a test\nsecond line")


def test_exit_70_internal_error_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wfctl import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WFCTL_DEBUG", raising=False)
    monkeypatch.setattr("wfctl.cli.run.run_from_cli", _boom)
    with pytest.raises(SystemExit) as exc:
        cli.main(["run", "whatever.yaml"])
    out, err = capsys.readouterr()
    assert exc.value.code == 70
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "internal error" in lines[0] and "--debug" in lines[0]
    assert "RuntimeError" in lines[0] and "boom from a test" in lines[0]
    assert "Traceback" not in err and out == ""


def test_exit_70_with_debug_prints_the_traceback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wfctl import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("wfctl.cli.run.run_from_cli", _boom)
    with pytest.raises(SystemExit) as exited:
        cli.main(["--debug", "run", "whatever.yaml"])
    assert exited.value.code == 70
    err = capsys.readouterr().err
    assert "Traceback" in err and "boom from a test" in err


PATCHED_MAIN = (
    "import sys, wfctl.cli.run as s\n"
    "def boom(opts):\n"
    "    raise RuntimeError('boom from a test')\n"
    "s.run_from_cli = boom\n"
    "from wfctl.cli import main\n"
    "main(sys.argv[1:])\n"
)


def test_exit_70_debug_traceback_in_a_real_process(tmp_path: Path) -> None:
    plain = subprocess.run(
        [sys.executable, "-c", PATCHED_MAIN, "run", "x.yaml"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert plain.returncode == 70, plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run(
        [sys.executable, "-c", PATCHED_MAIN, "--debug", "run", "x.yaml"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert "Traceback (most recent call last)" in debug.stderr
    assert "RuntimeError: boom from a test" in debug.stderr


def test_exit_70_is_kept_with_debug(tmp_path: Path) -> None:
    debug = subprocess.run(
        [sys.executable, "-c", PATCHED_MAIN, "--debug", "run", "x.yaml"],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert debug.returncode == 70, debug.stderr


def test_report_path_that_is_a_directory_is_not_an_internal_error(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "fail.yaml")
    (ws / "somedir").mkdir()
    run = wfctl(["run", "fail.yaml", "--report", "somedir"], ws)
    assert "internal error" not in run.stderr, run
    assert run.rc != 70, run
    assert "somedir" in run.stderr, run


# exit 130 (SIGINT / SIGTERM) is tested in test_run_signals.py


# -- options -----------------------------------------------------------------------------


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "release.yaml", "inputs.yaml")
    run = wfctl(["run", "release.yaml", "--dry-run"], ws)
    assert run.rc == 0, run
    for step in (
        "build",
        "checks",
        "unit",
        "lint",
        "typecheck",
        "approve",
        "deploy",
        "smoke_test",
        "health_check",
        "undeploy",
    ):
        assert re.search(rf"\b{step}\b", run.stdout), f"{step} missing from the plan:\n{run}"
    assert run.stdout.index("build") < run.stdout.index("deploy") < run.stdout.index("smoke_test")
    assert not (ws / ".wfctl").exists(), "a dry run must not write state, reports or artifacts"

    run = wfctl(["run", "inputs.yaml", "-i", "who=bob", "--dry-run"], ws)
    assert run.rc == 0, run
    assert "first" in run.stdout and "leak" in run.stdout
    assert not (ws / "ran.marker").exists()
    assert not (ws / ".wfctl").exists()


def test_max_parallel_1_runs_one_step_at_a_time(runs: dict[str, Run]) -> None:
    """From the plain log: every `running` is followed by its own end before the next one."""
    run = runs["serial"]
    assert run.rc == 0, run
    running: str | None = None
    seen = []
    for line in run.stdout.splitlines():
        m = re.search(r"[▶✔✘] (\w+) (running|completed|failed)", line)
        if not m:
            continue
        step, what = m.groups()
        if what == "running":
            assert running is None, f"{step} started while {running} was running:\n{run}"
            running = step
            seen.append(step)
        else:
            assert running == step, run
            running = None
    assert sorted(seen) == ["a", "b", "c", "d", "root"]
    report = run.report()
    waited = sorted(report["steps"][s]["slot_wait"] for s in "abcd")
    assert waited[-1] >= 0.5, f"the last sleep should have waited for ~3 others: {waited}"


def test_max_parallel_1_report_timestamps_do_not_overlap(runs: dict[str, Run]) -> None:
    steps = runs["serial"].report()["steps"]
    spans = sorted(
        (parse_utc(s["started_at"]), parse_utc(s["ended_at"]), k) for k, s in steps.items()
    )
    for (_, end, a), (start, _, b) in itertools.pairwise(spans):
        assert start >= end, f"{a} and {b} overlap: {spans}"
    for k in "abcd":
        assert steps[k]["duration"] < 0.4, f"{k}: a 0.2 s sleep took {steps[k]['duration']}"


def test_quiet_prints_less_but_still_the_failure(runs: dict[str, Run]) -> None:
    loud, quiet = runs["failed"], runs["failed_quiet"]
    assert quiet.rc == loud.rc == 1
    assert len(quiet.stdout.splitlines()) < len(loud.stdout.splitlines())
    assert " running" in loud.stdout
    assert " running" not in quiet.stdout, quiet
    assert "started:" not in quiet.stdout
    assert "boom" in quiet.stdout and "boom on purpose" in quiet.stdout
    assert "report: report.json" in quiet.stdout, "a failed quiet run still says where"


def test_quiet_success_is_nearly_silent(runs: dict[str, Run]) -> None:
    run = runs["quiet_ok"]
    assert run.rc == 0, run
    assert " running" not in run.stdout and "completed in" not in run.stdout.replace(
        "run completed in", ""
    )
    assert len(run.stdout.splitlines()) <= 2, run


def test_plain_output_in_a_pipe_has_no_escape_codes(runs: dict[str, Run]) -> None:
    for name, run in runs.items():
        assert not ANSI.search(run.stdout), f"{name}: escape codes in stdout:\n{run}"
        assert not ANSI.search(run.stderr), f"{name}: escape codes in stderr:\n{run}"
        assert "Traceback" not in run.stderr, f"{name}:\n{run}"


def test_plain_lines_are_timestamped(runs: dict[str, Run]) -> None:
    run = runs["completed"]
    body = [ln for ln in run.stdout.splitlines() if ln.startswith(("0", "1", "2"))]
    assert len(body) >= 10, run
    for line in body:
        assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} ", line), line


# -- SLA ---------------------------------------------------------------------------------


def test_sla_breach_alerts_but_exits_0(runs: dict[str, Run]) -> None:
    run = runs["sla"]
    assert run.rc == 0, run
    alert = [ln for ln in run.stdout.splitlines() if "SLA ALERT" in ln]
    assert len(alert) == 1 and "slow" in alert[0], run
    sla = run.report()["sla"]
    assert sla["met"] is False
    assert sla["targets"]["step_max_duration"] == {"slow": 0.1}
    [breach] = sla["breaches"]
    assert breach["target"] == "step_max_duration" and breach["step_id"] == "slow"
    assert breach["limit"] == 0.1 and breach["actual"] > 0.1


def test_fail_on_sla_exits_1(runs: dict[str, Run]) -> None:
    run = runs["sla_fail"]
    assert run.rc == 1, run
    assert "SLA ALERT" in run.stdout
    report = run.report()
    assert report["status"] == "completed"
    assert report["sla"]["met"] is False


def test_fail_on_sla_report_records_the_exit_code(runs: dict[str, Run]) -> None:
    """Fixed during this work: the report used to say exit_code 0 and the summary nothing."""
    run = runs["sla_fail"]
    report = run.report()
    assert report["exit_code"] == run.rc == 1
    assert "SLA" in (report["error"] or "")
    assert re.search(r"^  .*SLA.*slow", run.stdout, re.M), "the summary says why it exits 1"
