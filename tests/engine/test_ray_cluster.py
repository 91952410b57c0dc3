"""The Ray executor on a real multi-node Ray cluster started on this machine
(`ray.cluster_utils.Cluster`, once for the module): placement by resources and agent
capability, output streamed while a step runs, secrets masked, a timed-out shell step's
processes killed on the worker, a node lost mid-attempt retried on another node."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

ray = pytest.importorskip("ray")
from conftest import DATA_DIR, make_workflow, run  # noqa: E402
from ray.cluster_utils import Cluster  # noqa: E402

from wfctl.engine.backends.ray import RayBackend  # noqa: E402
from wfctl.events import Event, StepOutputLine  # noqa: E402


class Nodes:
    """The module's cluster and its nodes' ids by role."""

    def __init__(self, cluster: Cluster, ids: dict[str, str]) -> None:
        self.cluster = cluster
        self.ids = ids


@pytest.fixture(scope="module")
def nodes() -> Iterator[Nodes]:
    """A head (where the driver's line box lives) and an `alpha` node with a capability."""
    # The nodes' workers import the python steps' modules from tests/data, as here.
    path = os.pathsep.join(filter(None, [str(DATA_DIR), os.environ.get("PYTHONPATH")]))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", path)
        cluster = Cluster(
            initialize_head=True,
            head_node_args={"num_cpus": 1, "resources": {"head_only": 10}},
        )
        alpha = cluster.add_node(num_cpus=1, resources={"alpha": 10, "gpu_inference": 100})
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False, configure_logging=False)
    try:
        head = ray.get_runtime_context().get_node_id()
        yield Nodes(cluster, {"head": head, "alpha": alpha.node_id})
    finally:
        ray.shutdown()
        cluster.shutdown()


def backend() -> RayBackend:
    return RayBackend()  # ray is initialised by the fixture: the backend uses that cluster


def nodes_of(outcome: Any, step_id: str) -> list[str | None]:
    return [a.node for a in outcome.record(step_id).attempts]


def test_steps_land_on_the_node_with_their_resources_and_capability(
    nodes: Nodes, tmp_path: Path
) -> None:
    workflow = make_workflow(
        """
        agents:
          - {name: gpu, capabilities: [gpu_inference], action: shell, with: {command: "echo agent"}}
        steps:
          - step_id: on_head
            action: shell
            resources: {head_only: 1, num_cpus: 0.5}
            with: {command: "echo head"}
          - step_id: on_alpha
            action: python
            resources: {alpha: 1}
            with: {function: "json:dumps", args: [[1, 2]]}
          - step_id: routed
            agent_capability: gpu_inference
            with: {command: "echo routed"}
          - step_id: pure
            action: set
            with: {values: {x: 1}}
        """
    )
    outcome = run(workflow, backend=backend(), workdir=tmp_path)
    assert outcome.status == "completed", outcome.dump()
    assert nodes_of(outcome, "on_head") == [nodes.ids["head"]]
    assert nodes_of(outcome, "on_alpha") == [nodes.ids["alpha"]]
    assert nodes_of(outcome, "routed") == [nodes.ids["alpha"]]
    assert outcome.record("on_alpha").output == "[1, 2]"
    assert outcome.record("routed").output["stdout"] == "routed\n"
    # Pure built-ins run on the driver: nothing to place.
    assert nodes_of(outcome, "pure") == [None]
    worker = outcome.record("on_head").attempts[0].worker
    assert worker is not None and " pid " in worker
    assert any(line.startswith("ran on Ray node") for line in outcome.output_lines("on_alpha"))
    # A short attempt's lines come back with its outcome, in order, before where it ran.
    assert outcome.output_lines("routed")[-2:][0] == "routed"


