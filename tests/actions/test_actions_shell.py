"""The `shell` action with real subprocesses: output, env, errors, and process cleanup."""

from __future__ import annotations

import os
import signal
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from wfctl.actions import ActionContext, ActionError, _shell_output, get_action
from wfctl.actions.shell import ShellAction, find_tagged_processes
from wfctl.secrets import Masker


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_ctx(
    tmp_path: Path,
    secrets: dict[str, str] | None = None,
    on_output: Callable[[str], None] | None = None,
    attempt: int = 1,
) -> ActionContext:
    secrets = secrets or {}
    return ActionContext(
        run_id="run-42",
        step_id="build",
        attempt=attempt,
        idempotency_key="run-42:build",
        workdir=tmp_path,
        secret_env=secrets,
        masker=Masker(secrets.values()),
        on_output=on_output,
    )


async def sh(tmp_path: Path, command: Any, **more: Any) -> Any:
    return await ShellAction().run({"command": command, **more}, make_ctx(tmp_path))


def alive(pid: int) -> bool:
    """True if the process exists and is not a zombie."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return data[data.rfind(b")") + 2 :].split()[0] not in (b"Z", b"X")


async def wait_for_file_lines(path: Path, count: int, timeout: float = 5.0) -> list[str]:
    with anyio.fail_after(timeout):
        while True:
            if path.exists():
                lines = path.read_text().split()
                if len(lines) >= count:
                    return lines
            await anyio.sleep(0.02)


def _children() -> list[int]:
    """This process's child processes."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                data = (entry / "stat").read_bytes()
            except OSError:
                continue
            if int(data[data.rfind(b")") + 2 :].split()[1]) == me:
                found.append(int(entry.name))
    return found


