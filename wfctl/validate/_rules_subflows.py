"""Sub-workflow calls (`uses:`): the child file exists and is valid (its problems reported
at its own file:line), or the `#name` is one of this file's `workflows:`; the call's
`with:` fits the child's declared `inputs`; and no chain of calls returns to a file it
came from through another file (a file calling itself is recursion, bounded at run time)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wfctl.document.local_workflows import is_local, local_body, local_names
from wfctl.validate._context import Context
from wfctl.validate._words import did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument

__all__ = ["check_subflows"]

# The files being checked now, outermost first: a call back into one of them is recursion
# (the same file) or a cycle (another file), and is not checked again.
_CHECKING: list[str] = []


def _child_path(parent_file: str, uses: str) -> str:
    return os.path.normpath(Path(parent_file).parent / uses)


def check_subflows(ctx: Context) -> None:
    """Check every call step of the document."""
    me = _key(ctx.doc.file)
    _CHECKING.append(me)
    try:
        for info in list(ctx.steps.values()):
            uses = info.data.get("uses")
            if isinstance(uses, str) and is_local(uses):
                _check_local_call(ctx, info.path, info.data, uses[1:])
            elif isinstance(uses, str) and uses:
                _check_call(ctx, info.path, info.data, uses)
    finally:
        _CHECKING.pop()


def _key(file: str) -> str:
    return os.path.realpath(file)


def _check_call(ctx: Context, path: tuple[Any, ...], raw: dict[str, Any], uses: str) -> None:
    file = _child_path(ctx.doc.file, uses)
    at = (*path, "uses")
    if not Path(file).is_file():
        ctx.report(
            at,
            "subflow-not-found",
            f"sub-workflow file '{file}' does not exist",
            "`uses` is a path relative to the calling file",
        )
        return
    key = _key(file)
    if key in _CHECKING:
        if key != _CHECKING[-1]:
            chain = " -> ".join(os.path.relpath(f) for f in _CHECKING[_CHECKING.index(key) :])
            ctx.report(
                at,
                "subflow-cycle",
                f"sub-workflow cycle: {chain} -> {file}",
                "only a file calling itself (guarded by `when`) may recurse",
            )
        return
    child = _load(ctx, at, file)
    if child is not None:
        _check_with(ctx, path, raw.get("with", {}), child.data.get("inputs", {}))


def _check_local_call(ctx: Context, path: tuple[Any, ...], raw: dict[str, Any], name: str) -> None:
    """A call of a workflow of this file's `workflows:` (its own problems are reported
    with this file's, at their lines)."""
    callee = local_body(ctx.doc, name)
    if callee is None:
        names = local_names(ctx.doc)
        known = ", ".join(names) if names else "none"
        ctx.report(
            (*path, "uses"),
            "subflow-not-found",
            f"no workflow '{name}' in this file's `workflows:` (defined: {known})",
            did_you_mean(name, names) or '`uses: "#name"` names an entry of `workflows:`',
        )
        return
    _check_with(ctx, path, raw.get("with", {}), callee.get("inputs", {}))


def _load(ctx: Context, at: tuple[Any, ...], file: str) -> LoadedDocument | None:
    """The child, validated: its problems go out at its own file:line."""
    from wfctl.document.loader import load_file
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.validate.files import check_document

    try:
        doc = load_file(file, display_name=file)
    except (WorkflowError, OSError) as exc:
        problems = list(getattr(exc, "diagnostics", ()))
        ctx.out.extend(problems)
        ctx.report(at, "subflow-invalid", f"sub-workflow '{file}' cannot be read")
        return None
    problems = check_document(doc)
    ctx.out.extend(problems)
    errors = [p for p in problems if p.severity.value == "error"]
    if errors:
        ctx.report(
            at,
            "subflow-invalid",
            f"sub-workflow '{file}' has {len(errors)} problem(s), listed at its lines",
        )
        return None
    return doc


def _check_with(ctx: Context, path: tuple[Any, ...], given: Any, declared: Any) -> None:
    if not isinstance(given, dict) or not isinstance(declared, dict):
        return
    known = ", ".join(sorted(declared)) or "none"
    for name in given:
        if name not in declared:
            ctx.report(
                (*path, "with", name),
                "subflow-input",
                f"unknown input '{name}' of the sub-workflow (its inputs: {known})",
                key=True,
            )
    for name, schema in declared.items():
        if name not in given and not (isinstance(schema, Mapping) and "default" in schema):
            ctx.report(
                (*path, "with"),
                "subflow-input",
                f"missing required input '{name}' of the sub-workflow",
                key=True,
            )
        elif name in given and _literal(given[name]):
            problem = _type_problem(schema, given[name])
            if problem is not None:
                ctx.report(
                    (*path, "with", name),
                    "subflow-input",
                    f"input '{name}' = {given[name]!r}: {problem}",
                )


def _literal(value: Any) -> bool:
    """A value with no template in it (a template's type is known only when it runs)."""
    return not any("{{" in s or "{%" in s for s in _strings(value))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


def _type_problem(schema: Any, value: Any) -> str | None:
    from wfctl.format.user_schema import pattern_problem, user_validator
    from wfctl.validate._rules_schemas import schema_patterns, schema_problem

    if isinstance(schema, Mapping):
        schema = {k: v for k, v in schema.items() if k != "secret"}
    # A broken schema (of a `workflows:` entry's input) is reported where it is written.
    if schema_problem(schema) is not None or any(
        pattern_problem(p) for _, p in schema_patterns(schema)
    ):
        return None
    errors = sorted(user_validator(schema).iter_errors(value), key=lambda e: list(e.path))
    return errors[0].message if errors else None
