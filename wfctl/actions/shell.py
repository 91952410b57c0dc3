"""The `shell` action: run a command, capture its output, and never leave processes behind.

* ``command`` as a list is an argv executed directly (no shell: arguments are inert); as a
  string it runs through ``/bin/sh -c``. Pass untrusted values through ``env``, never by
  templating them into a shell string.
* The environment is ``os.environ`` + the run's secrets + ``WFCTL_RUN_ID``,
  ``WFCTL_STEP_ID``, ``WFCTL_ATTEMPT``, ``WFCTL_IDEMPOTENCY_KEY``, then the step's ``env``
  on top (a ``null`` value removes a variable). ``WFCTL_PROC_TAG`` (unique per attempt) is
  always ours: it is how escaped processes are found.
* The command starts in its own session / process group with stdin from ``/dev/null``
  unless ``stdin`` is given. stdout and stderr are read as they arrive (asyncio's
  subprocess protocol: no reader tasks), line by line; each masked line goes to
  ``ctx.on_output``. Each stream keeps at most
  :data:`OUTPUT_CAP_CHARS` characters (the tail; a marker line says how much was dropped).
* When the main process exits, the pipes get :data:`DRAIN_SECONDS` to reach end-of-file;
  after that, background processes still holding them are left running (a step may start
  a server on purpose) and their later output is not captured.
* Cancellation (the caller's timeout, Ctrl-C, a failing sibling): in a shielded
  ``finally`` the process group gets SIGTERM, then after a grace period
  (:data:`TERM_GRACE_SECONDS`) SIGKILL. Processes that left the group (``setsid``) are
  found by scanning ``/proc/*/environ`` for our ``WFCTL_PROC_TAG`` and get the same
  signals. The child is reaped before the cancellation propagates.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import logging
import os
import signal
import subprocess
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

from wfctl.actions.base import ActionContext, ActionError
from wfctl.secrets import Masker

__all__ = [
    "DRAIN_SECONDS",
    "OUTPUT_CAP_CHARS",
    "TERM_GRACE_SECONDS",
    "ShellAction",
    "find_tagged_processes",
]

log = logging.getLogger(__name__)

#: Seconds between SIGTERM and SIGKILL when a step is cancelled.
TERM_GRACE_SECONDS = 2.0
#: Seconds to wait for stdout/stderr to close after the main process exited.
DRAIN_SECONDS = 1.0
#: Characters kept per stream (the tail).
OUTPUT_CAP_CHARS = 10 * 1024 * 1024
#: A "line" longer than this is passed on in pieces (live view and cap accounting).
MAX_LINE_CHARS = 1024 * 1024
_POLL_SECONDS = 0.05
_SHELL = "/bin/sh"
TAG_VAR = "WFCTL_PROC_TAG"


def _invalid(message: str) -> ActionError:
    return ActionError(f"shell: {message}", kind="validation", retryable=False)


def _env_value(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise _invalid(
            f"env {key!r} must be a string, number or boolean, got {type(value).__name__}"
        )
    if "\0" in text:
        raise _invalid(f"env {key!r} contains a NUL character")
    return text


def _argv_item(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(f"command list items must be strings, got {value!r}")
    text = str(value)
    if "\0" in text:
        raise _invalid("command contains a NUL character")
    return text


@dataclass(frozen=True)
class _Spec:
    argv: list[str]
    is_shell: bool
    env: dict[str, str | None]
    cwd: Path
    stdin: bytes | None
    ok_exit_codes: frozenset[int]


def _parse_args(args: Mapping[str, Any], workdir: Path) -> _Spec:
    command = args.get("command")
    if isinstance(command, str):
        if not command.strip():
            raise _invalid("`command` is empty")
        if "\0" in command:
            raise _invalid("command contains a NUL character")
        argv, is_shell = [_SHELL, "-c", command], True
    elif isinstance(command, list | tuple):
        if not command:
            raise _invalid("`command` is an empty list")
        argv, is_shell = [_argv_item(v) for v in command], False
        if not argv[0]:
            raise _invalid("`command` starts with an empty program name")
    else:
        raise _invalid(f"`command` must be a string or a list, got {type(command).__name__}")

    raw_env = args.get("env") or {}
    if not isinstance(raw_env, Mapping):
        raise _invalid("`env` must be a map")
    env: dict[str, str | None] = {}
    for key, value in raw_env.items():
        if not isinstance(key, str) or not key or "=" in key or "\0" in key:
            raise _invalid(f"invalid environment variable name {key!r}")
        env[key] = _env_value(key, value)

    raw_cwd = args.get("cwd")
    if raw_cwd is None or raw_cwd == "":
        cwd = workdir
    elif isinstance(raw_cwd, str):
        cwd = workdir / raw_cwd
    else:
        raise _invalid("`cwd` must be a string")

    raw_stdin = args.get("stdin")
    stdin: bytes | None
    if raw_stdin is None:
        stdin = None
    elif isinstance(raw_stdin, str):
        stdin = raw_stdin.encode("utf-8")
    else:
        raise _invalid("`stdin` must be a string")

    raw_ok = args.get("ok_exit_codes", [0])
    if raw_ok is None:
        raw_ok = [0]
    if isinstance(raw_ok, int) and not isinstance(raw_ok, bool):
        raw_ok = [raw_ok]
    if not isinstance(raw_ok, list | tuple) or not all(
        isinstance(c, int) and not isinstance(c, bool) for c in raw_ok
    ):
        raise _invalid("`ok_exit_codes` must be a list of integers")
    return _Spec(argv, is_shell, env, cwd, stdin, frozenset(raw_ok))


class _Capture:
    """Collects one stream: decodes incrementally, splits lines, keeps the tail, and
    reports each masked line to the live view."""

    def __init__(self, masker: Masker, on_line: Callable[[str], None] | None) -> None:
        self._masker = masker
        self._on_line = on_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._lines: deque[str] = deque()
        self._size = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        text = self._partial + self._decoder.decode(data)
        *complete, self._partial = text.split("\n")
        for line in complete:
            self._emit(line + "\n")
        while len(self._partial) > MAX_LINE_CHARS:
            self._emit(self._partial[:MAX_LINE_CHARS])
            self._partial = self._partial[MAX_LINE_CHARS:]

    def finish(self) -> None:
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if rest:
            self._emit(rest)

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        while self._size > OUTPUT_CAP_CHARS and len(self._lines) > 1:
            old = self._lines.popleft()
            self._size -= len(old)
            self.dropped += len(old)
        if self._on_line is not None:
            try:
                self._on_line(self._masker.mask(line.removesuffix("\n").removesuffix("\r")))
            except Exception:
                log.exception("the output callback failed; live output disabled for this step")
                self._on_line = None

    def last_line(self) -> str:
        for line in reversed(self._lines):
            if line.strip():
                return line.strip()
        return ""

    def text(self) -> str:
        body = "".join(self._lines)
        if self.dropped:
            body = f"[wfctl: output truncated, first {self.dropped} characters dropped]\n" + body
        return body


def _parse_json(stdout: str) -> Any:
    text = stdout.removesuffix("\n").strip()
    if not text or text[0] not in '{["-0123456789tfn':
        return None

    def reject_constant(name: str) -> Any:  # NaN, Infinity: not JSON
        raise ValueError(name)

    try:
        return json.loads(text, parse_constant=reject_constant)
    except (ValueError, RecursionError):
        return None


# --- process discovery and killing -------------------------------------------------------


def _read_proc_stat(pid: str) -> tuple[str, int] | None:
    """(state, pgrp) of a process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:  # noqa: PTH123 - many tiny reads
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2 :].split()
    try:
        return fields[0].decode("ascii", "replace"), int(fields[2])
    except (IndexError, ValueError):
        return None


