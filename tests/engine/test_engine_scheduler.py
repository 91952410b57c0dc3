"""The event-driven scheduler: readiness, concurrency, priority, deadlock, run timeout,
trigger rules, `when` and conditional branches."""

from __future__ import annotations

import random
import time
import uuid
from pathlib import Path
from typing import Any

import anyio
import pytest
from conftest import make_workflow, replace_step, run

from wfctl.compile.plan import ExecutionPlan, Level
from wfctl.engine.executor import Executor
from wfctl.events import EventBus, RunFinished, StepStateChanged
from wfctl.model import StepStatus
from wfctl.secrets import Masker

# -- a step starts when its own dependencies end ------------------------------------


def test_step_starts_when_its_own_dependencies_end_not_after_unrelated_steps() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: a, action: sleep, with: {seconds: 0.05}}
              - {step_id: b, action: sleep, with: {seconds: 0.01}, dependencies: [a]}
              - {step_id: c, action: sleep, with: {seconds: 0.6}}
            """
        )
    )
    assert out.status == "completed"
    # Event order: b starts and even ends before the unrelated slow step ends.
    assert out.end_index("a") < out.index("b", "running") < out.index("c", "completed")
    assert out.index("b", "completed") < out.index("c", "completed")
    # From timestamps: b waited for a, not for c (ratio, not absolute time).
    c_duration = out.ts("c", "completed") - out.ts("c", "running")
    b_wait = out.ts("b", "running") - out.ts("a", "completed")
    assert b_wait < 0.5 * c_duration
    assert out.ts("b", "running") < out.ts("c", "completed")


def test_diamond_join_waits_for_both_branches() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: root, action: noop}
              - {step_id: fast, action: sleep, with: {seconds: 0.01}, dependencies: [root]}
              - {step_id: slow, action: sleep, with: {seconds: 0.1}, dependencies: [root]}
              - {step_id: join, action: noop, dependencies: [fast, slow]}
            """
        )
    )
    assert out.status == "completed"
    assert out.index("join", "running") > out.end_index("slow")
    assert out.index("join", "running") > out.end_index("fast")
    order = out.start_order()
    assert order[0] == "root" and order[-1] == "join"
    assert set(order[1:3]) == {"fast", "slow"}


# -- concurrency limit ----------------------------------------------------------------

TEN_SLEEPS = "max_parallel_steps: 2\nsteps:\n" + "".join(
    f"  - {{step_id: s{i}, action: sleep, with: {{seconds: 0.03}}}}\n" for i in range(10)
)


def test_concurrency_limit_is_never_exceeded(slot_spy: list[Any]) -> None:
    out = run(make_workflow(TEN_SLEEPS))
    assert out.status == "completed"
    assert out.max_running() == 2
    assert len(slot_spy) == 1
    assert slot_spy[0].peak == 2
    assert slot_spy[0].in_use == 0  # every slot given back
    # Every step ran once, each holding a slot from RUNNING to COMPLETED.
    assert all(out.trail(f"s{i}") == ["running", "completed"] for i in range(10))


def test_max_parallel_argument_overrides_the_workflow(slot_spy: list[Any]) -> None:
    out = run(make_workflow(TEN_SLEEPS), max_parallel=3)
    assert out.status == "completed"
    assert out.max_running() == 3
    assert slot_spy[0].peak == 3


def test_nested_steps_share_the_limit(slot_spy: list[Any]) -> None:
    children = "".join(
        f"      - {{step_id: c{i}, action: sleep, with: {{seconds: 0.03}}}}\n" for i in range(6)
    )
    text = (
        "max_parallel_steps: 3\nsteps:\n"
        "  - step_id: par\n    step_type: parallel\n    parallel_steps:\n"
        + children
        + "  - {step_id: t1, action: sleep, with: {seconds: 0.05}}\n"
        "  - {step_id: t2, action: sleep, with: {seconds: 0.05}}\n"
    )
    out = run(make_workflow(text))
    assert out.status == "completed"
    assert out.max_running() == 3
    assert slot_spy[0].peak == 3


# -- priority: longest remaining path first -----------------------------------------

PRIORITY = """
max_parallel_steps: 1
steps:
  - {step_id: s1, action: sleep, with: {seconds: 0.01}}
  - {step_id: s2, action: sleep, with: {seconds: 0.01}}
  - {step_id: s3, action: sleep, with: {seconds: 0.01}}
  - {step_id: l1, action: sleep, with: {seconds: 0.01}}
  - {step_id: l2, action: sleep, with: {seconds: 0.01}, dependencies: [l1]}
  - {step_id: l3, action: sleep, with: {seconds: 0.01}, dependencies: [l2]}
"""


