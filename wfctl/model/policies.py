"""Retry policy, circuit breaker and SLA targets (the seed's names)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wfctl.format import schema
from wfctl.model.defaults import defaults
from wfctl.model.enums import Backoff

if TYPE_CHECKING:
    import random

    from wfctl.expressions import Expression

__all__ = [
    "ERROR_KINDS",
    "MAX_RETRY_DELAY",
    "CircuitBreakerPolicy",
    "RetryPolicy",
    "SlaTargets",
    "circuit_breaker_from",
    "retry_policy_from",
]

#: `retry_on`'s default: what a policy retries unless told otherwise.
ERROR_KINDS = frozenset(defaults("retry_policy")["retry_on"])
#: The longest wait before a retry, in seconds (the schema's bound of `max_delay`): the next
#: attempt's time must stay a date that can be shown and journaled (1e300 s is not).
MAX_RETRY_DELAY = float(schema.node("/$defs/retry_policy/properties/max_delay")["maximum"])


@dataclass(frozen=True)
class RetryPolicy:
    # Field defaults mirror the schema's (a test pins them); documents get theirs from
    # the schema through retry_policy_from.
    max_attempts: int = 1
    backoff: Backoff = Backoff.EXPONENTIAL
    initial_delay: float = 1.0
    max_delay: float = 60.0
    jitter: bool = True
    retry_on: frozenset[str] = ERROR_KINDS
    continue_on_failure: bool = False
    parallel_failure_threshold: float = 1.0
    # Retry only when this holds for the failed attempt (`output`, `error`, `attempt`).
    retry_if: Expression | None = None
    # No attempt starts later than this many seconds after the first one started.
    deadline: float | None = None
    backoff_factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        # Also bounded for policies built in Python, which the schema never saw.
        cap = min(self.max_delay, MAX_RETRY_DELAY)
        try:
            base = min(self.initial_delay * self._growth(attempt), cap)
        except OverflowError:  # a factor of 1e300 from Python: far past any cap
            base = cap if self.initial_delay > 0 else 0.0
        # Full jitter (AWS architecture blog): spreads retries of many steps apart.
        return rng.uniform(0, base) if self.jitter else base

    def _growth(self, attempt: int) -> float:
        match self.backoff:
            case Backoff.FIXED:
                return 1.0
            case Backoff.LINEAR:
                return float(attempt)
            case Backoff.EXPONENTIAL:
                # Capped exponent: 2**1100 as a float overflows (so would 10**310; the
                # schema caps the factor at 10); max_delay caps the delay anyway.
                return float(self.backoff_factor ** min(attempt - 1, 300))

    def merged(self, overrides: Mapping[str, Any]) -> RetryPolicy:
        """This policy with the fields a step sets replaced."""
        return retry_policy_from({**self.as_dict(), **overrides})

    def as_dict(self) -> dict[str, Any]:
        return {
            "max_attempts": self.max_attempts,
            "backoff": self.backoff.value,
            "initial_delay": self.initial_delay,
            "max_delay": self.max_delay,
            "jitter": self.jitter,
            "retry_on": sorted(self.retry_on),
            "continue_on_failure": self.continue_on_failure,
            "parallel_failure_threshold": self.parallel_failure_threshold,
            "retry_if": self.retry_if.source if self.retry_if is not None else None,
            "deadline": self.deadline,
            "backoff_factor": self.backoff_factor,
        }


def retry_policy_from(data: Mapping[str, Any]) -> RetryPolicy:
    """RetryPolicy from a schema-valid mapping (missing fields take the schema's defaults)."""
    d = {**defaults("retry_policy"), **data}
    return RetryPolicy(
        max_attempts=int(d["max_attempts"]),
        backoff=Backoff(d["backoff"]),
        initial_delay=float(d["initial_delay"]),
        max_delay=float(d["max_delay"]),
        jitter=bool(d["jitter"]),
        retry_on=frozenset(d["retry_on"]),
        continue_on_failure=bool(d["continue_on_failure"]),
        parallel_failure_threshold=float(d["parallel_failure_threshold"]),
        retry_if=_retry_if(d.get("retry_if")),
        deadline=float(d["deadline"]) if d.get("deadline") is not None else None,
        backoff_factor=float(d["backoff_factor"]),
    )


def _retry_if(source: str | None) -> Expression | None:
    if source is None:
        return None
    # Imported only when a policy has one: Jinja is not needed to read most workflows.
    from wfctl.expressions import compile_expression

    return compile_expression(source)


@dataclass(frozen=True)
class CircuitBreakerPolicy:
    failure_threshold: int = 5
    reset_timeout: float = 30.0


def circuit_breaker_from(data: Mapping[str, Any]) -> CircuitBreakerPolicy:
    """CircuitBreakerPolicy from a schema-valid mapping (schema defaults for the rest)."""
    d = {**defaults("circuit_breaker"), **data}
    return CircuitBreakerPolicy(
        failure_threshold=int(d["failure_threshold"]), reset_timeout=float(d["reset_timeout"])
    )


@dataclass(frozen=True)
class SlaTargets:
    max_duration: float | None = None
    min_success_rate: float | None = None
    step_max_duration: Mapping[str, float] = field(default_factory=dict)
