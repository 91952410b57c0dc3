"""Property test: random DAG workflows with random failures, retries, skips, trigger rules
and concurrency limits always terminate, respect dependencies and the concurrency limit,
and end every step in a status its trigger rule allows.

The oracle below is written from FORMAT.md, not from the executor's code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from conftest import Outcome, make_workflow, run
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

from wfctl.events import StepStateChanged

KINDS = ("noop", "sleep", "fail")
RULES = ("all_success", "all_done", "none_failed", "one_success")


@dataclass(frozen=True)
class StepSpec:
    step_id: str
    kind: str
    seconds: float
    deps: tuple[str, ...]
    rule: str
    max_attempts: int
    when_false: bool
    continue_on_failure: bool


@dataclass(frozen=True)
class Spec:
    steps: tuple[StepSpec, ...]
    limit: int

    def to_yaml(self) -> str:
        steps = []
        for s in self.steps:
            raw: dict[str, object] = {"step_id": s.step_id, "action": s.kind}
            if s.kind == "sleep":
                raw["with"] = {"seconds": s.seconds}
            elif s.kind == "fail":
                raw["with"] = {"message": f"{s.step_id} failed"}
            if s.deps:
                raw["dependencies"] = list(s.deps)
            if s.rule != "all_success" or s.deps:
                raw["trigger_rule"] = s.rule
            raw["retry_policy"] = {
                "max_attempts": s.max_attempts,
                "initial_delay": 0,
                "continue_on_failure": s.continue_on_failure,
            }
            if s.when_false:
                raw["when"] = "false"
            steps.append(raw)
        doc = {
            "workflow_id": "prop",
            "name": "property",
            "timeout": 60,
            "max_parallel_steps": self.limit,
            "steps": steps,
        }
        # JSON is YAML: one line per step keeps failures readable.
        return json.dumps(doc, indent=1)


@st.composite
def specs(draw: st.DrawFn) -> Spec:
    n = draw(st.integers(3, 15))
    steps: list[StepSpec] = []
    for i in range(n):
        earlier = [f"s{j}" for j in range(i)]
        deps = (
            draw(st.lists(st.sampled_from(earlier), unique=True, max_size=min(3, i)))
            if earlier
            else []
        )
        steps.append(
            StepSpec(
                step_id=f"s{i}",
                kind=draw(st.sampled_from(KINDS)),
                seconds=draw(st.sampled_from([0, 0.005, 0.01, 0.02])),
                deps=tuple(deps),
                rule=draw(st.sampled_from(RULES)),
                max_attempts=draw(st.integers(1, 3)),
                when_false=draw(st.integers(0, 5)) == 0,
                continue_on_failure=draw(st.booleans()),
            )
        )
    return Spec(tuple(steps), draw(st.integers(1, 4)))


def rule_allows(rule: str, deps: list[str]) -> bool:
    """May a step with this trigger rule run, given its dependencies' final statuses?"""
    if not deps:
        return True
    if rule == "all_success":
        return all(s == "completed" for s in deps)
    if rule == "none_failed":
        return all(s != "failed" for s in deps)
    if rule == "one_success":
        return any(s == "completed" for s in deps)
    assert rule == "all_done"
    return True


def check_run(spec: Spec, out: Outcome) -> None:
    statuses = out.statuses()
    by_id = {s.step_id: s for s in spec.steps}

    # 1. every step ended
    assert all(v in ("completed", "failed", "skipped") for v in statuses.values()), statuses

    # 2. no step is decided (started or skipped) before its dependencies ended
    first_event: dict[str, int] = {}
    for i, e in enumerate(out.events):
        if isinstance(e, StepStateChanged):
            first_event.setdefault(e.step_id, i)
    for s in spec.steps:
        assert s.step_id in first_event, f"{s.step_id} has no event"
        for dep in s.deps:
            assert first_event[s.step_id] > out.end_index(dep), (s.step_id, dep)

    # 3. the concurrency limit holds
    assert out.max_running() <= spec.limit

    # 4. every status is consistent with the trigger rule and the dependencies' statuses
    fatal_at = [
        out.end_index(s.step_id)
        for s in spec.steps
        if s.kind == "fail" and not s.continue_on_failure and statuses[s.step_id] == "failed"
    ]
    for s in spec.steps:
        status = statuses[s.step_id]
        record = out.record(s.step_id)
        allowed = rule_allows(s.rule, [statuses[d] for d in s.deps])
        running_events = out.trail(s.step_id).count("running")
        if status == "skipped":
            assert record.reason, f"{s.step_id} skipped without a reason"
            assert running_events == 0
            if allowed and not s.when_false:
                # Only the fail-fast rule may skip a runnable step: a failure that fails
                # the run happened before it was decided, and all_done is exempt.
                assert s.rule != "all_done", (s.step_id, record.reason)
                assert any(at < out.end_index(s.step_id) for at in fatal_at), (
                    s.step_id,
                    record.reason,
                )
            elif allowed and s.when_false and not fatal_at:
                assert "when" in record.reason
        else:
            assert allowed, f"{s.step_id} ran although {s.rule} forbids it"
            assert not s.when_false, f"{s.step_id} ran although its `when` is false"
            expected = "failed" if s.kind == "fail" else "completed"
            assert status == expected, (s.step_id, status)
            attempts = s.max_attempts if s.kind == "fail" else 1
            assert len(record.attempts) == attempts, (s.step_id, record.attempts)
            assert running_events == attempts
            assert len(out.retries(s.step_id)) == attempts - 1
        if allowed and not s.when_false and not fatal_at:
            assert status != "skipped", (s.step_id, record.reason)

    # 5. the run's status follows from the failures
    if fatal_at:
        assert out.status == "failed" and out.exit_code == 1
    else:
        assert out.status == "completed" and out.exit_code == 0, out.result.error
    assert set(by_id) == set(statuses)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(spec=specs())
def test_random_dags_run_consistently(spec: Spec) -> None:
    text = spec.to_yaml()
    note(text)
    out = run(make_workflow(text))
    note(repr(out.statuses()))
    check_run(spec, out)
    event(f"run {out.status}")
    if any("run failed" in (r.reason or "") for r in out.result.steps.values()):
        event("fail-fast skip")
    if out.retries():
        event("retried")
