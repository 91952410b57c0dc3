"""`wfctl run --executor ray` as a user runs it, against a real two-node Ray cluster
started once for the module: the examples give the same statuses and outputs as a local
run, a step no node can place is exit 2 at once, a killed driver's run resumes with its
completed steps kept, Ctrl-C cancels the running tasks; without Ray, a hint (exit 2); a
local run, `validate` and `--help` never import Ray."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import ROOT, clean_env, load_report, wfctl, workspace

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

EXAMPLES = {
    "agents.yaml": [],
    "approval-flow.yaml": [],
    "data-pipeline.yaml": [],
    "polling-loop.yaml": [],
    "release.yaml": ["--approve", "approve"],
    "retry-rollback.yaml": [],
}


@pytest.fixture(scope="module")
def address() -> Iterator[str]:
    """A head and one worker node; both offer the example agents' capabilities."""
    capabilities = {"summarize": 100, "classify": 100}
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "resources": capabilities}
    )
    cluster.add_node(num_cpus=1, resources={**capabilities, "worker_only": 10})
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


def _steps(report: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    return {k: (s["status"], s["output"]) for k, s in report["steps"].items()}


@pytest.mark.slow  # 12 wfctl runs, ~60 s on 2 shared cores
def test_the_examples_give_the_same_results_on_ray_as_locally(address: str, tmp_path: Path) -> None:
    for name, extra in EXAMPLES.items():
        results = {}
        for executor in ("local", "ray"):
            work = workspace(tmp_path / executor / name, name)
            args = ["run", name, "--no-input", "--quiet", "--report", "out.json", *extra]
            if executor == "ray":
                args += ["--executor", "ray", "--ray-address", address]
            done = wfctl(args, work, timeout=180)
            results[executor] = (done.rc, _steps(load_report(work / "out.json")))
            assert "Traceback" not in done.stderr, done.stderr
        assert results["ray"] == results["local"], name


def test_where_each_attempt_ran_is_in_the_report_and_wfctl_show(
    address: str, tmp_path: Path
) -> None:
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: where\nname: where\nsteps:\n"
        "  - step_id: there\n    action: shell\n    resources: {worker_only: 1}\n"
        "    with: {command: 'echo hi > out.txt; cat out.txt'}\n"
    )
    done = wfctl(
        ["run", "wf.yaml", "--executor", "ray", "--ray-address", address, "--json"],
        tmp_path,
        timeout=180,
    )
    assert done.rc == 0, done.stderr
    report = json.loads(done.stdout)
    attempt = report["steps"]["there"]["attempts"][0]
    assert len(attempt["node"]) == 56 and " pid " in attempt["worker"]
    # The working directory travelled to the worker (runtime_env working_dir): the relative
    # path was written there, not here.
    assert report["steps"]["there"]["output"]["stdout"] == "hi\n"
    assert not (tmp_path / "out.txt").exists()
    shown = wfctl(["show", report["execution_id"]], tmp_path)
    assert shown.rc == 0, shown.stderr
    assert attempt["node"][:12] in shown.stdout


def test_ray_attempts_get_the_runs_artifacts_directory(address: str, tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: art\nname: art\nsteps:\n"
        "  - step_id: put\n    action: shell\n    resources: {worker_only: 1}\n"
        "    with: {command: 'echo from-ray > \"${WFCTL_ARTIFACTS:?unset}/x.txt\"'}\n"
        "  - step_id: get\n    action: shell\n    dependencies: [put]\n"
        "    with: {command: 'cat \"${WFCTL_ARTIFACTS:?unset}/x.txt\"'}\n"
    )
    args = ["run", "wf.yaml", "--executor", "ray", "--ray-address", address, "--json"]
    done = wfctl([*args, "--state-dir", "state"], tmp_path, timeout=180)
    assert done.rc == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["steps"]["put"]["attempts"][0]["node"]  # it ran on a Ray worker
    assert report["steps"]["get"]["output"]["stdout"] == "from-ray\n"
    where = tmp_path / "state" / "runs" / report["execution_id"] / "artifacts"
    assert report["artifacts_dir"] == str(where.resolve())
    assert (where / "x.txt").read_text() == "from-ray\n"


def test_a_step_no_node_can_run_is_exit_2_at_once(address: str, tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: nope\nname: nope\nsteps:\n"
        "  - step_id: ok\n    action: shell\n    with: {command: 'true'}\n"
        "  - step_id: big\n    action: shell\n    resources: {num_gpus: 1}\n"
        "    with: {command: 'true'}\n"
    )
    done = wfctl(["run", "wf.yaml", "--ray-address", address], tmp_path,
                 env=clean_env(WFCTL_EXECUTOR="ray"), timeout=180)  # fmt: skip
    assert done.rc == 2, done.stdout + done.stderr
    assert "wf.yaml:7: step 'big' needs Ray resource 'num_gpus'" in done.stderr
    assert "nothing was run" in done.stderr and "Traceback" not in done.stderr