def test_longest_remaining_path_starts_first_with_scarce_slots() -> None:
    out = run(make_workflow(PRIORITY))
    assert out.status == "completed"
    order = out.start_order()
    # l1 heads a 3-step chain: it goes first although it is declared after s1..s3.
    assert order[0] == "l1"
    assert order.index("l1") < order.index("l2") < order.index("l3")
    assert sorted(order) == ["l1", "l2", "l3", "s1", "s2", "s3"]


def test_learned_estimates_change_the_priority() -> None:
    wf = make_workflow(PRIORITY)
    out = run(wf, estimates={"s3": 100.0})
    assert out.start_order()[0] == "s3"


def test_successor_on_the_critical_path_gets_the_freed_slot() -> None:
    out = run(make_workflow(PRIORITY))
    # When l1 ends, l2 (rank 2) is ready at the same moment as s1..s3 (rank 1) wait.
    assert out.start_order() == ["l1", "l2", "l3", "s1", "s2", "s3"]


# -- deadlock -----------------------------------------------------------------------

BASE = """
steps:
  - {step_id: a, action: noop, rollback_actions: [undo]}
  - {step_id: b, action: noop}
  - {step_id: c, action: noop}
  - {step_id: undo, action: noop}
"""


def _executor(plan: ExecutionPlan) -> Executor:
    return Executor(
        plan,
        "run-deadlock",
        {},
        EventBus(),
        secrets={},
        secret_env={},
        masker=Masker.empty(),
        workdir=Path.cwd(),
        rng=random.Random(0),
    )


def _deadlocked_executor() -> Executor:
    """Run the detector itself on a hand-built plan (compile_plan cannot rank a cycle)."""
    wf = make_workflow(BASE)
    wf = replace_step(wf, "b", dependencies=("c",))
    wf = replace_step(wf, "c", dependencies=("b",))
    steps = tuple(s for s in wf.steps if s.step_id != "undo")
    level = Level(
        container=None,
        steps=steps,
        dependents={"a": (), "b": ("c",), "c": ("b",)},
        roots=("a",),
    )
    plan = ExecutionPlan(wf, {None: level}, {"a": 1.0, "b": 2.0, "c": 2.0, "undo": 0.0})
    executor = _executor(plan)
    anyio.run(executor.run_level, None)
    return executor


def test_deadlock_detector_reports_stuck_steps_with_their_ids() -> None:
    executor = _deadlocked_executor()
    assert executor.records["a"].status is StepStatus.COMPLETED
    assert sorted(executor.deadlocked) == ["b", "c"]
    for step_id in ("b", "c"):
        record = executor.records[step_id]
        assert record.status is StepStatus.FAILED
        assert record.error_kind == "deadlock"
        assert "deadlock" in (record.error or "")
    assert executor.fatal is not None
    assert "b" in executor.fatal and "c" in executor.fatal


def test_each_deadlocked_step_names_what_it_waits_on() -> None:
    executor = _deadlocked_executor()
    assert "c" in (executor.records["b"].error or "")
    assert "b" in (executor.records["c"].error or "")


def test_dependency_cycle_is_reported_as_deadlock() -> None:
    wf = make_workflow(BASE)
    wf = replace_step(wf, "b", dependencies=("c",))
    wf = replace_step(wf, "c", dependencies=("b",))
    out = run(wf)
    assert out.status == "failed"
    assert out.exit_code == 1
    assert out.step_status("a") == "completed"
    assert out.step_status("b") == "failed" and out.step_status("c") == "failed"
    assert "deadlock" in (out.result.error or "")
    assert "b" in (out.result.error or "") and "c" in (out.result.error or "")


@pytest.mark.parametrize("missing", ["undo", "ghost"])
def test_dependency_that_can_never_end_is_reported_as_deadlock(missing: str) -> None:
    wf = replace_step(make_workflow(BASE), "b", dependencies=(missing,))
    out = run(wf)
    assert out.step_status("b") == "failed"
    assert out.record("b").error_kind == "deadlock"
    assert out.status == "failed"
    assert "b" in (out.result.error or "")


# -- workflow timeout ---------------------------------------------------------------


