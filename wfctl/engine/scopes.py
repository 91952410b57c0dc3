"""Iteration scopes: one iteration or item of a group loop, run under ids of its own.

A body step is a template; each iteration runs a copy of it named by
:mod:`wfctl.model.scopes` (``each[2].fetch``), with its dependencies (and branch targets)
renamed the same way, so the scheduler, trigger rules, records and journal need nothing
special. Its expressions see `loop` (the iteration's frame) and `steps.<id>` names the
step of the same iteration (or of an enclosing one) before the run's own.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from wfctl.model import Branch, ConditionalBody, Step
from wfctl.model.scopes import scoped_id, template_of
from wfctl.records import StepRecord

__all__ = ["Scope", "ScopedStepsView", "scoped_step"]


@dataclass(frozen=True)
class Scope:
    """One iteration: its id (the prefix of its steps' ids), its `loop` frame, and the
    names its expressions resolve (template id -> record id, enclosing iterations'
    included)."""

    prefix: str
    frame: Mapping[str, Any]
    names: Mapping[str, str]
    #: What its steps' expressions see besides the run's names: `loop`, and `matrix`
    #: (the cell) in a matrix loop.
    context: Mapping[str, Any]

    @classmethod
    def of(
        cls,
        prefix: str,
        frame: Mapping[str, Any],
        body: tuple[Step, ...],
        outer: Scope | None,
        matrix: bool = False,
    ) -> Scope:
        """The scope of iteration `prefix` of a body (its nested containers' steps too)."""
        names = dict(outer.names) if outer is not None else {}
        for template in _walk(body):
            names[template.step_id] = scoped_id(prefix, template.step_id)
        context = {"loop": frame, "matrix": frame["item"]} if matrix else {"loop": frame}
        if outer is not None:
            context = {**_inherited(outer, names), **context}
        return cls(prefix, frame, names, context)

    def sid(self, template_id: str) -> str:
        """The record id of a template step in this iteration."""
        return self.names.get(template_id, template_id)


def _inherited(outer: Scope, names: Mapping[str, str]) -> dict[str, Any]:
    """Inside a sub-workflow: its own `inputs` and `vars` stay in view, and its own step
    ids name this iteration's copies (or the records they named outside the body)."""
    inherited = {k: outer.context[k] for k in ("inputs", "vars") if k in outer.context}
    view = outer.context.get("steps")
    if isinstance(view, ScopedStepsView):
        own = {local: names.get(template_of(rec), rec) for local, rec in view.names.items()}
        inherited["steps"] = ScopedStepsView(view.records, own)
    return inherited


def _walk(steps: tuple[Step, ...]) -> Iterator[Step]:
    # A parallel group inside a body is part of the iteration; a nested loop's own body
    # is not (its iterations get scopes of their own).
    for s in steps:
        yield s
        yield from _walk(s.children)


def scoped_step(template: Step, scope: Scope, container: str) -> Step:
    """`template` as it runs in `scope` (ids, dependencies, branch targets renamed)."""
    body = template.body
    if isinstance(body, ConditionalBody):
        body = ConditionalBody(
            tuple(
                Branch(b.when, tuple(scope.sid(t) for t in b.next_steps), b.name)
                for b in body.branches
            )
        )
    return replace(
        template,
        step_id=scope.sid(template.step_id),
        dependencies=tuple(scope.sid(d) for d in template.dependencies),
        container=container,
        body=body,
    )


class ScopedStepsView(Mapping[str, Any]):
    """`steps` in an iteration's expressions: its own steps first, then the run's."""

    def __init__(self, records: Mapping[str, StepRecord], names: Mapping[str, str]) -> None:
        self._records = records
        self._names = names

    @property
    def names(self) -> Mapping[str, str]:
        """The names it resolves first (name -> record id)."""
        return self._names

    @property
    def records(self) -> Mapping[str, StepRecord]:
        return self._records

    def __getitem__(self, key: str) -> Any:
        return self._records[self._names.get(key, key)].view()

    def __iter__(self) -> Iterator[str]:
        seen = set(self._names)
        yield from self._names
        yield from (k for k in self._records if k not in seen and "[" not in k)

    def __len__(self) -> int:
        return sum(1 for _ in self)
