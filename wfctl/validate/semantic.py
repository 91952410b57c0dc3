"""Semantic checks that JSON Schema cannot express: ids, graph shape, expressions, references.

Every check is robust to schema-invalid data (the schema errors are reported separately):
a value of the wrong shape is skipped, never trusted.

The driver collects the steps into a shared `Context`, then runs each rule of `RULES` in
order (the order of the diagnostics follows it). Each rule lives in the module of its
subject: `_rules_ids`, `_rules_graph` (on `wfctl.graph`), `_rules_expressions` (on
`wfctl.expressions.analysis`), `_rules_actions`, `_rules_schemas`, `_rules_containers`,
`_rules_results` (depends, recover, retry_if, on_exit), `_rules_subflows` (`uses:`),
`_rules_local_workflows` (the file's `workflows:`, each checked like a workflow).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from wfctl.validate._context import Context, collect_steps, str_list
from wfctl.validate._rules_actions import check_actions_and_agents
from wfctl.validate._rules_containers import check_loop_bodies, check_matrices
from wfctl.validate._rules_expressions import BASE_NAMES, check_expressions
from wfctl.validate._rules_graph import check_cycles, check_reachable
from wfctl.validate._rules_ids import (
    ID_LISTS,
    check_branches,
    check_handlers,
    check_references,
    check_sla_steps,
)
from wfctl.validate._rules_local_workflows import check_local_workflows
from wfctl.validate._rules_numbers import check_numbers
from wfctl.validate._rules_results import check_results
from wfctl.validate._rules_schemas import check_inputs
from wfctl.validate._rules_subflows import check_subflows

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument
    from wfctl.format.diagnostics import Diagnostic

__all__ = ["BASE_NAMES", "ID_LISTS", "RULES", "Rule", "semantic_diagnostics"]

Rule = Callable[[Context], None]

# In order: the cycle rule records the steps on cycles, which the reachability rule skips.
RULES: Final[tuple[Rule, ...]] = (
    check_references,
    check_branches,
    check_sla_steps,
    check_handlers,
    check_loop_bodies,
    check_matrices,
    check_cycles,
    check_reachable,
    check_expressions,
    check_actions_and_agents,
    check_inputs,
    check_results,
    check_numbers,
    check_subflows,
    check_local_workflows,
)


def semantic_diagnostics(doc: LoadedDocument) -> list[Diagnostic]:
    """Every semantic problem in a loaded workflow (robust to schema-invalid data)."""
    if not isinstance(doc.data, dict):
        return []
    ctx = Context(doc)
    collect_steps(ctx, doc.data.get("steps"), ("steps",), None)
    ctx.handlers.update(str_list(doc.data.get("on_sla_breach")))  # run only when invoked
    before = set(ctx.steps)
    collect_steps(ctx, doc.data.get("on_exit"), ("on_exit",), None)
    ctx.exit_steps = set(ctx.steps) - before
    for rule in RULES:
        rule(ctx)
    return ctx.out
