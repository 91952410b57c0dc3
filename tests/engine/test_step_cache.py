"""The step cache (`cache:`) through the real CLI: two `wfctl run`s against one state
directory, a side-effect file proving whether the command ran."""

from __future__ import annotations

from pathlib import Path

from tests.cli_helpers import Run, wfctl

WORKFLOW = """\
workflow_id: cached
name: cached
steps:
  - step_id: build
    action: shell
    with:
      command: "echo built >> ran.txt; echo {word}"
    cache:
      key: "{{{{ inputs.version }}}}"
{ttl}
  - step_id: after
    action: shell
    dependencies: [build]
    with:
      command: "echo {{{{ steps.build.output.stdout | trim }}}}"
inputs:
  version: {{type: string, default: "1"}}
"""


def _write(tmp: Path, word: str = "hello", ttl: str = "") -> None:
    (tmp / "wf.yaml").write_text(WORKFLOW.format(word=word, ttl=ttl), encoding="utf-8")


def _run(tmp: Path, *extra: str) -> Run:
    run = wfctl(["run", "wf.yaml", "--no-live", "--report", "report.json", *extra], tmp)
    assert run.rc == 0, run
    return run


def _runs(tmp: Path) -> int:
    return len((tmp / "ran.txt").read_text(encoding="utf-8").splitlines())


def test_second_run_reuses_the_output_and_says_cached(tmp_path: Path) -> None:
    _write(tmp_path)
    first = _run(tmp_path).report()
    assert first["steps"]["build"]["cached"] is False
    second = _run(tmp_path)
    assert _runs(tmp_path) == 1
    step = second.report()["steps"]["build"]
    assert step["cached"] is True and step["status"] == "completed"
    assert step["output"]["stdout"] == "hello\n"
    assert f"build completed (cached from run {first['execution_id']})" in (
        second.stdout + second.stderr
    )
    assert second.report()["steps"]["after"]["output"]["stdout"] == "hello\n"


def test_a_new_key_or_an_edited_step_misses(tmp_path: Path) -> None:
    _write(tmp_path)
    _run(tmp_path)
    _run(tmp_path, "-i", "version=2")
    assert _runs(tmp_path) == 2
    _write(tmp_path, word="bye")
    edited = _run(tmp_path)
    assert _runs(tmp_path) == 3
    assert edited.report()["steps"]["build"]["output"]["stdout"] == "bye\n"


def test_no_cache_runs_the_step_and_still_records(tmp_path: Path) -> None:
    _write(tmp_path)
    _run(tmp_path, "--no-cache")
    assert _runs(tmp_path) == 1
    assert _run(tmp_path, "--no-cache").report()["steps"]["build"]["cached"] is False
    assert _runs(tmp_path) == 2
    assert _run(tmp_path).report()["steps"]["build"]["cached"] is True
    assert _runs(tmp_path) == 2


def test_a_failed_step_is_not_cached(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(WORKFLOW.format(word="x; exit 3", ttl=""), encoding="utf-8")
    for _ in range(2):
        run = wfctl(["run", "wf.yaml", "--no-live", "--report", "report.json"], tmp_path)
        assert run.rc == 1, run
    assert _runs(tmp_path) == 2


def test_cache_on_a_parallel_step_is_a_validate_error_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: c\nname: c\nsteps:\n  - step_id: p\n    step_type: parallel\n"
        "    cache: {key: k}\n    parallel_steps:\n      - {step_id: a, action: noop}\n",
        encoding="utf-8",
    )
    run = wfctl(["validate", "wf.yaml"], tmp_path)
    assert run.rc == 2, run
    assert "wf.yaml:6:" in run.stdout + run.stderr
    assert "cache" in run.stdout + run.stderr


def test_the_langgraph_engine_reuses_the_output_too(tmp_path: Path) -> None:
    _write(tmp_path)
    _run(tmp_path, "--engine", "langgraph")
    second = _run(tmp_path, "--engine", "langgraph")
    assert _runs(tmp_path) == 1
    assert second.report()["steps"]["build"]["cached"] is True
