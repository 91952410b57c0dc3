"""Result semantics through the real CLI: `depends`, skip reasons, structured errors and
recovery, `retry_if`, handler `when`, `on_exit` hooks (after success, failure, a workflow
timeout and Ctrl-C) and validation of their misuse."""

from __future__ import annotations

import shutil
import signal
import time
from pathlib import Path

import pytest
from cli_helpers import ROOT, clean_env, load_report, wfctl

RESULTS = ROOT / "tests" / "data" / "results"


def _copy(tmp_path: Path, *names: str) -> Path:
    for name in names:
        shutil.copy(RESULTS / name, tmp_path / name)
    return tmp_path


def _run(tmp_path: Path, name: str, *args: str) -> tuple[int, dict, str]:  # type: ignore[type-arg]
    run = wfctl(["run", name, "--no-live", "--report", "r.json", *args], tmp_path)
    assert "Traceback" not in run.stderr, run.stderr
    return run.rc, load_report(tmp_path / "r.json"), run.stdout + run.stderr


DEPENDS = """\
workflow_id: depends-demo
name: Depends
steps:
  - step_id: build
    action: shell
    with: {command: "echo built; echo 'disk full' >&2; exit 7"}
    retry_policy: {continue_on_failure: true}
  - step_id: lint
    action: noop
    when: "false"
  - step_id: notify_failure
    depends: "build.failed and (lint.failed or lint.skipped)"
    action: shell
    with:
      command: ["echo", "{{ steps.build.output.exit_code }}",
                "{{ steps.build.error.kind }}", "{{ steps.build.error.exit_code }}",
                "{{ steps.lint.skip_reason }}", "{{ steps.build.output.stderr | trim }}"]
  - step_id: publish
    depends: "build.succeeded"
    action: noop
  - step_id: after_publish
    dependencies: [publish]
    action: noop
"""


def test_depends_runs_on_results_and_skips_say_why(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DEPENDS)
    code, report, _ = _run(tmp_path, "d.yaml")
    assert code == 0  # build has continue_on_failure
    steps = report["steps"]
    assert steps["build"]["status"] == "failed"
    # A failed shell step keeps its output.
    assert steps["build"]["output"]["exit_code"] == 7
    assert steps["build"]["output"]["stdout"] == "built\n"
    assert steps["notify_failure"]["status"] == "completed"
    assert steps["notify_failure"]["output"]["stdout"] == "7 exit_code 7 when disk full\n"
    assert steps["publish"]["status"] == "skipped"
    assert steps["publish"]["skip_kind"] == "depends"
    assert steps["publish"]["skipped_reason"] == "depends is false: build.succeeded"
    assert steps["after_publish"]["skip_kind"] == "upstream_skipped"
    assert steps["lint"]["skip_kind"] == "when"


def test_handler_when_is_evaluated(tmp_path: Path) -> None:
    _copy(tmp_path, "handler_when.yaml")
    code, report, out = _run(tmp_path, "handler_when.yaml")
    assert code == 1
    assert (tmp_path / "ticket").exists()
    assert not (tmp_path / "paged").exists()  # when: error.exit_code == 99, it was 3
    assert not (tmp_path / "undone_ok").exists()  # a rollback's `when` is evaluated too
    steps = report["steps"]
    assert steps["page_oncall"]["status"] == "skipped"
    assert steps["page_oncall"]["skipped_reason"] == "when is false: error.exit_code == 99"
    assert steps["open_ticket"]["status"] == "completed"
    runs = steps["page_oncall"]["handler_runs"]
    assert [(r["for_step"], r["status"]) for r in runs] == [("deploy", "skipped")]
    assert "page_oncall skipped" in out
    assert steps["undo_ok"]["status"] == "skipped"
    assert [r["status"] for r in report["rollbacks"]] == ["skipped"]


RECOVER = """\
workflow_id: recover-demo
name: Recover
steps:
  - step_id: fetch
    action: shell
    with: {command: "echo partial; exit 75"}
    retry_policy:
      max_attempts: 4
      initial_delay: 0.01
      jitter: false
      retry_if: "error.exit_code == 75 and attempt < 2"
    error_handlers: [use_cache]
    output_mapping: {rows: "output.rows"}
  - step_id: use
    dependencies: [fetch]
    action: shell
    with: {command: ["echo", "{{ steps.fetch.output.rows }}", "{{ vars.rows }}"]}
  - step_id: use_cache
    recover: true
    recover_output: {rows: "{{ error.exit_code * 2 }}", reason: "{{ error.kind }}"}
    action: noop
"""