def _has_tag(pid: str, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:  # noqa: PTH123
            data = f.read()
    except OSError:
        return False
    return needle in b"\0" + data + b"\0"


def find_tagged_processes(tag: str, pgid: int | None = None) -> list[int]:
    """Live (non-zombie) processes whose initial environment has ``WFCTL_PROC_TAG=<tag>``,
    or that belong to process group `pgid`. Linux only (empty elsewhere)."""
    needle = f"\0{TAG_VAR}={tag}\0".encode()
    me = os.getpid()
    found: list[int] = []
    try:
        entries = os.listdir("/proc")  # noqa: PTH208 - hot path, plain names wanted
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        stat = _read_proc_stat(entry)
        if stat is None or stat[0] in ("Z", "X"):
            continue
        if (pgid is not None and stat[1] == pgid) or _has_tag(entry, needle):
            found.append(int(entry))
    return found


def _signal_all(pgid: int, tag: str, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
    for pid in find_tagged_processes(tag):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


class _Child(asyncio.SubprocessProtocol):
    """One command's process: output fed to the captures as it arrives, exit awaited.

    asyncio's own subprocess protocol, not stream readers: no reader task per pipe, so
    a short command costs little more than its fork and exec."""

    def __init__(self, stdout: _Capture, stderr: _Capture) -> None:
        self._captures = {1: stdout, 2: stderr}
        self._open_pipes = 2
        self.pipes_closed = asyncio.Event()
        self.exited = asyncio.Event()
        self.transport: asyncio.SubprocessTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.SubprocessTransport)
        self.transport = transport

    def pipe_data_received(self, fd: int, data: bytes | str) -> None:
        capture = self._captures.get(fd)
        if capture is not None and isinstance(data, bytes):
            capture.feed(data)

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if fd in self._captures:
            self._open_pipes -= 1
            if self._open_pipes == 0:
                self.pipes_closed.set()

    def process_exited(self) -> None:
        self.exited.set()

    @property
    def pid(self) -> int:
        assert self.transport is not None
        return self.transport.get_pid()

    async def wait(self) -> int:
        await self.exited.wait()
        assert self.transport is not None
        code = self.transport.get_returncode()
        assert code is not None
        return code


# Process groups of steps running now (pgid -> tag), for an emergency exit.
_LIVE: dict[int, str] = {}


def kill_all_now() -> None:
    """SIGKILL every running step's process group and tagged processes (second Ctrl-C)."""
    for pgid, tag in list(_LIVE.items()):
        _signal_all(pgid, tag, signal.SIGKILL)


async def _wait_gone(proc: _Child, pgid: int, tag: str) -> None:
    await proc.wait()
    while find_tagged_processes(tag, pgid):
        await anyio.sleep(_POLL_SECONDS)


async def _terminate(proc: _Child, tag: str, grace: float) -> None:
    """SIGTERM the group and tagged processes, wait `grace`, SIGKILL what is left, reap.
    Must run shielded."""
    pgid = proc.pid  # start_new_session: the child leads its own group
    _signal_all(pgid, tag, signal.SIGTERM)
    with anyio.move_on_after(grace):
        await _wait_gone(proc, pgid, tag)
        return
    log.debug("shell step processes survived SIGTERM for %.1fs; sending SIGKILL", grace)
    _signal_all(pgid, tag, signal.SIGKILL)
    await proc.wait()
    # SIGKILL cannot be ignored; give the kernel a moment so nothing is listed on return.
    with anyio.move_on_after(1.0):
        await _wait_gone(proc, pgid, tag)


# --- the action ----------------------------------------------------------------------------


class ShellAction:
    """``shell`` action; see the module docstring."""

    name = "shell"

    def __init__(
        self,
        term_grace: float = TERM_GRACE_SECONDS,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.term_grace = term_grace
        self.drain_seconds = drain_seconds

    def target(self, args: Mapping[str, Any]) -> str:
        return "shell"

    def _environment(self, spec: _Spec, ctx: ActionContext, tag: str) -> dict[bytes, bytes]:
        # Bytes from os.environb: with str, every variable would be decoded here and
        # encoded again by subprocess, on every step.
        enc = os.fsencode
        env = dict(os.environb)
        for key, value in ctx.secret_env.items():
            env[enc(key)] = enc(value)
        env[b"WFCTL_RUN_ID"] = enc(ctx.run_id)
        env[b"WFCTL_STEP_ID"] = enc(ctx.step_id)
        env[b"WFCTL_ATTEMPT"] = str(ctx.attempt).encode()
        env[b"WFCTL_IDEMPOTENCY_KEY"] = enc(ctx.idempotency_key)
        for name, setting in spec.env.items():
            if setting is None:
                env.pop(enc(name), None)
            else:
                env[enc(name)] = enc(setting)
        env[TAG_VAR.encode()] = tag.encode()
        return env

    async def _start(
        self, spec: _Spec, env: dict[bytes, bytes], stdout: _Capture, stderr: _Capture
    ) -> _Child:
        if not spec.cwd.is_dir():
            raise ActionError(
                f"shell: working directory does not exist: {spec.cwd}", retryable=False
            )
        program = spec.argv[0]
        child = _Child(stdout, stderr)
        try:
            # Shielded: a cancellation while spawning must not lose the process handle.
            with anyio.CancelScope(shield=True):
                await asyncio.get_running_loop().subprocess_exec(
                    lambda: child,
                    *spec.argv,
                    stdin=subprocess.PIPE if spec.stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    cwd=spec.cwd,
                    env=env,
                    start_new_session=True,
                )
            return child
        except FileNotFoundError:
            where = "" if "/" in program else " (searched PATH)"
            raise ActionError(
                f"shell: command not found: {program!r}{where}", retryable=False
            ) from None
        except PermissionError:
            raise ActionError(
                f"shell: command is not executable (permission denied): {program!r}",
                retryable=False,
            ) from None
        except OSError as exc:
            raise ActionError(
                f"shell: cannot execute {program!r}: {exc.strerror or exc}", retryable=False
            ) from None

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        spec = _parse_args(args, ctx.workdir)
        tag = uuid.uuid4().hex
        env = self._environment(spec, ctx, tag)
        stdout = _Capture(ctx.masker, ctx.on_output)
        stderr = _Capture(ctx.masker, ctx.on_output)

        proc = await self._start(spec, env, stdout, stderr)
        pid = proc.pid
        _LIVE[pid] = tag
        completed = False
        try:
            returncode = await self._communicate(proc, spec.stdin)
            completed = True
        finally:
            with anyio.CancelScope(shield=True):
                if not completed:
                    await _terminate(proc, tag, self.term_grace)
                assert proc.transport is not None
                proc.transport.close()
                _LIVE.pop(pid, None)
        stdout.finish()
        stderr.finish()

        masker = ctx.masker
        out_text = masker.mask(stdout.text())
        output: dict[str, Any] = {
            "stdout": out_text,
            "stderr": masker.mask(stderr.text()),
            "exit_code": returncode,
            "json": None if stdout.dropped else _parse_json(out_text),
        }
        if returncode in spec.ok_exit_codes:
            return output

        last = masker.mask(stderr.last_line())[:300]
        retryable = True
        if returncode < 0:
            try:
                signame = signal.Signals(-returncode).name
            except ValueError:
                signame = f"signal {-returncode}"
            message = f"command was killed by {signame} (exit code {returncode})"
        else:
            message = f"command exited with code {returncode}"
            if spec.is_shell and returncode in (126, 127):
                message += " (command not found)" if returncode == 127 else " (not executable)"
                retryable = False
        if last:
            message += f": {last}"
        raise ActionError(message, kind="exit_code", output=output, retryable=retryable)

    async def _communicate(self, proc: _Child, stdin: bytes | None) -> int:
        assert proc.transport is not None
        pipe = proc.transport.get_pipe_transport(0)
        if pipe is not None:
            # Buffered by the transport and written as the command reads; close() sends
            # EOF once it is all written (or drops it if the command exits first).
            assert isinstance(pipe, asyncio.WriteTransport)
            with contextlib.suppress(OSError):
                if stdin:
                    pipe.write(stdin)
                pipe.close()
        returncode = await proc.wait()
        # Background processes may hold the pipes open: don't wait for them forever.
        with anyio.move_on_after(self.drain_seconds):
            await proc.pipes_closed.wait()
        return returncode
