"""The action interface: what a step does, and how it reports failure.

This module is imported by the validator; keep it free of heavy imports (no anyio, httpx).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from wfctl.format.error_kinds import ACTION_ERROR_KINDS, ErrorKind
from wfctl.secrets import Masker  # light: stdlib only

__all__ = [
    "ERROR_KINDS",
    "Action",
    "ActionContext",
    "ActionError",
    "Capability",
    "ErrorKind",
    "ToolCaller",
    "capabilities_of",
]

#: Every value `ActionError.kind` takes; `retry_on` lists a subset of these.
ERROR_KINDS: frozenset[str] = frozenset(ACTION_ERROR_KINDS)


class Capability(StrEnum):
    """What an action needs or does, declared by the action (the engine never asks for an
    action by name)."""

    OUTSIDE_EFFECTS = "outside_effects"  # touches the world: the journal commits first
    PROCESS = "process"  # starts processes (their group is killed on timeout/cancel)
    STREAMS_OUTPUT = "streams_output"  # reports output lines while it runs
    REMOTE = "remote"  # can run on another machine (a Ray worker): args and output pickle


#: What a plugin that declares nothing is assumed to do: anything.
_UNDECLARED: frozenset[Capability] = frozenset({Capability.OUTSIDE_EFFECTS})


def capabilities_of(action: object) -> frozenset[Capability]:
    """The capabilities an action declares (`capabilities`), or the safe assumption."""
    declared = getattr(action, "capabilities", None)
    return frozenset(declared) if declared is not None else _UNDECLARED


class ActionError(Exception):
    """A step attempt failed.

    `kind` drives `retry_on`: one of :data:`ERROR_KINDS`. `output` is whatever partial
    output the attempt produced (for a shell step the usual output dict, for an HTTP step
    the status and body). `retryable=False` means retrying cannot help (bad arguments,
    missing command or module) whatever `retry_on` says.
    """

    def __init__(
        self,
        message: str,
        kind: str = "error",
        output: Any = None,
        retryable: bool = True,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.output = output
        self.retryable = retryable

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ActionError({self.message!r}, kind={self.kind!r}, retryable={self.retryable!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.kind, self.output, self.retryable))


@dataclass(slots=True)
class ActionContext:
    """What an action knows about the attempt it runs (read-only by contract; not `frozen`,
    which would triple its cost on every attempt)."""

    run_id: str
    step_id: str
    attempt: int  # 1-based
    idempotency_key: str  # f"{run_id}:{step_id}"; shell steps get WFCTL_IDEMPOTENCY_KEY
    workdir: Path  # cwd for relative paths (the directory wfctl was started in)
    secret_env: Mapping[str, str]  # secrets as environment variables for shell steps
    masker: Masker
    # Called with each (masked) line of output as it arrives, for the live view.
    on_output: Callable[[str], None] | None = None
    # Like on_output, for lines of a process's standard error (shell); None: use on_output.
    on_error_output: Callable[[str], None] | None = None
    # Runs a tool the action was given (react) through the engine's attempt loop; None
    # when the step declares no tools.
    call_tool: ToolCaller | None = None
    # The run's artifacts directory, made on the first call (a run without a state store
    # makes none until a step asks); None outside a run. Read it as `artifacts_dir`.
    artifacts: Callable[[], Path] | None = None

    @property
    def artifacts_dir(self) -> Path | None:
        """The run's artifacts directory (made now if it was not yet); None outside a run."""
        return None if self.artifacts is None else self.artifacts()


#: `call_tool(name, arguments, ctx)`: the tool's output, or raises ActionError.
ToolCaller = Callable[[str, dict[str, Any], "ActionContext"], Awaitable[Any]]


@runtime_checkable
class Action(Protocol):
    """A step implementation. Register third-party ones in the `wfctl.actions` entry-point
    group (the entry point names an Action class, instantiated without arguments, or an
    instance)."""

    name: str
    #: Optional: what the action needs or does (see :class:`Capability`). A plugin that
    #: declares nothing is treated as having outside effects.
    # capabilities: frozenset[Capability]
    #: Optional: ``environment(args)``, the names of the environment variables an attempt
    #: reads itself (react: its API key and base URL); a remote backend sends the
    #: driver's values of these with the attempt. ``run_blocking(args, ctx)``: the attempt
    #: on the caller's thread, for a Ray worker that stops it with KeyboardInterrupt
    #: (NotImplemented: use `run`).

    async def run(self, args: Mapping[str, Any], ctx: ActionContext) -> Any:
        """Do the step. `args` is the rendered `with:` map. Return JSON-serialisable output
        or raise :class:`ActionError`. The caller applies timeouts by cancelling this
        coroutine; clean up in shielded ``finally`` blocks."""
        ...

    def target(self, args: Mapping[str, Any]) -> str:
        """The circuit-breaker key, e.g. ``http:127.0.0.1:8080``, ``shell``,
        ``python:mod:fn``."""
        ...
