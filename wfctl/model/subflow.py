"""Sub-workflows (`uses:`): a step that runs another workflow file, or a workflow of its
file's `workflows:` (`uses: "#name"`), as part of the run.

The child's steps are built with the child's own defaults and `retry_policy`, then
inlined under the call's id (``deploy.build``, ``deploy.sub.x`` for a call inside it), so
that the scheduler, records, journal, report and `resume` treat them like the children
of a parallel step. Its `on_exit` steps run last, whatever its other steps did. A file
or a `workflows:` entry that calls itself (recursion, guarded by a `when`) is expanded up to
:data:`MAX_CALL_DEPTH` levels; a call deeper than that fails when it runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from wfctl.document.local_workflows import is_local, local_workflow
from wfctl.expressions import compile_value
from wfctl.model.enums import TriggerRule
from wfctl.model.steps import (
    Branch,
    ConditionalBody,
    ForEachBody,
    LoopBody,
    ParallelBody,
    ReactBody,
    Step,
    SubflowBody,
)

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument
    from wfctl.model.build import _StepBuilder

__all__ = ["MAX_CALL_DEPTH", "child_path", "load_child", "subflow_body"]

#: How deep calls may nest (a workflow calling itself counts each level).
MAX_CALL_DEPTH = 8


def child_path(parent_file: str, uses: str) -> str:
    """The file a `uses:` names, relative to the calling file's directory."""
    return os.path.normpath(Path(parent_file).parent / uses)


def load_child(path: str) -> LoadedDocument:
    """Load and validate a child file; raises WorkflowError at the child's file:line."""
    from wfctl.document.loader import load_file
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.validate.files import check_document

    doc = load_file(path, display_name=path)
    problems = [d for d in check_document(doc) if d.severity.value == "error"]
    if problems:
        raise WorkflowError(problems)
    return doc


def subflow_body(builder: _StepBuilder, r: Mapping[str, Any], path: tuple[Any, ...]) -> SubflowBody:
    """The body of a call step: the child file built and inlined under the call's id."""
    from wfctl.model.build import _StepBuilder
    from wfctl.model.policies import retry_policy_from

    uses = str(r["uses"])
    file = builder.doc.file if is_local(uses) else child_path(builder.doc.file, uses)
    with_ = compile_value(r.get("with", {}))
    depth = len(builder.chain) + 1
    if depth > MAX_CALL_DEPTH:
        why = f"sub-workflow calls nest deeper than {MAX_CALL_DEPTH} levels ({uses})"
        return SubflowBody(uses, file, with_, {}, {}, {}, (), too_deep=why)
    doc = _callee(builder, uses, file)
    data = doc.data
    child = _StepBuilder(
        doc,
        retry_policy_from(data.get("retry_policy", {})),
        chain=(*builder.chain, builder.doc.file),
        docs=builder.docs,
    )
    top = [child.step(raw, ("steps", i), None) for i, raw in enumerate(data["steps"])]
    last = [child.step(raw, ("on_exit", i), None) for i, raw in enumerate(data.get("on_exit", []))]
    ordinary = tuple(s.step_id for s in top if s.step_id not in child.handlers)
    # The child's on_exit: after every other step of the child, whatever they did.
    last = [replace(s, dependencies=ordinary, trigger_rule=TriggerRule.ALL_DONE) for s in last]
    call_id = str(r["step_id"])
    steps = tuple(prefixed(s, call_id) for s in (*top, *last))
    for step in _walk(steps):
        builder.all_steps[step.step_id] = step
    builder.handlers |= {f"{call_id}.{h}" for h in child.handlers}
    return SubflowBody(
        uses=uses,
        file=file,
        with_=with_,
        inputs=MappingProxyType(dict(data.get("inputs", {}))),
        variables=MappingProxyType(dict(data.get("global_variables", {}))),
        outputs=MappingProxyType(
            {name: compile_value(v) for name, v in data.get("outputs", {}).items()}
        ),
        steps=steps,
        # The child's own ids (its calls' steps, dotted already, are not its names).
        local_ids=MappingProxyType({s: f"{call_id}.{s}" for s in child.all_steps if "." not in s}),
        on_exit=tuple(s.step_id for s in last),
    )


def _callee(builder: _StepBuilder, uses: str, file: str) -> LoadedDocument:
    """The document a call runs (each loaded once per build): a file, or a workflow of
    the calling file's `workflows:` (checked with that file already)."""
    key = f"{file}{uses}" if is_local(uses) else file
    found = builder.docs.get(key)
    if found is None:
        found = local_workflow(builder.doc, uses[1:]) if is_local(uses) else load_child(file)
        assert found is not None  # validation found the name
        builder.docs[key] = found
    return found


def _walk(steps: tuple[Step, ...]) -> list[Step]:
    out: list[Step] = []
    for s in steps:
        out.append(s)
        out += _walk(s.children)
        out += _walk(s.body_steps)
    return out


def prefixed(step: Step, call_id: str) -> Step:
    """`step` of a child as inlined under call `call_id` (every id it names too)."""

    def p(step_id: str) -> str:
        return f"{call_id}.{step_id}"

    return replace(
        step,
        step_id=p(step.step_id),
        dependencies=tuple(map(p, step.dependencies)),
        container=p(step.container) if step.container is not None else call_id,
        error_handlers=tuple(map(p, step.error_handlers)),
        rollback_actions=tuple(map(p, step.rollback_actions)),
        body=_prefixed_body(step, call_id),
    )


def _prefixed_body(step: Step, call_id: str) -> Any:
    body = step.body
    match body:
        case ParallelBody() | LoopBody() | ForEachBody():
            return replace(body, steps=tuple(prefixed(s, call_id) for s in body.steps))
        case SubflowBody():
            return replace(
                body,
                steps=tuple(prefixed(s, call_id) for s in body.steps),
                local_ids={k: f"{call_id}.{v}" for k, v in body.local_ids.items()},
            )
        case ConditionalBody():
            return ConditionalBody(
                tuple(
                    Branch(b.when, tuple(f"{call_id}.{t}" for t in b.next_steps), b.name)
                    for b in body.branches
                )
            )
        case ReactBody():
            tools = tuple(
                replace(t, step=f"{call_id}.{t.step}") if t.step else t for t in body.tools
            )
            return replace(body, tools=tools)
    return body