def tagged_pids(run_id: str) -> list[int]:
    """Live processes whose environment carries WFCTL_RUN_ID=<run_id>."""
    needle = f"WFCTL_RUN_ID={run_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def wait_no_tagged(run_id: str, within: float = 10.0) -> list[int]:
    deadline = time.monotonic() + within
    while True:
        left = tagged_pids(run_id)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_workflow_timeout_stops_the_run_and_kills_its_processes() -> None:
    run_id = f"timeout-{uuid.uuid4().hex[:8]}"
    wf = make_workflow(
        """
        timeout: 0.5
        steps:
          - {step_id: quick, action: noop, rollback_actions: [undo_quick]}
          - step_id: hang
            action: shell
            dependencies: [quick]
            with: {command: "sleep 100 & sleep 100"}
          - {step_id: never, action: noop, dependencies: [hang]}
          - {step_id: undo_quick, action: noop}
        """
    )
    out = run(wf, run_id=run_id)
    assert out.result.run_id == run_id
    assert out.status == "timeout"
    assert out.exit_code == 3
    assert "timed out" in (out.result.error or "")
    assert out.result.duration < 30  # nowhere near the 100 s the shell wanted
    hang = out.record("hang")
    assert hang.status is StepStatus.FAILED
    assert "timed out" in (hang.error or "")
    assert out.step_status("never") != "completed"
    assert "running" not in out.trail("never")
    finished = out.of(RunFinished)
    assert len(finished) == 1 and finished[0].status.value == "timeout"
    assert out.events[-1] is finished[0]
    # Completed work is rolled back after a timeout too.
    assert [r["step_id"] for r in out.result.rollbacks] == ["undo_quick"]
    # Neither the shell nor its background sleep survive the run.
    assert wait_no_tagged(run_id) == []


def test_step_timeout_kills_background_processes_too() -> None:
    run_id = f"steptimeout-{uuid.uuid4().hex[:8]}"
    wf = make_workflow(
        """
        steps:
          - step_id: hang
            action: shell
            timeout: 0.3
            with: {command: "sleep 100 & sleep 100"}
            retry_policy: {max_attempts: 2, initial_delay: 0}
        """
    )
    out = run(wf, run_id=run_id)
    assert out.status == "failed"
    record = out.record("hang")
    assert record.error_kind == "timeout"
    assert [a.error_kind for a in record.attempts] == ["timeout", "timeout"]
    assert wait_no_tagged(run_id) == []


# -- trigger rules ------------------------------------------------------------------

# ok completes, bad fails (without failing the run), skp is skipped by `when`.
UPSTREAMS = """
steps:
  - {step_id: ok, action: noop}
  - step_id: bad
    action: fail
    with: {message: boom}
    retry_policy: {continue_on_failure: true}
  - {step_id: skp, action: noop, when: "false"}
"""

RUN, SKIP = "completed", "skipped"
TRIGGER_CASES = [
    # deps, rule, expected, reason fragment when skipped
    (["ok", "bad"], "all_success", SKIP, "upstream failed"),
    (["ok", "bad"], "all_done", RUN, None),
    (["ok", "bad"], "none_failed", SKIP, "upstream failed"),
    (["ok", "bad"], "one_success", RUN, None),
    (["ok", "skp"], "all_success", SKIP, "upstream skipped"),
    (["ok", "skp"], "all_done", RUN, None),
    (["ok", "skp"], "none_failed", RUN, None),
    (["ok", "skp"], "one_success", RUN, None),
    (["bad", "skp"], "all_success", SKIP, "upstream"),
    (["bad", "skp"], "all_done", RUN, None),
    (["bad", "skp"], "none_failed", SKIP, "upstream failed"),
    (["bad", "skp"], "one_success", SKIP, "succeeded"),
    (["ok"], "all_success", RUN, None),
    (["ok"], "none_failed", RUN, None),
    (["skp"], "all_success", SKIP, "upstream skipped"),
    (["skp"], "none_failed", RUN, None),
    (["skp"], "one_success", SKIP, "succeeded"),
    (["skp"], "all_done", RUN, None),
    (["bad"], "all_done", RUN, None),
    (["bad"], "one_success", SKIP, "succeeded"),
]