def assert_all_gone(pids: list[int], tag: str, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not any(alive(p) for p in pids) and not find_tagged_processes(tag):
            return
        time.sleep(0.02)
    survivors = [p for p in pids if alive(p)] + find_tagged_processes(tag)
    for pid in survivors:  # don't leak them into the rest of the test session
        os.kill(pid, signal.SIGKILL)
    pytest.fail(f"processes survived: {survivors}")


# --- output -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_argv_list_runs_without_a_shell(tmp_path: Path) -> None:
    out = await sh(tmp_path, ["echo", "hello", "$(touch pwned)", "; rm -rf x"])
    assert out == {
        "stdout": "hello $(touch pwned) ; rm -rf x\n",
        "stderr": "",
        "exit_code": 0,
        "json": None,
    }
    assert not (tmp_path / "pwned").exists()


@pytest.mark.anyio
async def test_string_runs_through_sh_and_json_is_parsed(tmp_path: Path) -> None:
    out = await sh(tmp_path, """printf '{"a": [1, 2]}\\n'; echo warn >&2""")
    assert out["json"] == {"a": [1, 2]}
    assert out["stderr"] == "warn\n"
    assert (await sh(tmp_path, "echo 42"))["json"] == 42
    assert (await sh(tmp_path, "echo true"))["json"] is True
    assert (await sh(tmp_path, "echo hello world"))["json"] is None
    assert (await sh(tmp_path, "echo NaN"))["json"] is None
    assert (await sh(tmp_path, "echo '{broken'"))["json"] is None


@pytest.mark.anyio
async def test_stdin_and_cwd(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    out = await sh(tmp_path, ["sh", "-c", "cat; pwd"], stdin="line1\nline2\n", cwd="sub")
    assert out["stdout"] == f"line1\nline2\n{tmp_path / 'sub'}\n"


@pytest.mark.anyio
async def test_stdin_not_read_by_the_command_is_fine(tmp_path: Path) -> None:
    out = await sh(tmp_path, ["true"], stdin="x" * 2_000_000)
    assert out["exit_code"] == 0


@pytest.mark.anyio
async def test_stdin_defaults_to_devnull(tmp_path: Path) -> None:
    out = await sh(tmp_path, "cat; echo done")
    assert out["stdout"] == "done\n"


@pytest.mark.anyio
async def test_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WFCTL_TEST_INHERITED", "inherited")
    monkeypatch.setenv("WFCTL_TEST_REMOVED", "should be gone")
    ctx = make_ctx(tmp_path, secrets={"API_TOKEN": "tok-123456"}, attempt=3)
    script = (
        'echo "$WFCTL_TEST_INHERITED|$WFCTL_RUN_ID|$WFCTL_STEP_ID|$WFCTL_ATTEMPT|'
        '$WFCTL_IDEMPOTENCY_KEY|$MINE|${WFCTL_TEST_REMOVED-unset}|$NUM|$FLAG|${#WFCTL_PROC_TAG}"; '
        'test "$API_TOKEN" = tok-123456 && echo token-ok; echo "$API_TOKEN"'
    )
    out = await ShellAction().run(
        {
            "command": script,
            "env": {
                "MINE": "mine",
                "WFCTL_TEST_REMOVED": None,
                "NUM": 7,
                "FLAG": False,
                "WFCTL_PROC_TAG": "hijack",
            },
        },
        ctx,
    )
    assert out["stdout"] == (
        "inherited|run-42|build|3|run-42:build|mine|unset|7|false|32\ntoken-ok\n***\n"
    )


@pytest.mark.anyio
async def test_live_output_lines_are_masked_and_whole(tmp_path: Path) -> None:
    lines: list[str] = []
    ctx = make_ctx(tmp_path, secrets={"S": "abcdef"}, on_output=lines.append)
    script = "printf 'abc'; sleep 0.05; printf 'def\\n'; echo err-abcdef >&2; printf 'no newline'"
    out = await ShellAction().run({"command": script}, ctx)
    assert out["stdout"] == "***\nno newline"
    assert out["stderr"] == "err-***\n"
    assert sorted(lines) == sorted(["***", "err-***", "no newline"])
    assert not any("abc" in line for line in lines)


@pytest.mark.anyio
async def test_a_failing_output_callback_does_not_fail_the_step(tmp_path: Path) -> None:
    def broken(line: str) -> None:
        raise RuntimeError("live view bug")

    out = await ShellAction().run(
        {"command": "echo a; echo b"}, make_ctx(tmp_path, on_output=broken)
    )
    assert out["stdout"] == "a\nb\n"


@pytest.mark.anyio
async def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    out = await sh(tmp_path, "printf 'ok \\377\\n'")
    assert out["stdout"] == "ok \ufffd\n"


@pytest.mark.anyio
async def test_output_is_capped_keeping_the_tail(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_shell_output, "OUTPUT_CAP_CHARS", 1000)
    out = await sh(tmp_path, "seq 1 5000")
    assert out["stdout"].startswith("[wfctl: output truncated, first ")
    assert out["stdout"].endswith("4999\n5000\n")
    assert len(out["stdout"]) < 1200
    assert out["json"] is None


# --- failures ----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_non_ok_exit_code(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        await sh(tmp_path, "echo partial; echo first >&2; echo 'the real reason' >&2; exit 3")
    err = info.value
    assert err.kind == "exit_code"
    assert err.retryable is True
    assert err.message == "command exited with code 3: the real reason"
    assert err.output["exit_code"] == 3
    assert err.output["stdout"] == "partial\n"


@pytest.mark.anyio
async def test_ok_exit_codes(tmp_path: Path) -> None:
    out = await sh(tmp_path, "exit 3", ok_exit_codes=[0, 3])
    assert out["exit_code"] == 3
    with pytest.raises(ActionError):
        await sh(tmp_path, "exit 0", ok_exit_codes=[1])


@pytest.mark.anyio
async def test_killed_by_signal(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        await sh(tmp_path, "kill -9 $$")
    assert info.value.output["exit_code"] == -9
    assert "killed by SIGKILL" in info.value.message


@pytest.mark.anyio
async def test_command_not_found(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        await sh(tmp_path, ["wfctl-no-such-command", "x"])
    assert (info.value.kind, info.value.retryable) == ("error", False)
    assert "command not found: 'wfctl-no-such-command'" in info.value.message

    with pytest.raises(ActionError) as info:
        await sh(tmp_path, "wfctl-no-such-command x")
    assert (info.value.kind, info.value.retryable) == ("exit_code", False)
    assert "code 127 (command not found)" in info.value.message


@pytest.mark.anyio
async def test_not_executable(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    with pytest.raises(ActionError) as info:
        await sh(tmp_path, ["./script.sh"])
    assert (info.value.kind, info.value.retryable) == ("error", False)
    assert "not executable" in info.value.message
    script.chmod(0o755)
    assert (await sh(tmp_path, ["./script.sh"]))["stdout"] == "hi\n"


@pytest.mark.anyio
async def test_missing_cwd(tmp_path: Path) -> None:
    with pytest.raises(ActionError) as info:
        await sh(tmp_path, ["true"], cwd="nope")
    assert info.value.retryable is False
    assert "working directory does not exist" in info.value.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "args",
    [
        {"command": ""},
        {"command": []},
        {"command": {"a": 1}},
        {"command": ["echo", None]},
        {"command": "true", "env": {"A": [1]}},
        {"command": "true", "env": {"A=B": "x"}},
        {"command": "true", "env": "A=B"},
        {"command": "true", "stdin": 3},
        {"command": "true", "ok_exit_codes": ["0"]},
        {"command": "true", "cwd": 5},
    ],
)
async def test_invalid_arguments(tmp_path: Path, args: dict[str, Any]) -> None:
    with pytest.raises(ActionError) as info:
        await ShellAction().run(args, make_ctx(tmp_path))
    assert (info.value.kind, info.value.retryable) == ("validation", False)


# --- cleanup -----------------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancel_kills_the_whole_process_group(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = (
        f'echo "$WFCTL_PROC_TAG" > {pids}; echo $$ >> {pids}; '
        f"sleep 100 & echo $! >> {pids}; sleep 100"
    )
    async with anyio.create_task_group() as tg:
        tg.start_soon(sh, tmp_path, script)
        tag, *numbers = await wait_for_file_lines(pids, 3)
        procs = [int(n) for n in numbers]
        assert all(alive(p) for p in procs)
        # sh and both sleeps (the foreground one starts after the pid file is written).
        with anyio.fail_after(5):
            while len(find_tagged_processes(tag)) < 3:
                await anyio.sleep(0.01)
        tg.cancel_scope.cancel()
    # The cleanup waits until the processes are gone before the cancellation propagates.
    try:
        assert not any(alive(p) for p in procs)
        assert find_tagged_processes(tag) == []
    finally:
        assert_all_gone(procs, tag)


@pytest.mark.anyio
async def test_a_native_cancel_while_spawning_still_kills_the_group(tmp_path: Path) -> None:
    """The scheduler's asyncio.TaskGroup cancels its step tasks natively (anyio's shield
    cannot hold that off). Arriving while asyncio still connects the pipes, it once made
    asyncio SIGKILL the group leader alone and left the command's children running."""
    import asyncio

    pids = tmp_path / "pids"
    # The child does not hold the pipes: asyncio would wait for them to close.
    script = f'echo "$WFCTL_PROC_TAG" > {pids}; sleep 100 >/dev/null 2>&1 & echo $! >> {pids}; wait'
    task = asyncio.create_task(sh(tmp_path, script))
    deadline = time.monotonic() + 10
    while not _children():  # the task forks the command, then waits for its pipes
        assert time.monotonic() < deadline, "the command was not forked"
        await asyncio.sleep(0)
    # Blocking the loop keeps the spawn pending while the command starts its children.
    while not (pids.exists() and len(pids.read_text().split()) >= 2):
        assert time.monotonic() < deadline, "the command did not start"
        time.sleep(0.01)
    tag, number = pids.read_text().split()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    try:
        assert not alive(int(number))
        assert find_tagged_processes(tag) == []
    finally:
        assert_all_gone([int(number)], tag)


@pytest.mark.anyio
async def test_timeout_kills_a_setsid_grandchild(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f'echo "$WFCTL_PROC_TAG" > {pids}; setsid sleep 100 & echo $! >> {pids}; sleep 100'
    start = time.monotonic()
    async with anyio.create_task_group() as tg:

        async def watch() -> None:
            tag, pid = await wait_for_file_lines(pids, 2)
            watched.extend([tag, pid])

        watched: list[str] = []
        tg.start_soon(watch)
        with pytest.raises(TimeoutError), anyio.fail_after(1.0):
            await sh(tmp_path, script)
    tag, escaped = watched[0], int(watched[1])
    elapsed = time.monotonic() - start
    try:
        assert elapsed < 4
        assert not alive(escaped)
        assert find_tagged_processes(tag) == []
    finally:
        assert_all_gone([escaped], tag)


@pytest.mark.anyio
async def test_setsid_really_escapes_the_group(tmp_path: Path) -> None:
    """Sanity check for the test above: the grandchild is in another session and group."""
    pids = tmp_path / "pids"
    script = f"setsid sleep 100 & echo $! > {pids}; echo $$ >> {pids}; sleep 100"
    async with anyio.create_task_group() as tg:
        tg.start_soon(sh, tmp_path, script)
        escaped, leader = (int(p) for p in await wait_for_file_lines(pids, 2))
        await anyio.sleep(0.1)  # let setsid() run: poll below is bounded anyway
        with anyio.fail_after(3):
            while os.getpgid(escaped) == leader:
                await anyio.sleep(0.02)
        assert os.getsid(escaped) != os.getsid(leader)
        tg.cancel_scope.cancel()
    assert_all_gone([escaped, leader], "no-tag")


@pytest.mark.anyio
async def test_processes_ignoring_sigterm_get_sigkill_after_the_grace(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    script = f"trap '' TERM; sleep 100 & echo $! > {pids}; echo $$ >> {pids}; wait"
    action = ShellAction(term_grace=0.3)
    async with anyio.create_task_group() as tg:
        tg.start_soon(action.run, {"command": script}, make_ctx(tmp_path))
        procs = [int(p) for p in await wait_for_file_lines(pids, 2)]
        start = time.monotonic()
        tg.cancel_scope.cancel()
    elapsed = time.monotonic() - start
    try:
        assert 0.3 <= elapsed < 2.5
        assert not any(alive(p) for p in procs)
    finally:
        assert_all_gone(procs, "no-tag")


@pytest.mark.anyio
async def test_background_process_holding_the_pipes_does_not_hang_the_step(
    tmp_path: Path,
) -> None:
    pidfile = tmp_path / "pid"
    action = ShellAction(drain_seconds=0.3)
    start = time.monotonic()
    out = await action.run(
        {"command": f"sleep 30 & echo $! > {pidfile}; echo started"}, make_ctx(tmp_path)
    )
    assert time.monotonic() - start < 3
    assert out["stdout"] == "started\n"
    bg = int(pidfile.read_text())
    try:
        assert alive(bg)  # left running on success, on purpose
    finally:
        os.kill(bg, signal.SIGKILL)


@pytest.mark.anyio
async def test_concurrent_steps_are_independent(tmp_path: Path) -> None:
    results: dict[int, Any] = {}

    async def one(i: int) -> None:
        results[i] = await sh(tmp_path, f"sleep 0.2; echo {i}")

    start = time.monotonic()
    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(one, i)
    assert {i: r["json"] for i, r in results.items()} == {i: i for i in range(5)}
    assert time.monotonic() - start < 3


def test_registry_and_target(tmp_path: Path) -> None:
    action = get_action("shell")
    assert action.name == "shell"
    assert action.target({"command": "x"}) == "shell"

    async def main() -> Any:
        return await action.run({"command": ["echo", "plain anyio.run"]}, make_ctx(tmp_path))

    assert anyio.run(main, backend="asyncio")["stdout"] == "plain anyio.run\n"


# --- arguments ---------------------------------------------------------------------------


def test_arguments_are_parsed_once_into_a_frozen_record(tmp_path: Path) -> None:
    import dataclasses

    from wfctl.actions._shell_args import ShellArgs, parse_shell_args

    spec = parse_shell_args({"command": ["echo", 1, 2.5]}, tmp_path)
    assert spec == ShellArgs(
        argv=("echo", "1", "2.5"),
        is_shell=False,
        env={},
        cwd=tmp_path,
        stdin=None,
        ok_exit_codes=frozenset({0}),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.cwd = Path("/")  # type: ignore[misc]
    spec = parse_shell_args(
        {
            "command": "exit 3",
            "env": {"A": True, "B": None, "C": 7},
            "cwd": "sub",
            "stdin": "x",
            "ok_exit_codes": 3,
        },
        tmp_path,
    )
    assert (spec.argv, spec.is_shell) == (("/bin/sh", "-c", "exit 3"), True)
    assert spec.env == {"A": "true", "B": None, "C": "7"}
    assert (spec.cwd, spec.stdin, spec.ok_exit_codes) == (tmp_path / "sub", b"x", {3})
