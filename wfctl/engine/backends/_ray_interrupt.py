"""Stopping an attempt that waits in a system call on a Ray worker: cancel and deadline.

Ray cancels a running task with `_thread.interrupt_main()`: a KeyboardInterrupt at the main
thread's next bytecode, which never comes while that thread waits in a system call (a
python step's `time.sleep(60)` slept its minute after the cancel). That call trips the
SIGINT flag and writes the signal's number to the signal wakeup fd, so a watcher thread
reading that fd answers with a real signal to the main thread (:data:`WAKE`, whose handler
does nothing): the system call returns EINTR, Python runs the pending SIGINT handler and
the KeyboardInterrupt is raised inside the call, where the action's cleanup runs.

The same watcher enforces the deadline of an attempt that runs on the main thread (a sync
python function, see `_ray_worker`): at the deadline it interrupts the main thread the
same way and :attr:`Guard.timed_out` tells the attempt it timed out. One watcher per worker
process, started with the first attempt; an attempt without a deadline costs it nothing.
"""

from __future__ import annotations

import _thread
import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

__all__ = ["WAKE", "Guard", "guarded"]

#: The signal that wakes the main thread from a system call (ignored by default, and
#: workers have no terminal that would send it).
WAKE = signal.SIGWINCH


class Guard:
    """One attempt's arming of the watcher."""

    __slots__ = ("deadline", "fired", "timed_out")

    def __init__(self, deadline: float | None) -> None:
        self.deadline = deadline  # time.monotonic() value; None: no deadline
        self.fired = False  # the main thread was woken for this attempt
        self.timed_out = False  # ... because its deadline passed


def _nothing(signum: int, frame: Any) -> None:
    """WAKE's handler: the signal only has to end the system call."""


class _Watcher:
    """The worker process's watcher thread and the pipes it waits on."""

    def __init__(self) -> None:
        self.main = threading.main_thread().ident or 0
        self.lock = threading.Lock()
        self.armed: Guard | None = None
        self.signals, self._signals_in = os.pipe()  # the signal wakeup fd's pipe
        self.control, self._control_in = os.pipe()  # "the deadline changed"
        for fd in (self.signals, self._signals_in, self.control, self._control_in):
            os.set_blocking(fd, False)
        signal.signal(WAKE, _nothing)
        threading.Thread(target=self._watch, name="wfctl-interrupt", daemon=True).start()

    @property
    def wakeup_fd(self) -> int:
        return self._signals_in

    def poke(self) -> None:
        """Make the watcher look at the armed guard's deadline again."""
        with contextlib.suppress(BlockingIOError):
            os.write(self._control_in, b"\0")

    def _watch(self) -> None:
        poller = select.poll()  # not select(): a worker's fds may pass FD_SETSIZE
        poller.register(self.signals, select.POLLIN)
        poller.register(self.control, select.POLLIN)
        while True:
            with self.lock:
                armed = self.armed
            timeout = None
            if armed is not None and armed.deadline is not None and not armed.fired:
                timeout = max(0, int((armed.deadline - time.monotonic()) * 1000) + 1)
            ready = {fd for fd, _ in poller.poll(timeout)}
            interrupted = self.signals in ready and signal.SIGINT in _drain(self.signals)
            if self.control in ready:
                _drain(self.control)
            self._answer(interrupted)

    def _answer(self, interrupted: bool) -> None:
        with self.lock:
            armed = self.armed
            if armed is None or armed.fired:
                return
            if not interrupted:
                if armed.deadline is None or time.monotonic() < armed.deadline:
                    return
                armed.timed_out = True
                _thread.interrupt_main()  # the KeyboardInterrupt the wake makes Python raise
            armed.fired = True
            signal.pthread_kill(self.main, WAKE)


def _drain(fd: int) -> bytes:
    """Everything waiting in the pipe (its bytes are signal numbers for the wakeup fd)."""
    got = b""
    with contextlib.suppress(BlockingIOError):
        while chunk := os.read(fd, 512):
            got += chunk
    return got


_watcher: _Watcher | None = None


def _the_watcher() -> _Watcher | None:
    """This process's watcher (None where signals cannot reach a thread)."""
    global _watcher
    if _watcher is None and hasattr(signal, "pthread_kill"):
        _watcher = _Watcher()
    return _watcher


@contextlib.contextmanager
def guarded(timeout: float | None) -> Iterator[Guard | None]:
    """Within: a Ray cancel (and the deadline `timeout` s from now) interrupts the main
    thread even in a system call. None (nothing armed) off the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield None
        return
    watcher = _the_watcher()
    if watcher is None:
        yield None
        return
    guard = Guard(None if timeout is None else time.monotonic() + timeout)
    previous = signal.set_wakeup_fd(watcher.wakeup_fd, warn_on_full_buffer=False)
    with watcher.lock:
        watcher.armed = guard
    if timeout is not None:
        watcher.poke()
    try:
        yield guard
    finally:
        with watcher.lock:
            watcher.armed = None
        signal.set_wakeup_fd(previous)
