"""The engine's seams: the step-type dispatch table, containers in the plan, the Backend
that runs each attempt, RunOptions, and traits that actions declare (never names)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import anyio
import pytest
from conftest import make_workflow, run

from wfctl.actions import registry
from wfctl.actions.base import Action, ActionContext, ActionError, Capability
from wfctl.compile.plan import compile_plan
from wfctl.engine import RunOptions, run_workflow
from wfctl.engine.backends.local import LocalBackend
from wfctl.engine.catalog import ActionCatalog
from wfctl.engine.steps import RUNNERS, SLOTTED
from wfctl.events import EventBus, StepOutputLine
from wfctl.model import StepType


def test_every_step_type_has_a_runner() -> None:
    assert set(RUNNERS) == set(StepType)
    assert {StepType.ACTION, StepType.LOOP, StepType.REACT} == SLOTTED


def test_engine_exports_the_names_an_embedder_needs() -> None:
    import wfctl.engine as engine
    from wfctl.records import ApprovalDecision

    for name in engine.__all__:
        assert getattr(engine, name) is not None
    assert engine.ApprovalDecision is ApprovalDecision
    assert engine.ActionError is ActionError
    with pytest.raises(AttributeError):
        engine.nothing_here  # noqa: B018


def test_loop_and_for_each_bodies_are_containers_with_their_own_limit() -> None:
    wf = make_workflow(
        """
        steps:
          - step_id: each
            step_type: loop
            for_each: [1, 2, 3]
            loop_concurrency: 2
            action: noop
          - step_id: group
            step_type: parallel
            parallel_steps:
              - {step_id: again, step_type: loop, action: noop, loop_condition: "false"}
        """
    )
    plan = compile_plan(wf)
    assert set(plan.bodies) == {"each", "again"}
    assert plan.bodies["each"].limit == 2
    assert [s.step_id for s in plan.bodies["each"].steps] == ["each"]
    assert plan.bodies["again"].limit == 1
    assert plan.levels["group"].limit is None


class _CountingBackend:
    """Runs attempts locally, counting them and streaming one line of its own."""

    name = "counting"

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []
        self._local = LocalBackend()

    async def run(
        self, action: Action, args: Mapping[str, Any], ctx: ActionContext, timeout: float | None
    ) -> Any:
        self.calls.append((ctx.step_id, ctx.attempt))
        if ctx.on_output is not None:
            ctx.on_output(f"on {self.name}")
        return await self._local.run(action, args, ctx, timeout)


def test_every_attempt_goes_through_the_backend_in_the_options() -> None:
    wf = make_workflow(
        """
        retry_policy: {max_attempts: 2, initial_delay: 0, jitter: false}
        steps:
          - {step_id: a, action: noop}
          - {step_id: b, action: fail, dependencies: [a], retry_policy: {max_attempts: 2}}
          - {step_id: each, step_type: loop, for_each: [1, 2], action: noop}
        """
    )
    backend = _CountingBackend()
    outcome = run(wf, backend=backend)
    assert outcome.status == "failed"
    assert sorted(backend.calls) == [("a", 1), ("b", 1), ("b", 2), ("each", 1), ("each", 2)]
    lines = [e.line for e in outcome.of(StepOutputLine) if e.step_id == "a"]
    assert lines == ["on counting"]


def test_a_backend_that_raises_fails_the_attempt_not_the_run() -> None:
    class Broken:
        name = "broken"

        async def run(self, *args: Any) -> Any:
            raise RuntimeError("node lost")

    outcome = run(make_workflow("steps:\n  - {step_id: a, action: noop}\n"), backend=Broken())
    assert outcome.status == "failed"
    assert outcome.record("a").error == "RuntimeError: node lost"


def test_run_workflow_takes_inputs_and_one_options_object() -> None:
    wf = make_workflow(
        """
        inputs: {who: {type: string}}
        steps:
          - {step_id: hi, action: set, with: {values: {greeting: "hi {{ inputs.who }}"}}}
        """
    )
    bus = EventBus()
    seen: list[Any] = []
    bus.subscribe(seen.append)
    options = RunOptions(run_id="r-1", bus=bus, env={})
    result = anyio.run(run_workflow, wf, {"who": "ann"}, options)
    assert result.run_id == "r-1"
    assert result.vars["greeting"] == "hi ann"
    assert seen and options.with_(run_id="r-2").run_id == "r-2"


class _Declared:
    """A third-party action declaring its traits."""

    def __init__(self, name: str, *, sets_vars: bool, capabilities: Any) -> None:
        self.name = name
        self.sets_vars = sets_vars
        if capabilities is not None:
            self.capabilities = capabilities

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        return dict(args)

    def target(self, args: Mapping[str, Any]) -> str:
        return self.name


@pytest.fixture
def declared() -> Iterator[None]:
    actions = [
        _Declared("store_it", sets_vars=True, capabilities=frozenset()),
        _Declared("spawn_it", sets_vars=False, capabilities=frozenset({Capability.PROCESS})),
        _Declared("silent_one", sets_vars=False, capabilities=None),
    ]
    for action in actions:
        registry.register_action(action)
    yield
    for action in actions:
        registry.unregister_action(action.name)


@pytest.mark.usefixtures("declared")
def test_an_action_that_declares_sets_vars_merges_its_output() -> None:
    wf = make_workflow(
        """
        steps:
          - {step_id: a, action: store_it, with: {colour: blue}}
          - {step_id: b, action: spawn_it, with: {size: 3}}
        """
    )
    outcome = run(wf)
    assert outcome.status == "completed"
    assert outcome.result.vars == {"colour": "blue"}


@pytest.mark.usefixtures("declared")
def test_capabilities_decide_secrets_and_journal_barriers() -> None:
    catalog = ActionCatalog()
    assert not catalog.has_outside_effects("store_it")
    assert catalog.has_outside_effects("silent_one")  # declares nothing: assume effects
    assert catalog.has_outside_effects("no_such_action")
    assert catalog.starts_processes("spawn_it") and not catalog.starts_processes("store_it")
    assert catalog.sets_vars("set") and not catalog.sets_vars("noop")
    assert not catalog.sets_vars(None)
    wf = make_workflow(
        """
        secrets: {token: TOKEN}
        steps:
          - {step_id: a, action: spawn_it, with: {t: "{{ secrets.token }}"}}
        """
    )
    outcome = run(wf, env={"TOKEN": "s3cret"})
    assert outcome.status == "failed"
    assert "secrets" in (outcome.record("a").error or "")


def test_the_react_action_needs_an_engine_for_its_tools() -> None:
    from wfctl.actions.react import ReactAction, missing_extra
    from wfctl.secrets import Masker

    if missing_extra():
        pytest.skip("the agents extra is not installed")
    ctx = ActionContext("r", "s", 1, "r:s", __import__("pathlib").Path(), {}, Masker.empty())
    args = {"model": "openai:gpt-4o-mini", "prompt": "hi", "tools": [{"name": "t"}]}
    with pytest.raises(ActionError, match="tools need an engine"):
        anyio.run(ReactAction().run, args, ctx)


def test_every_engine_module_imports_on_its_own_outside_an_event_loop() -> None:
    """A module-level anyio call (or an import cycle) breaks a fresh import."""
    import pkgutil
    import subprocess
    import sys

    import wfctl.engine

    names = sorted(m.name for m in pkgutil.walk_packages(wfctl.engine.__path__, "wfctl.engine."))
    assert "wfctl.engine.steps.loop" in names and "wfctl.engine.backends.local" in names
    for name in names:
        done = subprocess.run(
            [sys.executable, "-c", f"import {name}"], capture_output=True, text=True
        )
        assert done.returncode == 0, f"{name}: {done.stderr[-800:]}"
