"""`workflow` in expressions: the run's facts, and values worked out only when read."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["WorkflowView"]


class WorkflowView(Mapping[str, Any]):
    """Fixed facts (id, name, run_id, ...) and `computed` ones, each worked out when an
    expression reads it: `artifacts` makes a store-less run's directory only then, and a
    sub-workflow's `status` is its steps' outcome at the time its on_exit hook asks."""

    def __init__(
        self, facts: Mapping[str, Any], computed: Mapping[str, Callable[[], Any]] | None = None
    ) -> None:
        self._facts = facts
        self._computed = dict(computed or {})

    def with_facts(self, **facts: Any) -> WorkflowView:
        """A copy with some facts added or changed."""
        return WorkflowView({**self._facts, **facts}, self._computed)

    def __getitem__(self, key: str) -> Any:
        compute = self._computed.get(key)
        return compute() if compute is not None else self._facts[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._facts
        yield from (k for k in self._computed if k not in self._facts)

    def __len__(self) -> int:
        return len(self._facts.keys() | self._computed.keys())
