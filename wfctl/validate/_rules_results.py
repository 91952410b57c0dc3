"""Rules on results: `depends` expressions, error-handler recovery, `retry_if` and the
workflow's `on_exit` steps."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from wfctl.validate._context import Context, StepInfo, as_list, str_list
from wfctl.validate._depends import DEPENDS_ATTRS
from wfctl.validate._rules_expressions import BASE_NAMES, template_sites
from wfctl.validate.schema_messages import did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import Path_
    from wfctl.expressions.analysis import Analysis

__all__ = ["check_results"]

# What `retry_if` sees besides the step's own names.
_RETRY_IF_NAMES: Final = BASE_NAMES | {"output", "error", "attempt"}
# What the path of a file output sees.
_PATH_NAMES: Final = BASE_NAMES | {"output", "input"}
# What a `recover_output` template sees.
_RECOVER_NAMES: Final = BASE_NAMES | {"output", "error", "input"}


def check_results(ctx: Context) -> None:
    """Every results rule, in document order of the steps."""
    error_handlers = {
        ref for info in ctx.steps.values() for ref in str_list(info.data.get("error_handlers"))
    }
    for info in ctx.steps.values():
        _check_depends(ctx, info)
        _check_recover(ctx, info, error_handlers)
        _check_retry_if(ctx, info.data.get("retry_policy"), (*info.path, "retry_policy"))
        _check_file_outputs(ctx, info)
    _check_retry_if(ctx, ctx.doc.data.get("retry_policy"), ("retry_policy",))
    _check_exit_steps(ctx)


# ------------------------------------------------------------------------- depends


def _analyse(ctx: Context, path: Path_, source: str, bare: bool) -> Analysis | None:
    from wfctl.expressions import ExpressionError
    from wfctl.expressions.analysis import analyse

    try:
        return analyse(source, bare)
    except ExpressionError as exc:
        what = "expression" if bare else "template"
        ctx.report(path, "expression-syntax", f"invalid {what}: {exc.message}")
        return None


def _check_depends(ctx: Context, info: StepInfo) -> None:
    source = info.data.get("depends")
    if not isinstance(source, str):
        return
    path: Path_ = (*info.path, "depends")
    found = _analyse(ctx, path, source, True)
    if found is None:
        return
    for ref in sorted(found.names):
        if _check_depends_ref(ctx, info, path, source, ref):
            _check_flags(ctx, path, source, ref)
    if "trigger_rule" in info.data:
        ctx.report(
            (*info.path, "trigger_rule"),
            "depends-trigger-rule",
            f"step '{info.step_id}' has both `depends` and `trigger_rule`",
            "`depends` decides when the step runs: remove trigger_rule",
            key=True,
        )


def _check_depends_ref(ctx: Context, info: StepInfo, path: Path_, source: str, ref: str) -> bool:
    """Report a name of `depends` that is no step it may depend on; True if it is one."""
    pos = ctx.locate(path, source, _name_offset(source, ref))
    target = ctx.steps.get(ref)
    if ref == info.step_id:
        ctx.report(path, "self-dependency", f"step '{ref}' cannot depend on itself", pos=pos)
    elif target is None:
        hint = did_you_mean(ref, list(ctx.steps)) or (
            "in `depends` every name is a step id: write `build.succeeded`, `lint.failed`"
        )
        ctx.report(path, "unknown-step", f"depends names unknown step '{ref}'", hint, pos=pos)
    elif target.container != info.container or ref in ctx.exit_steps:
        ctx.report(
            path,
            "cross-level-reference",
            f"depends names step '{ref}', which is not at the level of '{info.step_id}'",
            "depends may name only steps it could list in `dependencies`",
            pos=pos,
        )
    else:
        return True
    return False


def _check_flags(ctx: Context, path: Path_, source: str, ref: str) -> None:
    for match in re.finditer(rf"(?<![\w.'\"]){re.escape(ref)}\s*\.\s*([A-Za-z_]\w*)", source):
        attr = match.group(1)
        if attr in DEPENDS_ATTRS:
            continue
        ctx.report(
            path,
            "unknown-name",
            f"a step's result has no flag '{attr}' (in depends: {ref}.{attr})",
            did_you_mean(attr.lower(), DEPENDS_ATTRS)
            or f"known: {', '.join(sorted(DEPENDS_ATTRS))}",
            pos=ctx.locate(path, source, match.start(1)),
        )


def _name_offset(source: str, name: str) -> int | None:
    from wfctl.expressions.analysis import name_offset

    return name_offset(source, name)


# ------------------------------------------------------------------------- recover


def _check_recover(ctx: Context, info: StepInfo, error_handlers: set[str]) -> None:
    data = info.data
    if data.get("recover") is True and info.step_id not in error_handlers:
        ctx.report(
            (*info.path, "recover"),
            "recover-misuse",
            f"step '{info.step_id}' has `recover: true` but no step lists it in error_handlers",
            "recover applies to an error handler: add it to the failing step's error_handlers",
            key=True,
        )
    if "recover_output" in data and data.get("recover") is not True:
        ctx.report(
            (*info.path, "recover_output"),
            "recover-misuse",
            f"step '{info.step_id}' has `recover_output` without `recover: true`",
            "add `recover: true`, or remove recover_output",
            key=True,
        )
    if "recover_output" in data:
        path: Path_ = (*info.path, "recover_output")
        for site in template_sites(data["recover_output"], path, frozenset()):
            _check_names(ctx, site.path, site.source, False, _RECOVER_NAMES)


# ------------------------------------------------------------------------- retry_if


def _check_retry_if(ctx: Context, policy: Any, path: Path_) -> None:
    if not isinstance(policy, dict) or not isinstance(policy.get("retry_if"), str):
        return
    _check_names(ctx, (*path, "retry_if"), policy["retry_if"], True, _RETRY_IF_NAMES)


def _check_names(
    ctx: Context, path: Path_, source: str, bare: bool, allowed: frozenset[str]
) -> None:
    found = _analyse(ctx, path, source, bare)
    if found is None:
        return
    for name in sorted(found.names - allowed):
        ctx.report(
            path,
            "unknown-name",
            f"unknown name '{name}' in {'expression' if bare else 'template'}",
            did_you_mean(name, allowed) or f"known names here: {', '.join(sorted(allowed))}",
            pos=ctx.locate(path, source, _name_offset(source, name)),
        )
    for ref in sorted(found.steps - set(ctx.steps)):
        ctx.report(path, "unknown-step", f"expression refers to unknown step '{ref}'")


def _check_file_outputs(ctx: Context, info: StepInfo) -> None:
    outputs = info.data.get("outputs")
    if not isinstance(outputs, dict):
        return
    for name, spec in outputs.items():
        if isinstance(spec, dict) and isinstance(spec.get("path"), str):
            path: Path_ = (*info.path, "outputs", name, "path")
            for site in template_sites(spec["path"], path, frozenset()):
                _check_names(ctx, site.path, site.source, False, _PATH_NAMES)


# ------------------------------------------------------------------------- on_exit


def _exit_problems(info: StepInfo) -> Iterator[tuple[str, str, str]]:
    """(key, message, hint) for what an on_exit step may not have."""
    data = info.data
    for key in ("dependencies", "next_steps"):
        if as_list(data.get(key)):
            yield (
                key,
                f"on_exit step '{info.step_id}' cannot have {key}",
                "on_exit steps run one after another, in list order, after every other step",
            )
    step_type = data.get("step_type", "action")
    if step_type != "action":
        yield (
            "step_type",
            f"on_exit step '{info.step_id}' is a {step_type} step; only action steps can be",
            "run the work as an action step (shell, python, http ...)",
        )
    if "depends" in data or "trigger_rule" in data:
        key = "depends" if "depends" in data else "trigger_rule"
        yield (key, f"on_exit step '{info.step_id}' cannot have {key}", "use `when`")


def _check_exit_steps(ctx: Context) -> None:
    for step_id in sorted(ctx.exit_steps, key=lambda s: ctx.steps[s].path):
        info = ctx.steps[step_id]
        for key, message, hint in _exit_problems(info):
            ctx.report((*info.path, key), "exit-step", message, hint, key=True)
    for info in ctx.steps.values():
        if info.step_id in ctx.exit_steps:
            continue
        for i, ref in enumerate(as_list(info.data.get("dependencies"))):
            if isinstance(ref, str) and ref in ctx.exit_steps:
                ctx.report(
                    (*info.path, "dependencies", i),
                    "exit-step",
                    f"step '{info.step_id}' depends on on_exit step '{ref}', which runs "
                    "after every other step",
                    "an on_exit step's result is visible only to later on_exit steps",
                )