@pytest.mark.parametrize(("deps", "rule", "expected", "reason"), TRIGGER_CASES)
def test_trigger_rules(deps: list[str], rule: str, expected: str, reason: str | None) -> None:
    text = UPSTREAMS + (
        f"  - {{step_id: target, action: noop, trigger_rule: {rule}, "
        f"dependencies: [{', '.join(deps)}]}}\n"
    )
    out = run(make_workflow(text))
    assert out.step_status("bad") == "failed"
    assert out.step_status("skp") == "skipped"
    assert out.step_status("target") == expected
    assert out.status == "completed"  # bad has continue_on_failure
    assert out.exit_code == 0
    # The decision is taken only once every dependency has ended.
    assert out.end_index("target") > max(out.end_index(d) for d in deps)
    if expected == SKIP:
        assert reason is not None
        assert reason in (out.record("target").reason or "")
        assert "running" not in out.trail("target")
        assert out.state_events("target")[-1].reason == out.record("target").reason


def test_skips_propagate_down_a_chain_of_all_success_steps() -> None:
    out = run(
        make_workflow(
            UPSTREAMS
            + (
                "  - {step_id: c1, action: noop, dependencies: [bad]}\n"
                "  - {step_id: c2, action: noop, dependencies: [c1]}\n"
                "  - {step_id: c3, action: noop, dependencies: [c2], trigger_rule: all_done}\n"
            )
        )
    )
    assert out.step_status("c1") == "skipped"
    assert "upstream failed: bad" in (out.record("c1").reason or "")
    assert out.step_status("c2") == "skipped"
    assert "upstream skipped: c1" in (out.record("c2").reason or "")
    assert out.step_status("c3") == "completed"


def test_a_failure_that_fails_the_run_skips_steps_not_yet_started() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: bad, action: fail}
              - {step_id: after, action: noop, dependencies: [bad], trigger_rule: none_failed}
              - {step_id: cleanup, action: noop, dependencies: [bad], trigger_rule: all_done}
            """
        )
    )
    assert out.status == "failed"
    assert out.exit_code == 1
    assert "bad" in (out.result.error or "")
    assert out.step_status("after") == "skipped"
    assert out.record("after").reason
    assert out.step_status("cleanup") == "completed"  # all_done still runs


# -- when -----------------------------------------------------------------------------


def test_when_false_skips_with_reason_and_dependents_follow_their_rules() -> None:
    out = run(
        make_workflow(
            """
            inputs:
              deploy: {type: boolean, default: false}
            steps:
              - {step_id: gated, action: noop, when: "inputs.deploy"}
              - {step_id: strict, action: noop, dependencies: [gated]}
              - step_id: lenient
                action: noop
                dependencies: [gated]
                trigger_rule: none_failed
            """
        )
    )
    assert out.status == "completed"
    gated = out.record("gated")
    assert gated.status is StepStatus.SKIPPED
    assert "when" in (gated.reason or "") and "inputs.deploy" in (gated.reason or "")
    assert out.trail("gated") == ["skipped"]
    assert gated.attempts == []
    assert out.step_status("strict") == "skipped"
    assert out.step_status("lenient") == "completed"


def test_when_true_runs_the_step_and_sees_upstream_output() -> None:
    out = run(
        make_workflow(
            """
            inputs:
              deploy: {type: boolean, default: false}
            steps:
              - {step_id: first, action: set, with: {values: {go: true}}}
              - step_id: gated
                action: noop
                dependencies: [first]
                when: "inputs.deploy and steps.first.output.go"
            """
        ),
        {"deploy": True},
    )
    assert out.step_status("gated") == "completed"


# -- conditional branches -------------------------------------------------------------

CONDITIONAL = """
inputs:
  env: {type: string}
steps:
  - step_id: pick
    step_type: conditional
    conditions:
      - {name: prod, when: "inputs.env == 'prod'", next_steps: [deploy_prod]}
      - {when: "inputs.env == 'staging'", next_steps: [deploy_staging]}
      - {next_steps: [dry_run]}
  - {step_id: deploy_prod, action: noop}
  - {step_id: notify_prod, action: noop, dependencies: [deploy_prod]}
  - {step_id: deploy_staging, action: noop}
  - {step_id: dry_run, action: noop}
  - step_id: join
    action: noop
    trigger_rule: none_failed
    dependencies: [notify_prod, deploy_staging, dry_run]
