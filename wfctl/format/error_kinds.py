"""Every kind of step failure: the one list that `retry_on`, `fail`, the report and the
journal draw on (the schema's `retry_on` and `fail.kind` enums are checked against it)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = ["ACTION_ERROR_KINDS", "NEVER_RETRIED", "ErrorKind"]


class ErrorKind(StrEnum):
    """Why an attempt or a step failed."""

    ERROR = "error"  # anything else an action raised
    TIMEOUT = "timeout"  # the step's `timeout` (or the run's) ran out
    EXIT_CODE = "exit_code"  # a shell command exited non-zero
    HTTP_STATUS = "http_status"  # an HTTP response outside `expect_status`
    CONNECTION = "connection"  # could not reach the other side
    OVERLOADED = "overloaded"  # a model provider said it is overloaded (HTTP 529)
    RATE_LIMITED = "rate_limited"  # a model provider said slow down (HTTP 429)
    VALIDATION = "validation"  # bad input: retrying cannot help
    CIRCUIT_OPEN = "circuit_open"  # the target's circuit breaker is open
    CANCELLED = "cancelled"  # Ctrl-C, SIGTERM or a sibling's failure stopped it
    DEADLOCK = "deadlock"  # its dependencies can never be satisfied
    REJECTED = "rejected"  # an approver said no
    WORKER_LOST = "worker_lost"  # the Ray worker process or node running it died
    # An expression or template hit a resource limit (time, size, allocation): the same
    # data would hit it again, so never retried.
    EXPRESSION_LIMIT = "expression_limit"


#: Kinds no retry policy may retry (invalid input never gets better by retrying).
NEVER_RETRIED: Final = frozenset({ErrorKind.VALIDATION, ErrorKind.EXPRESSION_LIMIT})

#: Kinds only the engine decides, never raised by an action.
_ENGINE_ONLY: Final = frozenset(
    {ErrorKind.DEADLOCK, ErrorKind.REJECTED, ErrorKind.EXPRESSION_LIMIT}
)

#: Every kind an action's `ActionError` may carry.
ACTION_ERROR_KINDS: Final = frozenset(ErrorKind) - _ENGINE_ONLY
