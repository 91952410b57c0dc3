"""Rules on step ids: references to unknown steps, to the step itself or across levels,
else branches, SLA entries, and handler steps that wait on others."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Final

from wfctl.validate._context import Context, StepInfo, as_list, str_list
from wfctl.validate.schema_messages import did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import Path_

__all__ = ["ID_LISTS", "check_branches", "check_handlers", "check_references", "check_sla_steps"]

ID_LISTS: Final = ("dependencies", "next_steps", "error_handlers", "rollback_actions")
_SAME_LEVEL_LISTS: Final = frozenset({"dependencies", "next_steps"})


def _references(info: StepInfo) -> Iterator[tuple[Path_, str, str]]:
    """(path, step id, list it is in) for every id a step names in its id lists."""
    for key in ID_LISTS:
        for i, ref in enumerate(as_list(info.data.get(key))):
            if isinstance(ref, str):
                yield (*info.path, key, i), ref, key
    for b, branch in enumerate(as_list(info.data.get("conditions"))):
        if isinstance(branch, dict):
            for i, ref in enumerate(as_list(branch.get("next_steps"))):
                if isinstance(ref, str):
                    yield (*info.path, "conditions", b, "next_steps", i), ref, "next_steps"


def check_references(ctx: Context) -> None:
    """Every id in dependencies, next_steps, handlers and react tools names a known step."""
    known = list(ctx.steps)
    for info in ctx.steps.values():
        for path, ref, key in _references(info):
            _check_ref(ctx, info, path, ref, key, known)
        _check_tool_steps(ctx, info, known)


def _check_ref(
    ctx: Context, info: StepInfo, path: Path_, ref: str, key: str, known: list[str]
) -> None:
    if ref == info.step_id:
        what = "depend on itself" if key == "dependencies" else f"list itself in {key}"
        ctx.report(path, "self-dependency", f"step '{ref}' cannot {what}")
        return
    target = ctx.steps.get(ref)
    if target is None:
        ctx.report(path, "unknown-step", f"unknown step '{ref}' in {key}", did_you_mean(ref, known))
        return
    if key in _SAME_LEVEL_LISTS and target.container != info.container:
        where = f"inside '{info.container}'" if info.container else "at the top level"
        hint = (
            f"depend on the enclosing parallel step '{info.container}' instead"
            if info.container
            else "steps after a parallel step depend on the parallel step itself"
        )
        ctx.report(
            path,
            "cross-level-reference",
            f"step '{ref}' is not {where}: {key} may only name steps at the same level",
            hint,
        )


def _check_tool_steps(ctx: Context, info: StepInfo, known: list[str]) -> None:
    for t, tool in enumerate(info.react_tools()):
        ref = tool.get("step") if isinstance(tool, dict) else None
        if isinstance(ref, str) and ref not in ctx.steps:
            ctx.report(
                (*info.path, "with", "tools", t, "step"),
                "unknown-step",
                f"unknown step '{ref}' in tool '{tool.get('name', t)}'",
                did_you_mean(ref, known),
            )


def check_branches(ctx: Context) -> None:
    """The branch without `when` (the else branch) must be the last one."""
    for info in ctx.steps.values():
        branches = as_list(info.data.get("conditions"))
        for b, branch in enumerate(branches[:-1]):
            if isinstance(branch, dict) and "when" not in branch:
                ctx.report(
                    (*info.path, "conditions", b),
                    "else-not-last",
                    "a branch without `when` (the else branch) must be the last one",
                    "branches after it could never be chosen",
                )


def check_sla_steps(ctx: Context) -> None:
    """`sla_targets.step_max_duration` and `on_sla_breach` name known steps."""
    for i, ref in enumerate(as_list(ctx.doc.data.get("on_sla_breach"))):
        if isinstance(ref, str) and ref not in ctx.steps:
            ctx.report(
                ("on_sla_breach", i),
                "unknown-step",
                f"unknown step '{ref}' in on_sla_breach",
                did_you_mean(ref, list(ctx.steps)),
            )
    sla = ctx.doc.data.get("sla_targets")
    per_step = sla.get("step_max_duration") if isinstance(sla, dict) else None
    if not isinstance(per_step, dict):
        return
    known = list(ctx.steps)
    for ref in per_step:
        if isinstance(ref, str) and ref not in ctx.steps:
            ctx.report(
                ("sla_targets", "step_max_duration", ref),
                "unknown-step",
                f"unknown step '{ref}' in sla_targets.step_max_duration",
                did_you_mean(ref, known),
                key=True,
            )


def check_handlers(ctx: Context) -> None:
    """A handler, rollback or react tool step runs only when invoked: no dependencies."""
    for ref in sorted(ctx.handlers):
        info = ctx.steps.get(ref)
        if info is None or not str_list(info.data.get("dependencies")):
            continue
        ctx.report(
            (*info.path, "dependencies"),
            "handler-has-dependencies",
            (
                f"step '{ref}' is a react tool, so it cannot have dependencies"
                if ref in ctx.tool_steps
                else f"step '{ref}' is an error handler or rollback action, so it "
                "cannot have dependencies"
            ),
            "a handler step runs only when invoked: remove its dependencies",
            key=True,
        )