def test_recover_un_fails_the_step_after_retry_if(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text(RECOVER)
    code, report, _ = _run(tmp_path, "r.yaml")
    assert code == 0
    fetch = report["steps"]["fetch"]
    assert fetch["status"] == "completed"
    assert len(fetch["attempts"]) == 2  # retry_if refused the third
    assert fetch["output"] == {"rows": 150, "reason": "exit_code"}
    assert fetch["recovered"]["by"] == "use_cache"
    assert fetch["recovered"]["error_kind"] == "exit_code"
    assert "retry_if is false" in fetch["recovered"]["error"]
    assert report["steps"]["use"]["output"]["stdout"] == "150 150\n"


def test_exit_hooks_after_failure_and_a_failing_hook(tmp_path: Path) -> None:
    _copy(tmp_path, "hooks_failure.yaml")
    code, report, _ = _run(tmp_path, "hooks_failure.yaml")
    assert code == 1
    assert (tmp_path / "hook.txt").read_text() == "failed|4\n"
    assert report["steps"]["notify"]["status"] == "completed"
    assert report["steps"]["strict"]["status"] == "completed"
    assert report["error"].startswith("step 'build' failed")

    code, report, _ = _run(tmp_path, "hooks_failure.yaml", "-i", "fail_main=no")
    assert code == 0  # passing hooks leave the exit code alone
    assert (tmp_path / "hook.txt").read_text() == "completed|\n"

    code, report, _ = _run(
        tmp_path, "hooks_failure.yaml", "-i", "fail_main=no", "-i", "fail_hook=yes"
    )
    assert code == 1
    assert report["status"] == "failed"
    assert report["error"].startswith("on_exit step 'strict' failed")


def test_exit_hooks_after_a_workflow_timeout(tmp_path: Path) -> None:
    _copy(tmp_path, "hooks_timeout.yaml")
    code, report, out = _run(tmp_path, "hooks_timeout.yaml")
    assert code == 3
    assert (tmp_path / "hook.txt").read_text() == "timeout\n"
    assert report["steps"]["cleanup"]["status"] == "completed"
    assert report["steps"]["only_on_success"]["skip_kind"] == "when"
    assert report["steps"]["never"]["skip_kind"] == "not_started"
    assert "cleanup completed" in out


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_exit_hooks_after_ctrl_c(tmp_path: Path) -> None:
    import subprocess
    import sys

    _copy(tmp_path, "hooks_signal.yaml")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wfctl",
            "run",
            "hooks_signal.yaml",
            "--no-live",
            "--report",
            "r.json",
        ],
        cwd=tmp_path,
        env=clean_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    pid_file = tmp_path / "pid"
    try:
        deadline = time.monotonic() + 40
        while not (pid_file.exists() and pid_file.read_text().strip().isdigit()):
            assert time.monotonic() < deadline, "the step never started"
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, out + err
    assert "Traceback" not in err
    assert (tmp_path / "hook.txt").read_text() == "cancelled hang\n"
    report = load_report(tmp_path / "r.json")
    assert report["status"] == "cancelled"
    assert report["steps"]["cleanup"]["status"] == "completed"


def test_validate_reports_misuse_with_lines(tmp_path: Path) -> None:
    _copy(tmp_path, "invalid_results.yaml")
    run = wfctl(["validate", "invalid_results.yaml"], tmp_path)
    assert run.rc == 2
    assert "Traceback" not in run.stderr
    text = run.stdout + run.stderr
    expected = [
        "invalid_results.yaml:8:5 steps[1].recover: ",
        "invalid_results.yaml:10:21 steps[2].depends: a step's result has no flag 'Failed'",
        "invalid_results.yaml:10:31 steps[2].depends: depends names unknown step 'buld'",
        "invalid_results.yaml:11:5 steps[2].trigger_rule: ",
        "invalid_results.yaml:15:5 steps[3].recover_output: ",
        "invalid_results.yaml:16:48 steps[3].retry_policy.retry_if: unknown name 'eror'",
        "invalid_results.yaml:19:5 on_exit[0].dependencies: ",
        "invalid_results.yaml:21:52 on_exit[0].with.command: workflow has no attribute 'statuz'",
        "invalid_results.yaml:23:5 on_exit[1].step_type: ",
    ]
    for line in expected:
        assert line in text, (line, text)
    for code in ("recover-misuse", "depends-trigger-rule", "exit-step"):
        assert f"({code})" in text


def test_workflow_status_outside_on_exit_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "workflow_id: w\nname: W\nsteps:\n"
        "  - step_id: a\n    action: noop\n    when: \"workflow.status == 'failed'\"\n"
    )
    run = wfctl(["validate", "w.yaml"], tmp_path)
    assert run.rc == 2
    assert "w.yaml:6:" in run.stdout and "workflow has no attribute 'status'" in run.stdout


