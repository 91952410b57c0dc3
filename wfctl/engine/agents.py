"""Capability routing: pick the agent with a free slot and the best recent record."""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field

import anyio

from wfctl.engine.breaker import CircuitBreakers
from wfctl.model import Agent

_WINDOW = 20  # recent calls that count towards failure rate and p50


@dataclass
class _AgentState:
    agent: Agent
    limiter: anyio.CapacityLimiter
    in_flight: int = 0
    outcomes: deque[bool] = field(default_factory=lambda: deque(maxlen=_WINDOW))
    durations: deque[float] = field(default_factory=lambda: deque(maxlen=_WINDOW))

    @property
    def failure_rate(self) -> float:
        return (self.outcomes.count(False) / len(self.outcomes)) if self.outcomes else 0.0

    @property
    def p50(self) -> float:
        return statistics.median(self.durations) if self.durations else 0.0


class NoAgentAvailable(Exception):
    """No agent provides the capability, or every one that does has an open breaker."""


class AgentRouter:
    def __init__(self, agents: tuple[Agent, ...], breakers: CircuitBreakers) -> None:
        self._states = {
            a.name: _AgentState(a, anyio.CapacityLimiter(a.max_concurrency)) for a in agents
        }
        self._breakers = breakers

    @staticmethod
    def target(agent: Agent) -> str:
        return f"agent:{agent.name}"

    def choose(self, capability: str) -> tuple[Agent, str]:
        """The agent to use now and why (least busy, then fewest recent failures, then fastest)."""
        providers = [s for s in self._states.values() if capability in s.agent.capabilities]
        if not providers:
            raise NoAgentAvailable(f"no agent provides capability '{capability}'")
        usable = [s for s in providers if self._breakers.state(self.target(s.agent)) != "open"]
        if not usable:
            names = ", ".join(s.agent.name for s in providers)
            raise NoAgentAvailable(
                f"every agent providing '{capability}' has an open circuit breaker ({names})"
            )
        best = min(
            usable,
            key=lambda s: (
                s.in_flight / s.agent.max_concurrency >= 1,
                s.in_flight / s.agent.max_concurrency,
                s.failure_rate,
                s.p50,
                s.agent.name,
            ),
        )
        if len(usable) == 1:
            reason = "only agent" + (
                " with a closed breaker" if len(providers) > 1 else f" providing '{capability}'"
            )
        else:
            reason = (
                f"{best.in_flight}/{best.agent.max_concurrency} busy, "
                f"failure rate {best.failure_rate:.0%}, p50 {best.p50:.2f}s "
                f"(best of {len(usable)})"
            )
        return best.agent, reason

    def limiter(self, agent: Agent) -> anyio.CapacityLimiter:
        return self._states[agent.name].limiter

    def started(self, agent: Agent) -> None:
        self._states[agent.name].in_flight += 1

    def finished(self, agent: Agent, ok: bool, duration: float) -> None:
        state = self._states[agent.name]
        state.in_flight -= 1
        state.outcomes.append(ok)
        if ok:
            state.durations.append(duration)
