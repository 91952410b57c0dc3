"""The `shell` action: run a command, capture its output, and never leave processes behind.

* ``command`` as a list is an argv executed directly (no shell: arguments are inert); as a
  string it runs through ``/bin/sh -c``. Pass untrusted values through ``env``, never by
  templating them into a shell string.
* The environment is ``os.environ`` + the run's secrets + ``WFCTL_RUN_ID``,
  ``WFCTL_STEP_ID``, ``WFCTL_ATTEMPT``, ``WFCTL_IDEMPOTENCY_KEY``, ``WFCTL_ARTIFACTS`` (the
  run's artifacts directory), then the step's ``env`` on top (a ``null`` value removes a
  variable). ``WFCTL_PROC_TAG`` (unique per attempt) is
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
import contextlib
import os
import signal
import subprocess
import uuid
from collections.abc import Mapping
from typing import Any

import anyio

from wfctl.actions._shell_args import ShellArgs, parse_shell_args
from wfctl.actions._shell_output import MAX_LINE_CHARS, OUTPUT_CAP_CHARS, Capture, parse_json
from wfctl.actions._shell_process import (
    TAG_VAR,
    Child,
    find_tagged_processes,
    kill_all_now,
    live,
    terminate,
)
from wfctl.actions.base import ActionContext, ActionError, Capability
from wfctl.secrets import Masker

__all__ = [
    "DRAIN_SECONDS",
    "MAX_LINE_CHARS",
    "OUTPUT_CAP_CHARS",
    "TAG_VAR",
    "TERM_GRACE_SECONDS",
    "ShellAction",
    "find_tagged_processes",
    "kill_all_now",
]

#: Seconds between SIGTERM and SIGKILL when a step is cancelled.
TERM_GRACE_SECONDS = 2.0
#: Seconds to wait for stdout/stderr to close after the main process exited.
DRAIN_SECONDS = 1.0

# What /bin/sh's own exit codes mean; retrying cannot fix either.
_SHELL_EXIT_HINTS = {127: " (command not found)", 126: " (not executable)"}


class ShellAction:
    """``shell`` action; see the module docstring."""

    name = "shell"
    capabilities: frozenset[Capability] = frozenset(
        {
            Capability.OUTSIDE_EFFECTS,
            Capability.PROCESS,
            Capability.STREAMS_OUTPUT,
            Capability.REMOTE,
        }
    )

    def __init__(
        self,
        term_grace: float = TERM_GRACE_SECONDS,
        drain_seconds: float = DRAIN_SECONDS,
    ) -> None:
        self.term_grace = term_grace
        self.drain_seconds = drain_seconds

    def target(self, args: Mapping[str, Any]) -> str:
        """One breaker for every shell step: they share the machine."""
        return "shell"

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        """Run the command; output ``{stdout, stderr, exit_code, json}``."""
        spec = parse_shell_args(args, ctx.workdir)
        tag = uuid.uuid4().hex
        stdout = Capture(ctx.masker, ctx.on_output)
        stderr = Capture(ctx.masker, ctx.on_error_output or ctx.on_output)
        proc = await self._spawn(spec, _environment(spec, ctx, tag), stdout, stderr, tag)
        returncode = await self._supervise(proc, spec.stdin, tag)
        stdout.finish()
        stderr.finish()
        output = _output(ctx.masker, stdout, stderr, returncode)
        if returncode in spec.ok_exit_codes:
            return output
        raise _exit_error(spec, returncode, output, ctx.masker.mask(stderr.last_line())[:300])

    async def _spawn(
        self, spec: ShellArgs, env: dict[bytes, bytes], stdout: Capture, stderr: Capture, tag: str
    ) -> Child:
        """Start the command in a task of its own. A cancellation meanwhile, anyio's or a
        task group's native one (which anyio's shield cannot hold off), would make asyncio
        SIGKILL the group leader alone: here the whole group is stopped, then it goes on."""
        spawning = asyncio.ensure_future(_start(spec, env, stdout, stderr))
        try:
            return await asyncio.shield(spawning)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True):
                proc = await _started(spawning)
                if proc is not None:
                    await terminate(proc, tag, self.term_grace)
                    assert proc.transport is not None
                    proc.transport.close()
            raise

    async def _supervise(self, proc: Child, stdin: bytes | None, tag: str) -> int:
        """Wait for the command; if that is cancelled, kill its processes (shielded)."""
        pid = proc.pid
        live[pid] = tag
        completed = False
        try:
            returncode = await self._communicate(proc, stdin)
            completed = True
        finally:
            with anyio.CancelScope(shield=True):
                if not completed:
                    await terminate(proc, tag, self.term_grace)
                assert proc.transport is not None
                proc.transport.close()
                live.pop(pid, None)
        return returncode

    async def _communicate(self, proc: Child, stdin: bytes | None) -> int:
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


def _environment(spec: ShellArgs, ctx: ActionContext, tag: str) -> dict[bytes, bytes]:
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
    artifacts = ctx.artifacts_dir
    if artifacts is not None:
        env[b"WFCTL_ARTIFACTS"] = enc(artifacts)
    for name, setting in spec.env.items():
        if setting is None:
            env.pop(enc(name), None)
        else:
            env[enc(name)] = enc(setting)
    env[TAG_VAR.encode()] = tag.encode()
    return env


async def _start(
    spec: ShellArgs, env: dict[bytes, bytes], stdout: Capture, stderr: Capture
) -> Child:
    if not spec.cwd.is_dir():
        raise ActionError(f"shell: working directory does not exist: {spec.cwd}", retryable=False)
    child = Child(stdout, stderr)
    try:
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
    except OSError as exc:
        raise _spawn_error(exc, spec.argv[0]) from None
    return child


async def _started(spawning: asyncio.Future[Child]) -> Child | None:
    """The process a spawn started, once it has; None if it could not start."""
    try:
        return await spawning
    except Exception:
        return None


def _spawn_error(exc: OSError, program: str) -> ActionError:
    """Why the command could not start; retrying cannot help."""
    match exc:
        case FileNotFoundError():
            where = "" if "/" in program else " (searched PATH)"
            message = f"command not found: {program!r}{where}"
        case PermissionError():
            message = f"command is not executable (permission denied): {program!r}"
        case _:
            message = f"cannot execute {program!r}: {exc.strerror or exc}"
    return ActionError(f"shell: {message}", retryable=False)


def _output(masker: Masker, stdout: Capture, stderr: Capture, returncode: int) -> dict[str, Any]:
    out_text = masker.mask(stdout.text())
    return {
        "stdout": out_text,
        "stderr": masker.mask(stderr.text()),
        "exit_code": returncode,
        "json": None if stdout.dropped else parse_json(out_text),
    }


def _exit_error(spec: ShellArgs, returncode: int, output: Any, last: str) -> ActionError:
    """The failure of a command that exited with a code outside `ok_exit_codes`."""
    if returncode < 0:
        message, retryable = _signal_message(-returncode), True
    else:
        hint = _SHELL_EXIT_HINTS.get(returncode) if spec.is_shell else None
        message, retryable = f"command exited with code {returncode}{hint or ''}", hint is None
    if last:
        message += f": {last}"
    return ActionError(message, kind="exit_code", output=output, retryable=retryable)


def _signal_message(signum: int) -> str:
    try:
        signame = signal.Signals(signum).name
    except ValueError:
        signame = f"signal {signum}"
    return f"command was killed by {signame} (exit code {-signum})"