def _started(work: Path, marker: str, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 120
    while not (work / marker).exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the step never started"
        time.sleep(0.05)  # polling a file the step writes


_RESUMABLE = (
    "workflow_id: resumable\nname: resumable\nexecutor: ray\nsteps:\n"
    "  - step_id: first\n    action: shell\n    with: {{command: 'echo ran >> {dir}/first.log'}}\n"
    "  - step_id: slow\n    action: shell\n    dependencies: [first]\n"
    "    with: {{command: 'touch {dir}/slow.started; sleep {secs}'}}\n"
)


def _driver(work: Path, address: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "wfctl", "run", "wf.yaml", "--no-live", "--ray-address", address],
        cwd=work,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def test_a_killed_driver_resumes_without_rerunning_completed_steps(
    address: str, tmp_path: Path
) -> None:
    # `executor: ray` in the file; the resumed run goes back to Ray on its own.
    (tmp_path / "wf.yaml").write_text(_RESUMABLE.format(dir=tmp_path, secs=2))
    proc = _driver(tmp_path, address)
    _started(tmp_path, "slow.started", proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    run_id = json.loads(wfctl(["runs", "--json"], tmp_path).stdout)[0]["run_id"]
    done = wfctl(["resume", run_id, "--no-live", "--ray-address", address], tmp_path,
                 timeout=180)  # fmt: skip
    assert done.rc == 0, done.stdout + done.stderr
    assert (tmp_path / "first.log").read_text() == "ran\n"
    report = load_report(tmp_path / ".wfctl" / "reports" / f"{run_id}.json")
    assert report["steps"]["slow"]["status"] == "completed"
    assert report["steps"]["slow"]["attempts"][-1]["node"]


def _with_env(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def test_ctrl_c_cancels_the_running_ray_tasks(address: str, tmp_path: Path) -> None:
    (tmp_path / "wf.yaml").write_text(_RESUMABLE.format(dir=tmp_path, secs=300))
    proc = _driver(tmp_path, address)
    _started(tmp_path, "slow.started", proc)
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    run_id = json.loads(wfctl(["runs", "--json"], tmp_path).stdout)[0]["run_id"]
    # The step's shell was killed on its worker (its process group), not left running.
    deadline = time.monotonic() + 30
    while _with_env(f"WFCTL_RUN_ID={run_id}") and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker's cleanup finishes after the driver has exited
    assert _with_env(f"WFCTL_RUN_ID={run_id}") == []


def test_ctrl_c_stops_a_blocking_python_step_on_its_worker(address: str, tmp_path: Path) -> None:
    # `time.sleep(60)` in a sync function: one system call, no bytecode for Ray's cancel
    # to interrupt at. The module travels with the working directory.
    shutil.copy(ROOT / "tests" / "data" / "ray_steps.py", tmp_path)
    marker = tmp_path / "hold"
    (tmp_path / "wf.yaml").write_text(
        "workflow_id: blocking\nname: blocking\nexecutor: ray\nsteps:\n"
        f"  - step_id: hold\n    action: python\n"
        f"    with: {{function: 'ray_steps:hold', args: ['{marker}']}}\n"
    )
    proc = _driver(tmp_path, address)
    _started(tmp_path, "hold.started", proc)
    interrupted = time.monotonic()
    os.kill(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, out + err
    assert time.monotonic() - interrupted < 20, "the run did not end promptly"
    assert json.loads(wfctl(["runs", "--json"], tmp_path).stdout)[0]["status"] == "cancelled"
    stopped = tmp_path / "hold.stopped"
    deadline = time.monotonic() + 30
    while not stopped.exists() and time.monotonic() < deadline:
        time.sleep(0.1)  # the worker's side ends after the driver has exited
    # Ray's cancel (KeyboardInterrupt) or the end of the driver's job (SystemExit), well
    # before the minute the function would have slept.
    assert stopped.read_text() in ("KeyboardInterrupt", "SystemExit")
    assert not (tmp_path / "hold.finished").exists()


def test_without_ray_the_ray_executor_says_how_to_install_it(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    (blocker / "ray").mkdir(parents=True)
    (blocker / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray'\")\n")
    work = workspace(tmp_path / "w", "agents.yaml")
    env = clean_env()
    env["PYTHONPATH"] = os.pathsep.join([str(blocker), env["PYTHONPATH"]])
    done = wfctl(["run", "agents.yaml", "--executor", "ray"], work, env=env)
    assert done.rc == 2, done.stdout + done.stderr
    assert "pip install 'wfctl[ray]'" in done.stderr and "Traceback" not in done.stderr


def test_a_local_run_and_help_never_import_ray(tmp_path: Path) -> None:
    work = workspace(tmp_path, "agents.yaml")
    code = (
        "import sys\nfrom wfctl.cli import main\n"
        "for args in (['--help'], ['run', '--help'], ['run', 'agents.yaml', '--quiet']):\n"
        "    try:\n        main(args)\n    except SystemExit as exc:\n"
        "        assert exc.code == 0, (args, exc.code)\n"
        "assert not [m for m in sys.modules if m == 'ray' or m.startswith('ray.')]\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=clean_env(),
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert ROOT.exists()
