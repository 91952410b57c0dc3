"""noop, set, sleep, fail, the ActionError type, and the action registry."""

from __future__ import annotations

import pickle
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from wfctl.actions import (
    ERROR_KINDS,
    Action,
    ActionContext,
    ActionError,
    ActionLoadError,
    Capability,
    UnknownActionError,
    available_action_names,
    builtin_action_names,
    capabilities_of,
    get_action,
    register_action,
    registry,
    unregister_action,
)
from wfctl.secrets import Masker

BUILTINS = {"shell", "python", "http", "noop", "set", "sleep", "fail"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_ctx(tmp_path: Path, secrets: tuple[str, ...] = ()) -> ActionContext:
    return ActionContext(
        run_id="r",
        step_id="s",
        attempt=1,
        idempotency_key="r:s",
        workdir=tmp_path,
        secret_env={},
        masker=Masker(secrets),
    )


async def run(tmp_path: Path, name: str, args: dict[str, Any], *secrets: str) -> Any:
    return await get_action(name).run(args, make_ctx(tmp_path, secrets))


# --- builtins ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_noop(tmp_path: Path) -> None:
    assert await run(tmp_path, "noop", {}) is None


@pytest.mark.anyio
async def test_set_returns_a_copy_of_values_with_secrets_masked(tmp_path: Path) -> None:
    values = {"a": 1, "b": {"c": [1, "x"]}, "token": "Bearer p4ssw0rd"}
    out = await run(tmp_path, "set", {"values": values}, "p4ssw0rd")
    assert out == {"a": 1, "b": {"c": [1, "x"]}, "token": "Bearer ***"}
    assert out is not values
    assert await run(tmp_path, "set", {}) == {}


@pytest.mark.anyio
async def test_set_rejects_non_maps(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        await run(tmp_path, "set", {"values": [1, 2]})
    assert (info.value.kind, info.value.retryable) == ("validation", False)


@pytest.mark.anyio
async def test_sleep(tmp_path: Path) -> None:
    start = time.monotonic()
    assert await run(tmp_path, "sleep", {"seconds": 0.1}) == {"slept": 0.1}
    assert time.monotonic() - start >= 0.09
    assert await run(tmp_path, "sleep", {"seconds": "0"}) == {"slept": 0.0}


@pytest.mark.anyio
async def test_sleep_is_cancellable(tmp_path: Path) -> None:
    start = time.monotonic()
    with anyio.move_on_after(0.1):
        await run(tmp_path, "sleep", {"seconds": 30})
    assert time.monotonic() - start < 2


@pytest.mark.anyio
@pytest.mark.parametrize("seconds", [None, -1, "soon", float("nan"), float("inf"), True, [1]])
async def test_sleep_rejects_bad_durations(tmp_path: Path, seconds: Any) -> None:
    with pytest.raises(ActionError) as info:
        await run(tmp_path, "sleep", {"seconds": seconds})
    assert info.value.kind == "validation"


@pytest.mark.anyio
async def test_fail(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        await run(tmp_path, "fail", {})
    assert (info.value.message, info.value.kind, info.value.retryable) == (
        "failed by the fail action",
        "error",
        True,
    )
    with pytest.raises(ActionError) as info:
        await run(tmp_path, "fail", {"message": "boom hunter22", "kind": "timeout"}, "hunter22")
    assert (info.value.message, info.value.kind) == ("boom ***", "timeout")
    with pytest.raises(ActionError) as info:
        await run(tmp_path, "fail", {"kind": "nonsense"})
    assert info.value.kind == "validation"


def test_action_error() -> None:
    err = ActionError("m", kind="exit_code", output={"x": 1}, retryable=False)
    assert str(err) == "m"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message, copy.kind, copy.output, copy.retryable) == (
        "m",
        "exit_code",
        {"x": 1},
        False,
    )
    assert ActionError("m").kind == "error"
    assert {
        "error", "timeout", "exit_code", "http_status", "connection", "validation",
        "circuit_open", "cancelled", "worker_lost", "overloaded", "rate_limited",
    } == ERROR_KINDS  # fmt: skip


# --- registry ----------------------------------------------------------------------------


def test_builtin_names_import_nothing_heavy() -> None:
    code = (
        "import sys\n"
        "from wfctl.actions import builtin_action_names\n"
        "names = builtin_action_names()\n"
        "heavy = [m for m in ('anyio', 'httpx', 'wfctl.actions.shell', 'wfctl.actions.http',"
        " 'wfctl.actions.python_call', 'wfctl.actions.builtin') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print(','.join(sorted(names)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.strip().split(",")) == BUILTINS


def test_get_action_returns_cached_builtins() -> None:
    assert builtin_action_names() == BUILTINS
    for name in BUILTINS:
        action = get_action(name)
        assert action.name == name
        assert isinstance(action, Action)
        assert get_action(name) is action


def test_unknown_action_lists_known_names() -> None:
    with pytest.raises(UnknownActionError) as info:
        get_action("shel")
    assert isinstance(info.value, KeyError)
    assert str(info.value).startswith("unknown action 'shel'; known actions: ")
    assert "shell" in str(info.value)


PLUGIN = """
from wfctl.actions.base import ActionError


class EchoAction:
    name = "echo"

    async def run(self, args, ctx):
        return {"echo": dict(args)}

    def target(self, args):
        return "echo"


def not_an_action():
    return 1


class Shadow(EchoAction):
    name = "shell"


raise_on_import = False
"""


@pytest.fixture
def plugin_dist(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A real installed distribution (a .dist-info on sys.path) declaring entry points."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "wfctl_test_plugin.py").write_text(PLUGIN)
    (site / "wfctl_test_broken_plugin.py").write_text("raise ImportError('plugin is broken')\n")
    info = site / "wfctl_test_plugin-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: wfctl-test-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[wfctl.actions]\n"
        "echo = wfctl_test_plugin:EchoAction\n"
        "bogus = wfctl_test_plugin:not_an_action\n"
        "broken = wfctl_test_broken_plugin:Anything\n"
        "shell = wfctl_test_plugin:Shadow\n"
    )
    monkeypatch.syspath_prepend(str(site))
    registry._reset_for_tests()
    yield site
    registry._reset_for_tests()
    for mod in ("wfctl_test_plugin", "wfctl_test_broken_plugin"):
        sys.modules.pop(mod, None)


@pytest.mark.anyio
async def test_entry_point_plugins(plugin_dist: Path, tmp_path: Path) -> None:
    names = available_action_names()
    assert {"echo", "bogus", "broken"} | BUILTINS <= names
    assert "wfctl_test_plugin" not in sys.modules  # metadata only
    echo = get_action("echo")
    assert await echo.run({"a": 1}, make_ctx(tmp_path)) == {"echo": {"a": 1}}
    assert get_action("echo") is echo
    assert get_action("shell").name == "shell"  # built-ins win over plugins
    assert type(get_action("shell")).__module__ == "wfctl.actions.shell"
    with pytest.raises(ActionLoadError, match="is not an action"):
        get_action("bogus")
    with pytest.raises(ActionLoadError, match="failed to load: ImportError: plugin is broken"):
        get_action("broken")
    with pytest.raises(UnknownActionError) as info:
        get_action("nope")
    assert "echo" in str(info.value)


# --- capabilities ------------------------------------------------------------------------

EXPECTED_CAPABILITIES = {
    "shell": {
        Capability.OUTSIDE_EFFECTS,
        Capability.PROCESS,
        Capability.STREAMS_OUTPUT,
        Capability.REMOTE,
    },
    "http": {Capability.OUTSIDE_EFFECTS, Capability.REMOTE},
    "python": {Capability.OUTSIDE_EFFECTS, Capability.REMOTE},
    "noop": set(),
    "set": set(),
    "sleep": set(),
    "fail": set(),
}


def test_every_builtin_declares_its_capabilities() -> None:
    assert set(EXPECTED_CAPABILITIES) == BUILTINS
    for name, expected in EXPECTED_CAPABILITIES.items():
        action = get_action(name)
        declared = type(action).__dict__.get("capabilities")  # on the class, not inherited
        assert isinstance(declared, frozenset), name
        assert all(isinstance(c, Capability) for c in declared), name
        assert capabilities_of(action) == expected, name


def test_no_outside_effects_follows_the_declarations() -> None:
    from wfctl.actions.builtin import NO_OUTSIDE_EFFECTS

    pure = {n for n in BUILTINS if Capability.OUTSIDE_EFFECTS not in capabilities_of(get_action(n))}
    assert pure == NO_OUTSIDE_EFFECTS == {"noop", "set", "sleep", "fail"}


class _Undeclared:
    name = "wfctl-test-undeclared"

    async def run(self, args: Any, ctx: ActionContext) -> Any:
        return None

    def target(self, args: Any) -> str:
        return "x"


class _Pure(_Undeclared):
    name = "wfctl-test-pure"
    capabilities = frozenset[Capability]()


def test_a_plugin_that_declares_nothing_has_outside_effects() -> None:
    action = register_action(_Undeclared())
    try:
        assert capabilities_of(get_action(action.name)) == {Capability.OUTSIDE_EFFECTS}
        assert capabilities_of(register_action(_Pure())) == frozenset()
    finally:
        unregister_action(_Undeclared.name)
        unregister_action(_Pure.name)


@pytest.mark.parametrize(
    ("declared", "message"),
    [
        ({"telepathy"}, "unknown capabilities 'telepathy'"),
        ({Capability.PROCESS, 3}, "unknown capabilities 3"),
        ("process", "must be a set of Capability values"),
        (Capability.PROCESS, "must be a set of Capability values"),
    ],
)
def test_unknown_capabilities_fail_the_load(declared: Any, message: str) -> None:
    action = _Undeclared()
    action.capabilities = declared  # type: ignore[attr-defined]
    with pytest.raises(ActionLoadError, match=message):
        register_action(action)
    assert action.name not in available_action_names()