def test_release_train_example(tmp_path: Path) -> None:
    shutil.copy(ROOT / "workflows" / "release-train.yaml", tmp_path / "release-train.yaml")
    code, report, _ = _run(tmp_path, "release-train.yaml", "-i", "version=2.0.0")
    assert code == 0, report
    steps = report["steps"]
    assert steps["integration"]["status"] == "completed"
    assert len(steps["integration"]["attempts"]) == 2  # exit 75 once, then retried
    assert steps["sbom"]["recovered"]["by"] == "sbom_fallback"
    assert steps["publish"]["status"] == "completed"
    assert steps["announce_failure"]["skip_kind"] == "depends"
    assert steps["summary"]["status"] == "completed"
    assert (tmp_path / "dist" / "summary.txt").read_text() == "2.0.0 completed 0\n"


TIMED_OUT = """\
workflow_id: timed-out-output
name: Timed out output
steps:
  - step_id: slow
    action: shell
    with: {command: "echo started; echo warming >&2; sleep 30"}
    timeout: 1
    retry_policy: {continue_on_failure: true}
  - step_id: look
    depends: "slow.timed_out"
    action: shell
    with: {command: ["echo", "{{ steps.slow.output.stdout | trim }}"]}
"""


def test_a_timed_out_shell_step_keeps_what_it_printed(tmp_path: Path) -> None:
    (tmp_path / "t.yaml").write_text(TIMED_OUT)
    code, report, _ = _run(tmp_path, "t.yaml")
    assert code == 0
    slow = report["steps"]["slow"]
    assert slow["error_kind"] == "timeout"
    assert slow["output"]["exit_code"] is None
    assert slow["output"]["stdout"].splitlines() == ["started"]
    assert slow["output"]["stderr"].splitlines() == ["warming"]
    assert report["steps"]["look"]["output"]["stdout"].split() == ["started"]


FILES = """\
workflow_id: file-outputs
name: File outputs
inputs:
  big: {type: string, enum: ["yes", "no"], default: "no"}
steps:
  - step_id: make
    action: shell
    with:
      command:
        - sh
        - -c
        - 'echo "{\\"rows\\": 3}" > stats.json; echo hello > notes.txt; echo "$1"'
        - sh
        - "{{ inputs.big }}"
    outputs:
      stats: {path: stats.json, format: json}
      notes: {path: "{{ 'notes' }}.txt", max_bytes: 100}
    output_mapping: {rows: "output.files.stats.rows"}
  - step_id: use
    dependencies: [make]
    action: shell
    with: {command: ["echo", "{{ steps.make.outputs.notes | trim }}", "{{ vars.rows }}"]}
  - step_id: too_big
    action: shell
    when: "inputs.big == 'yes'"
    with: {command: "head -c 200 /dev/zero > big.bin"}
    outputs:
      big: {path: big.bin, max_bytes: 100}
    retry_policy: {continue_on_failure: true}
  - step_id: missing
    action: noop
    when: "inputs.big == 'yes'"
    outputs:
      gone: {path: nowhere.txt}
    retry_policy: {continue_on_failure: true}
"""


def test_declared_file_outputs_are_read_and_capped(tmp_path: Path) -> None:
    (tmp_path / "f.yaml").write_text(FILES)
    code, report, _ = _run(tmp_path, "f.yaml")
    assert code == 0, report
    make = report["steps"]["make"]
    assert make["output"]["files"] == {"stats": {"rows": 3}, "notes": "hello\n"}
    assert make["output"]["stdout"] == "no\n"
    assert report["vars"]["rows"] == 3
    assert report["steps"]["use"]["output"]["stdout"] == "hello 3\n"

    code, report, _ = _run(tmp_path, "f.yaml", "-i", "big=yes")
    assert code == 0  # both have continue_on_failure
    too_big = report["steps"]["too_big"]
    assert too_big["error"] == "outputs.big: big.bin is 200 bytes, over max_bytes (100)"
    assert report["steps"]["missing"]["error"] == "outputs.gone: no file at nowhere.txt"


def test_file_output_path_templates_are_checked(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text(
        "workflow_id: w\nname: W\nsteps:\n"
        "  - step_id: a\n    action: noop\n"
        "    outputs:\n      x: {path: '{{ ouput.dir }}/x.txt'}\n"
    )
    run = wfctl(["validate", "w.yaml"], tmp_path)
    assert run.rc == 2
    assert "w.yaml:7:" in run.stdout and "unknown name 'ouput'" in run.stdout, run.stdout