"""


@pytest.mark.parametrize(
    ("env", "branch", "ran"),
    [
        ("prod", 0, {"deploy_prod", "notify_prod"}),
        ("staging", 1, {"deploy_staging"}),
        ("dev", 2, {"dry_run"}),  # the else branch
    ],
)
def test_conditional_runs_the_chosen_branch_only(env: str, branch: int, ran: set[str]) -> None:
    out = run(make_workflow(CONDITIONAL), {"env": env})
    assert out.status == "completed"
    pick = out.record("pick")
    assert pick.status is StepStatus.COMPLETED
    assert pick.output["branch"] == branch
    assert set(pick.output["next_steps"]) & {"deploy_prod", "deploy_staging", "dry_run"} == (
        ran - {"notify_prod"}
    )
    branch_steps = {"deploy_prod", "notify_prod", "deploy_staging", "dry_run"}
    for step_id in branch_steps:
        record = out.record(step_id)
        if step_id in ran:
            assert record.status is StepStatus.COMPLETED, step_id
        else:
            assert record.status is StepStatus.SKIPPED, step_id
            assert record.reason, step_id
            assert "running" not in out.trail(step_id)
    not_taken = {"deploy_prod", "deploy_staging", "dry_run"} - ran
    for step_id in not_taken:
        assert "branch not taken" in (out.record(step_id).reason or ""), step_id
    if "notify_prod" not in ran:
        # an exclusive descendant of an unchosen branch
        assert "upstream skipped" in (out.record("notify_prod").reason or "")
    assert out.step_status("join") == "completed"
    assert out.end_index("join") > max(out.end_index(s) for s in branch_steps)


def test_conditional_without_a_matching_branch_skips_every_target() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: pick
                step_type: conditional
                conditions:
                  - {when: "false", next_steps: [a]}
                  - {when: "1 > 2", next_steps: [b]}
              - {step_id: a, action: noop}
              - {step_id: b, action: noop}
              - {step_id: join, action: noop, trigger_rule: none_failed, dependencies: [a, b]}
            """
        )
    )
    assert out.status == "completed"
    assert out.record("pick").output["branch"] is None
    assert out.step_status("a") == "skipped" and out.step_status("b") == "skipped"
    assert out.step_status("join") == "completed"


def test_step_named_by_the_chosen_and_another_branch_runs() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - step_id: pick
                step_type: conditional
                conditions:
                  - {when: "false", next_steps: [only_a, shared]}
                  - {when: "true", next_steps: [shared]}
              - {step_id: only_a, action: noop}
              - {step_id: shared, action: noop}
            """
        )
    )
    assert out.record("pick").output["branch"] == 1
    assert out.step_status("shared") == "completed"
    assert out.step_status("only_a") == "skipped"


def test_conditional_branch_sees_upstream_outputs() -> None:
    out = run(
        make_workflow(
            """
            steps:
              - {step_id: measure, action: set, with: {values: {total: 150}}}
              - step_id: pick
                step_type: conditional
                dependencies: [measure]
                conditions:
                  - {when: "steps.measure.output.total > 100", next_steps: [big]}
                  - {next_steps: [small]}
              - {step_id: big, action: noop}
              - {step_id: small, action: noop}
            """
        )
    )
    assert out.step_status("big") == "completed"
    assert out.step_status("small") == "skipped"


def test_cancel_event_stops_the_run_with_exit_130() -> None:
    run_id = f"cancel-{uuid.uuid4().hex[:8]}"
    cancel_holder: list[anyio.Event] = []

    def cancel_when_hang_runs(event: Any) -> None:
        if (
            isinstance(event, StepStateChanged)
            and event.step_id == "hang"
            and event.status is StepStatus.RUNNING
        ):
            cancel_holder[0].set()

    async def main() -> Any:
        from wfctl.engine import RunOptions
        from wfctl.engine.runner import run_workflow

        cancel_holder.append(anyio.Event())
        bus = EventBus()
        events: list[Any] = []
        bus.subscribe(events.append)
        bus.subscribe(cancel_when_hang_runs)
        wf = make_workflow(
            """
            steps:
              - {step_id: first, action: noop}
              - step_id: hang
                action: shell
                dependencies: [first]
                with: {command: "sleep 100 & sleep 100"}
              - {step_id: after, action: noop, dependencies: [hang]}
            """
        )
        options = RunOptions(bus=bus, cancel=cancel_holder[0], run_id=run_id)
        result = await run_workflow(wf, None, options)
        return result, events

    result, events = anyio.run(main)
    assert result.status.value == "cancelled"
    assert result.exit_code == 130
    assert result.steps["first"].status is StepStatus.COMPLETED
    assert result.steps["hang"].status is StepStatus.FAILED
    assert "cancelled" in (result.steps["hang"].error or "")
    assert result.steps["after"].status is not StepStatus.COMPLETED
    assert isinstance(events[-1], RunFinished) and events[-1].status.value == "cancelled"
    assert wait_no_tagged(run_id) == []