def test_output_lines_arrive_while_the_step_runs(nodes: Nodes, tmp_path: Path) -> None:
    # The step waits for a file that the test writes only once it has seen the step's
    # first line: lines that came only at the end would leave it waiting until its timeout.
    go = tmp_path / "go"
    workflow = make_workflow(
        f"""
        steps:
          - step_id: talk
            action: shell
            timeout: 60
            retry_policy: {{max_attempts: 1}}
            resources: {{alpha: 1}}
            with:
              command: "echo first; while [ ! -e {go} ]; do sleep 0.05; done; echo second"
        """
    )

    def watch(event: Event) -> None:
        if isinstance(event, StepOutputLine) and event.line == "first":
            go.write_text("")

    outcome = run(workflow, backend=backend(), workdir=tmp_path, subscribers=(watch,))
    assert outcome.status == "completed", outcome.dump()
    lines = outcome.output_lines("talk")
    assert lines.index("first") < lines.index("second")
    assert outcome.record("talk").output["stdout"] == "first\nsecond\n"


def test_secrets_reach_the_worker_and_are_masked(nodes: Nodes, tmp_path: Path) -> None:
    workflow = make_workflow(
        """
        secrets: {token: WFCTL_TEST_RAY_TOKEN}
        steps:
          - step_id: use
            action: shell
            resources: {alpha: 1}
            with: {command: "echo token=$WFCTL_TEST_RAY_TOKEN"}
        """
    )
    env = {**os.environ, "WFCTL_TEST_RAY_TOKEN": "s3cr3t-value-42"}
    outcome = run(workflow, backend=backend(), workdir=tmp_path, env=env)
    assert outcome.status == "completed", outcome.dump()
    assert outcome.record("use").output["stdout"] == "token=***\n"
    assert "s3cr3t-value-42" not in outcome.dump()


