"""A shell step's process: the asyncio protocol that reads it, and the group kill.

PITFALLS.md: cancelling a subprocess kills only the direct child. The command runs in its
own session; on cancel its process group gets SIGTERM, a grace period, then SIGKILL, and
processes that left the group (``setsid``) are found by the ``WFCTL_PROC_TAG`` in their
``/proc/*/environ``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal

import anyio

from wfctl.actions._shell_output import Capture

__all__ = ["TAG_VAR", "Child", "find_tagged_processes", "kill_all_now", "live", "terminate"]

log = logging.getLogger("wfctl.actions.shell")

TAG_VAR = "WFCTL_PROC_TAG"
_POLL_SECONDS = 0.05

#: Process groups of steps running now (pgid -> tag), for an emergency exit.
live: dict[int, str] = {}


class Child(asyncio.SubprocessProtocol):
    """One command's process: output fed to the captures as it arrives, exit awaited.

    asyncio's own subprocess protocol, not stream readers: no reader task per pipe, so
    a short command costs little more than its fork and exec."""

    def __init__(self, stdout: Capture, stderr: Capture) -> None:
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
        """The child's pid (also its process group: it leads a new session)."""
        assert self.transport is not None
        return self.transport.get_pid()

    async def wait(self) -> int:
        """The exit code, once the process has exited (negative: killed by that signal)."""
        await self.exited.wait()
        assert self.transport is not None
        code = self.transport.get_returncode()
        assert code is not None
        return code


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


def kill_all_now() -> None:
    """SIGKILL every running step's process group and tagged processes (second Ctrl-C)."""
    for pgid, tag in list(live.items()):
        _signal_all(pgid, tag, signal.SIGKILL)


async def _wait_gone(proc: Child, pgid: int, tag: str) -> None:
    await proc.wait()
    while find_tagged_processes(tag, pgid):
        await anyio.sleep(_POLL_SECONDS)


async def terminate(proc: Child, tag: str, grace: float) -> None:
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
