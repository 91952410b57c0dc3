"""Step processes a dead owner left behind: found and stopped before a run is resumed.

A SIGKILLed `wfctl run` cannot stop its steps' processes; resuming would start a second
copy of the in-flight step beside the first. Every step process carries
`WFCTL_RUN_ID`/`WFCTL_STEP_ID` in its environment, so the resumer finds them in
`/proc/*/environ` (Linux; nothing is found elsewhere) and stops them: SIGTERM to each
one's process group, a grace period, then SIGKILL.

What remains (README, "Reliability"): a process that clears its environment (`env -i`)
*and* leaves the step's session (`setsid`) carries no trace of the run and is not found;
a process of another user cannot be signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Orphan", "find_orphans", "stop_orphans"]

GRACE_SECONDS = 5.0
_POLL_SECONDS = 0.05


@dataclass(frozen=True)
class Orphan:
    """A live process of an earlier owner of the run."""

    pid: int
    pgid: int
    step_id: str


def _ancestors() -> set[int]:
    """This process and its parents: a resume started from a step carries the run id too."""
    found = {os.getpid()}
    pid = os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
            pid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


def _environ(pid: str) -> dict[bytes, bytes] | None:
    try:
        data = Path(f"/proc/{pid}/environ").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    if stat[stat.rfind(b")") + 2 :][:1] in (b"Z", b"X"):
        return None  # a zombie has done its work
    pairs = (item.partition(b"=") for item in data.split(b"\0") if item)
    return {k: v for k, _, v in pairs}


def find_orphans(run_id: str) -> list[Orphan]:
    """Live processes (not this one nor its ancestors) tagged with the run's id."""
    needle = run_id.encode()
    skip = _ancestors()
    found: list[Orphan] = []
    try:
        entries = [e for e in os.listdir("/proc") if e.isdigit()]  # noqa: PTH208
    except OSError:
        return found
    for entry in entries:
        if int(entry) in skip:
            continue
        env = _environ(entry)
        if env is None or env.get(b"WFCTL_RUN_ID") != needle:
            continue
        with contextlib.suppress(ProcessLookupError):
            step = env.get(b"WFCTL_STEP_ID", b"?").decode("utf-8", "replace")
            found.append(Orphan(int(entry), os.getpgid(int(entry)), step))
    return found


def _signal(orphans: list[Orphan], sig: signal.Signals) -> None:
    mine = os.getpgrp()
    for pgid in {o.pgid for o in orphans} - {mine}:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, sig)
    for o in orphans:  # those that left their group (setsid) but kept the tag
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(o.pid, sig)


def _wait_gone(run_id: str, seconds: float) -> list[Orphan]:
    deadline = time.monotonic() + seconds
    left = find_orphans(run_id)
    while left and time.monotonic() < deadline:
        time.sleep(_POLL_SECONDS)
        left = find_orphans(run_id)
    return left


def stop_orphans(run_id: str, grace: float = GRACE_SECONDS) -> list[Orphan]:
    """Stop every process an earlier owner of `run_id` left running; the ones found."""
    orphans = find_orphans(run_id)
    if not orphans:
        return []
    _signal(orphans, signal.SIGTERM)
    left = _wait_gone(run_id, grace)
    if left:
        _signal(left, signal.SIGKILL)
        _wait_gone(run_id, grace)
    return orphans