def _processes_with(marker: str) -> list[int]:
    """Pids whose environment holds `marker` (a step's WFCTL_RUN_ID=...)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if marker.encode() in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def test_a_timed_out_shell_step_leaves_no_process_on_the_worker(
    nodes: Nodes, tmp_path: Path
) -> None:
    workflow = make_workflow(
        """
        steps:
          - step_id: hang
            action: shell
            timeout: 1
            retry_policy: {max_attempts: 1}
            resources: {alpha: 1}
            with: {command: "sleep 300 & sleep 300"}
        """
    )
    outcome = run(workflow, backend=backend(), workdir=tmp_path, run_id="ray-timeout-test")
    record = outcome.record("hang")
    assert (outcome.status, record.error_kind) == ("failed", "timeout"), outcome.dump()
    assert nodes_of(outcome, "hang") == [nodes.ids["alpha"]]
    assert _processes_with("WFCTL_RUN_ID=ray-timeout-test") == []


def test_a_blocking_python_step_past_its_timeout_is_stopped_on_its_worker(
    nodes: Nodes, tmp_path: Path
) -> None:
    # `time.sleep(60)` waits in one system call: the deadline interrupts the function
    # itself on the worker (it used to time out while its thread slept on there).
    outcome = _promptly(
        f"""
        steps:
          - {{step_id: hold, action: python, timeout: 1, retry_policy: {{max_attempts: 1}},
             with: {{function: "ray_steps:hold", args: ["{tmp_path / "hold"}"]}}}}
        """,
        tmp_path,
    )
    record = outcome.record("hold")
    assert (outcome.status, record.error_kind) == ("failed", "timeout"), outcome.dump()
    # Stopped before the attempt reported its timeout; the worker lives on for the next.
    assert (tmp_path / "hold.stopped").read_text() == "KeyboardInterrupt"
    assert not (tmp_path / "hold.finished").exists()
    assert _alive(int((tmp_path / "hold.started").read_text()))


def test_blocking_python_steps_that_end_within_their_timeout_keep_their_outputs(
    nodes: Nodes, tmp_path: Path
) -> None:
    # The deadline is armed and disarmed per attempt on a reused worker: no stray
    # interrupt reaches a later attempt.
    steps = "".join(
        f"  - {{step_id: s{i}, action: python, timeout: 5, retry_policy: {{max_attempts: 1}},"
        f" with: {{function: 'ray_steps:hold', args: ['{tmp_path}/s{i}', 0.3]}}"
        + (f", dependencies: [s{i - 1}]}}\n" if i else "}\n")
        for i in range(3)
    )
    outcome = _promptly(f"steps:\n{steps}", tmp_path)
    assert outcome.status == "completed", outcome.dump()
    assert [outcome.record(f"s{i}").output for i in range(3)] == ["slept"] * 3
    assert not list(tmp_path.glob("*.stopped"))


def test_a_blocking_python_step_cancelled_by_a_failing_sibling_stops_on_its_worker(
    nodes: Nodes, tmp_path: Path
) -> None:
    # The driver lives on (the Python API), so nothing but Ray's cancel can stop the
    # function: it must reach it inside its system call.
    marker = tmp_path / "hold"
    outcome = _promptly(
        f"""
        steps:
          - step_id: group
            step_type: parallel
            fail_fast: true
            parallel_steps:
              - step_id: hold
                action: python
                with: {{function: "ray_steps:hold", args: ["{marker}"]}}
              - step_id: boom
                action: python
                retry_policy: {{max_attempts: 1}}
                with: {{function: "ray_steps:fail_when", args: ["{marker}.started"]}}
        """,
        tmp_path,
    )
    assert outcome.status == "failed", outcome.dump()
    assert outcome.record("hold").error_kind == "cancelled", outcome.dump()
    stopped = tmp_path / "hold.stopped"
    deadline = time.monotonic() + 20
    while not stopped.exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # the cancel reaches the worker after the run has ended
    assert stopped.read_text() == "KeyboardInterrupt"
    assert not (tmp_path / "hold.finished").exists()


def _promptly(text: str, workdir: Path) -> Any:
    """The workflow's run on Ray, which must end well before its held step's minute."""
    started = time.monotonic()
    outcome = run(make_workflow(text), backend=backend(), workdir=workdir)
    assert time.monotonic() - started < 30, outcome.dump()
    return outcome


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_node_lost_mid_attempt_is_retried_on_another_node(nodes: Nodes, tmp_path: Path) -> None:
    # `fragile` is on one node when the attempt starts; a second node with it joins, the
    # first is removed with every process on it (its worker, the step's processes): the
    # attempt fails as worker_lost and the retry runs on the new node.
    cluster = nodes.cluster
    doomed = cluster.add_node(num_cpus=1, resources={"fragile": 1})
    cluster.wait_for_nodes()
    started = tmp_path / "started"
    workflow = make_workflow(
        f"""
        steps:
          - step_id: long
            action: shell
            timeout: 120
            retry_policy: {{max_attempts: 2, initial_delay: 0, jitter: false}}
            resources: {{fragile: 1}}
            with:
              command: >-
                if [ "$WFCTL_ATTEMPT" = 1 ]; then echo "$PPID $$" > {started}.tmp;
                mv {started}.tmp {started}; sleep 100; fi; echo done
        """
    )
    # The run in a thread: Ray's node management wants the main thread (signals).
    outcomes: list[Any] = []

    def in_thread() -> None:
        try:
            outcomes.append(run(workflow, backend=backend(), workdir=tmp_path))
        except BaseException as exc:
            outcomes.append(exc)

    runner = threading.Thread(target=in_thread, daemon=True)
    runner.start()
    while not started.exists() and runner.is_alive():
        runner.join(timeout=0.05)  # the step writes the file once it runs
    assert started.exists(), outcomes
    worker, shell = (int(p) for p in started.read_text().split())
    new = cluster.add_node(num_cpus=1, resources={"fragile": 1})
    cluster.remove_node(doomed, allow_graceful=False)
    # A lost node takes all its processes with it (cluster_utils leaves the worker).
    with contextlib.suppress(ProcessLookupError):
        os.killpg(shell, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        os.kill(worker, signal.SIGKILL)
    runner.join(timeout=120)
    outcome = outcomes[0]
    record = outcome.record("long")
    assert outcome.status == "completed", outcome.dump()
    assert [a.error_kind for a in record.attempts] == ["worker_lost", None]
    assert record.attempts[1].node == new.node_id
    assert record.output["stdout"] == "done\n"


def test_ray_errors_that_are_not_the_steps_own(nodes: Nodes) -> None:
    from ray import exceptions as rex

    from wfctl.engine.backends.ray import lost

    assert lost(rex.WorkerCrashedError()).kind == "worker_lost"
    assert lost(rex.NodeDiedError("n")).kind == "worker_lost"
    assert lost(rex.TaskCancelledError()).kind == "cancelled"


def test_no_anyio_worker_thread_leaks(nodes: Nodes) -> None:
    # The backend is usable from a plain anyio.run (the Python API), twice in a row.
    workflow = make_workflow(
        """
        steps:
          - step_id: a
            action: python
            with: {function: "json:dumps", args: [1]}
        """
    )
    for _ in range(2):
        options_backend = backend()
        outcome = run(workflow, backend=options_backend)
        assert outcome.record("a").output == "1"
    assert anyio  # imported for the API shape above


def test_the_line_box_lives_on_the_drivers_node_while_its_cpus_are_taken(nodes: Nodes) -> None:
    # A box on a worker node would die with that node and take every later attempt's
    # lines (and, before the fix, the attempts themselves) with it.
    from wfctl.engine.backends._ray_lines import new_line_box

    @ray.remote(num_cpus=1, resources={"head_only": 1})
    def hold(path: str) -> None:
        while not Path(path).exists():
            threading.Event().wait(0.05)

    release = Path(os.environ.get("TMPDIR", "/tmp")) / f"wfctl-release-{os.getpid()}"
    busy = hold.remote(str(release))
    try:
        box = new_line_box()
        where = ray.get(
            box.__ray_call__.remote(lambda _self: ray.get_runtime_context().get_node_id())
        )
        assert where == nodes.ids["head"]
    finally:
        release.write_text("")
        ray.get(busy)
        release.unlink()


def test_a_react_attempt_runs_on_a_worker_and_its_tools_on_the_driver_loop(
    nodes: Nodes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The model is the scripted OpenAI server on 127.0.0.1 (the workers share this
    # machine's loopback). The key and base URL exist only in the driver's environment:
    # the worker gets them with the attempt. The shell tool is an attempt of its own
    # (a Ray task placed by the tool step's resources), run through the driver's loop.
    from openai_stub import answer, calls, serve, tool_call

    workflow = make_workflow(
        """
        steps:
          - step_id: r
            step_type: react
            resources: {alpha: 1}
            timeout: 60
            with:
              model: openai:gpt-4o-mini
              prompt: Say hi twice.
              tools:
                - name: shout
                  step: shout
                  parameters: {type: object, properties: {text: {type: string}}}
                - name: dump
                  action: python
                  with: {function: "json:dumps", args: ["{{ input.text }}"]}
          - step_id: shout
            action: shell
            resources: {head_only: 1}
            with: {command: "echo {{ input.text }}!"}
        """
    )
    script = (
        calls(tool_call("shout", {"text": "hi"}), tool_call("dump", {"text": "ho"}, "call_2")),
        answer("done"),
    )
    key = "sk-ray-worker-0123456789"
    with serve() as stub:
        monkeypatch.setenv("OPENAI_BASE_URL", stub.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", key)
        stub.script(*script)
        local = run(workflow, workdir=tmp_path)
        stub.script(*script)
        remote = run(workflow, backend=backend(), workdir=tmp_path)
        sent = [r.headers.get("authorization") for r in stub.chat_requests()]
    assert local.status == remote.status == "completed", remote.dump()
    assert remote.record("r").output == local.record("r").output
    results = {c["name"]: c["result"] for c in remote.record("r").output["tool_calls"]}
    assert results == {"shout": {"stdout": "hi!\n", "stderr": "", "exit_code": 0, "json": None},
                       "dump": '"ho"'}  # fmt: skip
    assert nodes_of(remote, "r") == [nodes.ids["alpha"]]
    assert nodes_of(remote, "shout") == [nodes.ids["head"]]
    assert sent == [f"Bearer {key}"] * 2  # from the worker, with the driver's key
    lines = remote.output_lines("r")
    assert any(line.startswith("tool shout(") for line in lines), lines
    assert any(line.startswith("final answer after 2 iterations") for line in lines), lines
    assert key not in remote.dump()
