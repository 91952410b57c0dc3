"""The exit codes of every wfctl command: the one place they are defined.

Scripts depend on them; the README's table and the `--help` epilog are checked against
(or generated from) this enum.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """A documented process exit code, with its short label and its full meaning."""

    label: str
    meaning: str

    def __new__(cls, value: int, label: str, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.label = label
        member.meaning = meaning
        return member

    OK = (0, "completed", "completed (or: all files valid)")
    FAILED = (1, "failed", "failed (or an SLA breach with `--fail-on-sla`)")
    INVALID = (
        2,
        "invalid workflow or usage",
        "invalid workflow, invalid inputs, or bad usage — nothing was run",
    )
    TIMEOUT = (3, "timed out", "timed out (the workflow `timeout`)")
    WAITING = (4, "waiting for approval", "waiting for approval")
    INTERNAL = (
        70,
        "internal error",
        "internal error (a bug): one line, rerun with `--debug` for the traceback",
    )
    INTERRUPTED = (130, "interrupted", "interrupted (Ctrl-C / SIGTERM)")


# A run's final state (WorkflowState values; strings so that this module stays light).
_BY_STATE: dict[str, ExitCode] = {
    "completed": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "timeout": ExitCode.TIMEOUT,
    "waiting_approval": ExitCode.WAITING,
    "cancelled": ExitCode.INTERRUPTED,
    "running": ExitCode.INTERNAL,  # a run that returned without ending is a bug
}


def for_state(state: str) -> ExitCode:
    """The exit code of a run that ended in `state` (a WorkflowState value)."""
    return _BY_STATE[str(state)]


def epilog() -> str:
    """The `Exit codes: ...` line of `wfctl --help`, `run --help` and `resume --help`."""
    return "Exit codes: " + " · ".join(f"{c.value} {c.label}" for c in ExitCode) + "."
