"""Circuit breakers, one per action target (agent, http host, action name)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from wfctl.model import CircuitBreakerPolicy


@dataclass
class _Breaker:
    failures: int = 0
    state: str = "closed"  # closed | open | half_open
    opened_at: float = 0.0
    trial_running: bool = False


class CircuitBreakers:
    """Opens after `failure_threshold` consecutive failures; half-opens after `reset_timeout`."""

    def __init__(
        self,
        policy: CircuitBreakerPolicy,
        on_change: Callable[[str, str, int], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy
        self._on_change = on_change
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}
        self.trips = 0

    def state(self, target: str | None) -> str:
        if target is None:
            return "closed"
        b = self._breakers.get(target)
        if b is None:
            return "closed"
        if b.state == "open" and self._clock() - b.opened_at >= self.policy.reset_timeout:
            return "half_open"
        return b.state

    def allow(self, target: str | None) -> bool:
        """May a call to `target` go ahead now? (a half-open breaker lets one trial through)"""
        if target is None:
            return True
        b = self._breakers.get(target)
        if b is None or b.state == "closed":
            return True
        if b.state == "open":
            if self._clock() - b.opened_at < self.policy.reset_timeout:
                return False
            b.state = "half_open"
            self._on_change(target, "half_open", b.failures)
        if b.trial_running:
            return False
        b.trial_running = True
        return True

    def retry_after(self, target: str | None) -> float:
        if target is None:
            return 0.0
        b = self._breakers.get(target)
        if b is None or b.state != "open":
            return 0.0
        return max(0.0, self.policy.reset_timeout - (self._clock() - b.opened_at))

    def record_success(self, target: str | None) -> None:
        if target is None:
            return
        b = self._breakers.get(target)
        if b is None:
            return
        was = b.state
        b.failures = 0
        b.trial_running = False
        b.state = "closed"
        if was != "closed":
            self._on_change(target, "closed", 0)

    def record_neutral(self, target: str | None) -> None:
        """The call ended saying nothing about the target (bad input, cancelled)."""
        if target is None:
            return
        b = self._breakers.get(target)
        if b is not None:
            b.trial_running = False

    def record_failure(self, target: str | None) -> None:
        if target is None:
            return
        b = self._breakers.setdefault(target, _Breaker())
        b.failures += 1
        b.trial_running = False
        if b.state == "half_open" or (
            b.state == "closed" and b.failures >= self.policy.failure_threshold
        ):
            b.state = "open"
            b.opened_at = self._clock()
            self.trips += 1
            self._on_change(target, "open", b.failures)
