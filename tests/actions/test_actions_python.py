"""The `python` action: sync and async functions, errors, JSON output, cancellation."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from wfctl.actions import ActionContext, ActionError, get_action
from wfctl.actions.python_call import PythonAction
from wfctl.secrets import Masker

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def data_on_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(DATA))


def make_ctx(tmp_path: Path, secrets: dict[str, str] | None = None) -> ActionContext:
    secrets = secrets or {}
    return ActionContext(
        run_id="run1",
        step_id="step1",
        attempt=1,
        idempotency_key="run1:step1",
        workdir=tmp_path,
        secret_env=secrets,
        masker=Masker(secrets.values()),
    )


async def call(tmp_path: Path, function: str, **more: Any) -> Any:
    return await PythonAction().run({"function": function, **more}, make_ctx(tmp_path))


async def failure(tmp_path: Path, function: str, **more: Any) -> ActionError:
    with pytest.raises(ActionError) as info:
        await call(tmp_path, function, **more)
    return info.value


@pytest.mark.anyio
async def test_sync_function_with_args_and_kwargs(tmp_path: Path) -> None:
    assert await call(tmp_path, "pyfuncs:add", args=[2], kwargs={"b": 3}) == 5


@pytest.mark.anyio
async def test_sync_function_runs_off_the_event_loop_thread(tmp_path: Path) -> None:
    out = await call(tmp_path, "pyfuncs:describe", args=[1, "x"], kwargs={"k": True})
    assert out["args"] == [1, "x"]
    assert out["kwargs"] == {"k": True}
    assert out["thread"] == "wfctl-python-step"


@pytest.mark.anyio
async def test_async_function_is_awaited(tmp_path: Path) -> None:
    assert await call(tmp_path, "pyfuncs:async_add", args=[1, 2]) == 3


@pytest.mark.anyio
async def test_async_callable_object_and_attribute_path(tmp_path: Path) -> None:
    assert await call(tmp_path, "pyfuncs:doubler", args=[21]) == 42
    assert await call(tmp_path, "pyfuncs:Greeter.hello", args=["bob"]) == "hello bob"


@pytest.mark.anyio
async def test_exception_becomes_retryable_error(tmp_path: Path) -> None:
    err = await failure(tmp_path, "pyfuncs:boom", args=["oops"])
    assert err.kind == "error"
    assert err.retryable is True
    assert str(err) == "ValueError: oops"


@pytest.mark.anyio
async def test_action_error_from_the_function_passes_through(tmp_path: Path) -> None:
    err = await failure(tmp_path, "pyfuncs:custom_failure")
    assert (err.kind, err.retryable, err.message) == ("http_status", False, "the service said no")


@pytest.mark.anyio
async def test_system_exit_is_a_step_failure_not_an_exit(tmp_path: Path) -> None:
    err = await failure(tmp_path, "pyfuncs:exits")
    assert err.message == "SystemExit: 3"


@pytest.mark.anyio
async def test_non_json_output_is_rejected(tmp_path: Path) -> None:
    err = await failure(tmp_path, "pyfuncs:returns_object")
    assert err.retryable is False
    assert err.message.startswith("step output is not JSON-serialisable: Object of type object")
    err = await failure(tmp_path, "pyfuncs:returns_nan")
    assert err.message.startswith("step output is not JSON-serialisable")


@pytest.mark.anyio
async def test_output_is_normalised_through_json(tmp_path: Path) -> None:
    assert await call(tmp_path, "pyfuncs:returns_tuple") == [1, [2, 3]]


@pytest.mark.anyio
async def test_secrets_in_output_and_errors_are_masked(tmp_path: Path) -> None:
    ctx = make_ctx(tmp_path, {"TOKEN": "hunter22"})
    out = await PythonAction().run(
        {"function": "pyfuncs:returns_secret", "args": ["hunter22"]}, ctx
    )
    assert out == {"token": "***", "nested": ["Bearer ***"]}
    with pytest.raises(ActionError) as info:
        await PythonAction().run({"function": "pyfuncs:boom", "args": ["hunter22 leaked"]}, ctx)
    assert info.value.message == "ValueError: *** leaked"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("wfctl_no_such_module:f", "cannot import module 'wfctl_no_such_module'"),
        ("pyfuncs:nope", "has no attribute 'nope'"),
        ("pyfuncs:not_callable", "is not callable"),
        ("pyfuncs_broken:f", "RuntimeError: this module is broken on purpose"),
        ("pyfuncs_missing_dep:f", "importing module 'pyfuncs_missing_dep' failed"),
    ],
)
async def test_import_problems_are_not_retryable(tmp_path: Path, ref: str, expected: str) -> None:
    err = await failure(tmp_path, ref)
    assert err.retryable is False
    assert expected in err.message


@pytest.mark.anyio
@pytest.mark.parametrize("ref", ["pyfuncs", "pyfuncs:", ":add", "a:b:c", 42])
async def test_bad_function_reference_is_a_validation_error(tmp_path: Path, ref: Any) -> None:
    err = await failure(tmp_path, ref)
    assert (err.kind, err.retryable) == ("validation", False)


@pytest.mark.anyio
async def test_bad_args_are_validation_errors(tmp_path: Path) -> None:
    assert (await failure(tmp_path, "pyfuncs:add", args="1")).kind == "validation"
    assert (await failure(tmp_path, "pyfuncs:add", kwargs=[1])).kind == "validation"


@pytest.mark.anyio
async def test_cancelling_an_async_function_runs_its_cleanup(tmp_path: Path) -> None:
    import pyfuncs  # type: ignore[import-not-found]

    with anyio.move_on_after(0.2) as scope:
        await call(tmp_path, "pyfuncs:async_forever", args=["c1"])
    assert scope.cancelled_caught
    assert pyfuncs.EVENTS[-2:] == ["c1:start", "c1:cleanup"]


@pytest.mark.anyio
async def test_timeout_abandons_a_blocking_sync_function(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(TimeoutError):
        with anyio.fail_after(0.2):
            await call(tmp_path, "pyfuncs:sync_sleep", args=[3])
    assert time.monotonic() - start < 2  # the call was abandoned, not waited for


def test_registry_and_target() -> None:
    action = get_action("python")
    assert action.name == "python"
    assert action.target({"function": "pkg.mod:fn"}) == "python:pkg.mod:fn"


def test_works_under_plain_anyio_run(tmp_path: Path) -> None:
    async def main() -> Any:
        return await call(tmp_path, "pyfuncs:add", args=[40, 2])

    assert anyio.run(main, backend="asyncio") == 42


def test_arguments_are_parsed_once_into_a_frozen_record() -> None:
    import dataclasses

    from wfctl.actions.python_call import PythonArgs, parse_python_args

    spec = parse_python_args({"function": "pkg.mod:fn", "args": [1, 2], "kwargs": {"k": 3}})
    assert spec == PythonArgs("pkg.mod:fn", (1, 2), {"k": 3})
    assert parse_python_args({"function": "m:f"}) == PythonArgs("m:f", (), {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.function = "x:y"  # type: ignore[misc]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "call_with",
    [
        {"function": "pyfuncs:add", "args": [2], "kwargs": {"b": 3}},
        {"function": "pyfuncs:returns_tuple"},
        {"function": "pyfuncs:returns_secret", "args": ["s3cr3t"]},
    ],
)
async def test_run_blocking_gives_what_run_gives(tmp_path: Path, call_with: Any) -> None:
    # A Ray worker runs a sync function on its own thread; the output must not differ.
    ctx = make_ctx(tmp_path, {"TOKEN": "s3cr3t"})
    action = PythonAction()
    assert action.run_blocking(call_with, ctx) == await action.run(call_with, ctx)


def test_run_blocking_fails_as_run_does_and_leaves_async_functions_to_run(
    tmp_path: Path,
) -> None:
    action, ctx = PythonAction(), make_ctx(tmp_path)
    with pytest.raises(ActionError) as info:
        action.run_blocking({"function": "pyfuncs:boom"}, ctx)
    assert (info.value.message, info.value.kind) == ("ValueError: bad input", "error")
    with pytest.raises(ActionError) as missing:
        action.run_blocking({"function": "no_such_module_here:f"}, ctx)
    assert not missing.value.retryable
    async_call = {"function": "pyfuncs:async_add", "args": [1]}
    assert action.run_blocking(async_call, ctx) is NotImplemented
