"""wfctl.model: one typed body per step type, and defaults that come from the schema."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from wfctl.document.loader import load_text
from wfctl.format.schema import load_schema
from wfctl.model import (
    Agent,
    ApprovalBody,
    Call,
    CircuitBreakerPolicy,
    ConditionalBody,
    ForEachBody,
    LoopBody,
    ParallelBody,
    ReactBody,
    RetryPolicy,
    StepType,
    build_workflow,
)

EVERY_TYPE = """
workflow_id: every-type
name: Every step type
steps:
  - step_id: act
    action: noop
  - step_id: group
    step_type: parallel
    parallel_steps:
      - {step_id: child, action: noop}
  - step_id: choose
    step_type: conditional
    conditions:
      - {when: "true", next_steps: [later]}
  - {step_id: later, action: noop}
  - step_id: again
    step_type: loop
    action: noop
    loop_condition: "loop.iteration < 2"
  - step_id: each
    step_type: loop
    action: noop
    for_each: [1, 2]
  - step_id: gate
    step_type: human_approval
    with: {message: "ok?", approvers: [alice]}
  - step_id: think
    step_type: react
    with:
      model: "openai:gpt-test"
      prompt: "hi"
      tools: [{name: t, action: noop}]
"""


def _schema_defaults(definition: str | None) -> dict[str, Any]:
    schema = load_schema()
    node = schema if definition is None else schema["$defs"][definition]
    return {k: p["default"] for k, p in node["properties"].items() if "default" in p}


def _build(text: str) -> Any:
    return build_workflow(load_text(text, "every.yaml"))


def test_each_step_type_has_its_own_typed_body() -> None:
    wf = _build(EVERY_TYPE)
    bodies = {sid: type(s.body) for sid, s in wf.all_steps.items()}
    assert bodies == {
        "act": Call,
        "group": ParallelBody,
        "child": Call,
        "choose": ConditionalBody,
        "later": Call,
        "again": LoopBody,
        "each": ForEachBody,
        "gate": ApprovalBody,
        "think": ReactBody,
    }
    assert wf.all_steps["group"].children == (wf.all_steps["child"],)
    assert wf.all_steps["later"].dependencies == ("choose",)  # a branch target depends on it
    assert wf.all_steps["gate"].body.approvers == ("alice",)  # type: ignore[union-attr]
    react = wf.all_steps["think"].body
    assert isinstance(react, ReactBody) and react.model == "openai:gpt-test"
    assert [(t.name, t.action, t.step) for t in react.tools] == [("t", "noop", None)]
    assert wf.all_steps["each"].body.items == (1, 2)  # type: ignore[union-attr]
    assert wf.all_steps["again"].step_type is StepType.LOOP


@pytest.mark.parametrize(
    ("cls", "definition"),
    [(RetryPolicy, "retry_policy"), (CircuitBreakerPolicy, "circuit_breaker"), (Agent, "agent")],
)
def test_dataclass_defaults_match_the_schema(cls: type, definition: str) -> None:
    wanted = _schema_defaults(definition)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    checked = 0
    for name, default in wanted.items():
        field = fields.get("with_" if name == "with" else name)
        if field is None:
            continue
        value = (
            field.default
            if field.default_factory is dataclasses.MISSING
            else field.default_factory()
        )
        if isinstance(value, frozenset):
            value, default = sorted(value), sorted(default)
        assert value == default, f"{cls.__name__}.{field.name}"
        checked += 1
    assert checked >= 2


def test_built_defaults_come_from_the_schema() -> None:
    wf = _build(EVERY_TYPE)
    top = _schema_defaults(None)
    assert wf.timeout == top["timeout"]
    assert wf.max_parallel_steps == top["max_parallel_steps"]
    assert wf.version == top["version"]
    assert wf.retry_policy == RetryPolicy(
        **{
            k: v
            for k, v in _schema_defaults("retry_policy").items()
            if k not in ("retry_on", "backoff")
        },
        retry_on=frozenset(_schema_defaults("retry_policy")["retry_on"]),
    )
    step = _schema_defaults("step")
    act = wf.all_steps["act"]
    assert act.trigger_rule.value == step["trigger_rule"]
    assert act.metrics_enabled is step["metrics_enabled"]
    again = wf.all_steps["again"].body
    assert isinstance(again, LoopBody)
    assert again.max_iterations == step["loop_max_iterations"]
    assert again.delay == step["loop_delay"]
    each = wf.all_steps["each"].body
    assert isinstance(each, ForEachBody) and each.concurrency == step["loop_concurrency"]


def test_a_policy_built_in_python_never_waits_past_the_schemas_bound() -> None:
    import random

    from wfctl.format import schema
    from wfctl.model.policies import MAX_RETRY_DELAY

    rng = random.Random(1)
    huge = RetryPolicy(initial_delay=1e300, max_delay=1e308, backoff_factor=1e300, jitter=False)
    assert huge.delay(1, rng) == huge.delay(10**6, rng) == MAX_RETRY_DELAY == 31_536_000
    for field in ("initial_delay", "max_delay"):
        node = schema.node(f"/$defs/retry_policy/properties/{field}")
        assert node["maximum"] == MAX_RETRY_DELAY


def test_retry_delay_grows_by_backoff_without_overflowing() -> None:
    import random

    rng = random.Random(1)
    policy = RetryPolicy(initial_delay=1.0, max_delay=30.0, jitter=False)
    assert [policy.delay(n, rng) for n in (1, 2, 3, 6)] == [1.0, 2.0, 4.0, 30.0]
    assert policy.delay(1100, rng) == 30.0  # 2**1099 would overflow a float
    linear = dataclasses.replace(policy, backoff="linear")  # type: ignore[arg-type]
    assert linear.delay(3, rng) == 3.0
