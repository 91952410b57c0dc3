"""Rules on expressions and templates: syntax, unknown names, references to steps that are
unknown or not upstream, and secrets templated into shell commands.

What an expression reads comes from the public `wfctl.expressions.analysis` (imported when
there is an expression to check: it brings Jinja).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wfctl.validate._context import Context, StepInfo, as_list
from wfctl.validate.schema_messages import did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import Path_
    from wfctl.expressions import ExpressionError
    from wfctl.expressions.analysis import Analysis

__all__ = ["BASE_NAMES", "WORKFLOW_ATTRS", "Site", "check_expressions", "step_sites"]

# Names an expression may use, by where it stands; anything else is a typo.
BASE_NAMES: Final = frozenset({"inputs", "vars", "steps", "workflow", "secrets"})
# What `workflow` holds at run time (the executor's workflow view).
WORKFLOW_ATTRS: Final = frozenset({"id", "name", "version", "run_id", "artifacts"})
# What `workflow` holds besides, in an on_exit step.
EXIT_ATTRS: Final = frozenset({"status", "failures"})
# An agent's `with` is rendered in the context of whichever step it serves.
_AGENT_NAMES: Final = frozenset({"input", "loop", "error"})
# Mappings whose values are bare expressions, and the names each adds.
_MAPPINGS: Final[tuple[tuple[str, frozenset[str]], ...]] = (
    ("input_mapping", frozenset()),
    ("output_mapping", frozenset({"output", "input"})),
    ("custom_metrics", frozenset({"output", "input"})),
)
# Where a step may name its own result (it has one by then).
_OWN_RESULT_KEYS: Final = frozenset({"output_mapping", "custom_metrics"})


@dataclass(frozen=True)
class Site:
    """One expression or template in the document."""

    path: Path_
    source: str
    bare: bool  # a bare expression (`when`), not a `{{ }}` template
    names: frozenset[str]  # names visible here besides BASE_NAMES
    workflow_attrs: frozenset[str] = frozenset()  # `workflow.` attributes besides the usual


def _names_of(ctx: Context, info: StepInfo) -> frozenset[str]:
    extra: set[str] = set()
    if info.step_id in ctx.handlers:
        extra.add("error")
    loop = info if info.data.get("step_type") == "loop" else _loop_of(ctx, info)
    if loop is not None:
        extra.add("loop")
        if "matrix" in loop.data:
            extra.add("matrix")
    return frozenset(extra)


def _after_iteration(ctx: Context, info: StepInfo, site: Site, ref: str) -> bool:
    """A group loop's `loop_condition` / `until` read its body's steps, which have run
    (in that iteration) when they are evaluated."""
    keyed = site.path[len(info.path)] if len(site.path) > len(info.path) else ""
    return keyed in ("loop_condition", "until") and ctx.steps[ref].container == info.step_id


def _loop_of(ctx: Context, info: StepInfo) -> StepInfo | None:
    """The group loop whose body holds `info` (maybe in a parallel group there): its
    `loop` (and a matrix's `matrix`) are visible."""
    container = info.container
    while container is not None and container in ctx.steps:
        outer = ctx.steps[container]
        if outer.data.get("step_type") == "loop":
            return outer
        container = outer.container
    return None


def _condition_sites(info: StepInfo, base: frozenset[str]) -> Iterator[Site]:
    data = info.data
    if isinstance(data.get("when"), str):
        yield Site((*info.path, "when"), data["when"], True, base)
    for b, branch in enumerate(as_list(data.get("conditions"))):
        if isinstance(branch, dict) and isinstance(branch.get("when"), str):
            yield Site((*info.path, "conditions", b, "when"), branch["when"], True, base)
    for key in ("loop_condition", "until"):
        if isinstance(data.get(key), str):
            yield Site((*info.path, key), data[key], True, base | {"loop"})
    if isinstance(data.get("for_each"), str):
        yield Site((*info.path, "for_each"), data["for_each"], True, base)


def _mapping_sites(info: StepInfo, base: frozenset[str]) -> Iterator[Site]:
    for key, names in _MAPPINGS:
        mapping = info.data.get(key)
        if isinstance(mapping, dict):
            for name, source in mapping.items():
                if isinstance(source, str):
                    yield Site((*info.path, key, name), source, True, base | names)


def step_sites(ctx: Context, info: StepInfo) -> list[Site]:
    """Every expression and template of a step, in document order."""
    base = _names_of(ctx, info)
    sites = [*_condition_sites(info, base), *_mapping_sites(info, base)]
    if "with" in info.data:
        sites.extend(template_sites(info.data["with"], (*info.path, "with"), base | {"input"}))
    cache = info.data.get("cache")
    if isinstance(cache, dict) and "key" in cache:
        # Rendered before the step runs, without its `input` (wfctl.engine.step_cache).
        sites.extend(template_sites(cache["key"], (*info.path, "cache", "key"), base))
    if info.step_id in ctx.exit_steps:
        # What only an on_exit step sees: the run's outcome.
        sites = [dataclasses.replace(s, workflow_attrs=EXIT_ATTRS) for s in sites]
    return sites


def template_sites(value: Any, path: Path_, names: frozenset[str]) -> Iterator[Site]:
    """Every templated string inside a `with:` value (keys are not templated)."""
    from wfctl.expressions import is_template

    if isinstance(value, str):
        if is_template(value):
            yield Site(path, value, False, names)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from template_sites(item, (*path, key), names)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from template_sites(item, (*path, index), names)


def check_expressions(ctx: Context) -> None:
    """Check every expression of every step, then of every agent's `with`."""
    checker = _Expressions(ctx)
    for info in ctx.steps.values():
        checker.step(info)
    for a, agent in enumerate(as_list(ctx.doc.data.get("agents"))):
        if isinstance(agent, dict) and "with" in agent:
            checker.agent(a, agent)
    outputs = ctx.doc.data.get("outputs")
    if isinstance(outputs, dict):
        checker.outputs(outputs)


class _Expressions:
    """The expression rules, sharing the context and the list of declared secrets."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        secrets = ctx.doc.data.get("secrets")
        self.secret_names = sorted(secrets) if isinstance(secrets, dict) else []

    def step(self, info: StepInfo) -> None:
        # An on_exit step, like a handler, runs after the steps it may read.
        is_handler = info.step_id in self.ctx.handlers or info.step_id in self.ctx.exit_steps
        shell = info.data.get("action") == "shell"
        for site in step_sites(self.ctx, info):
            found = self.analyse(site)
            if found is None:
                continue
            self.check_names(site, found)
            self.check_limits(site, found)
            if found.steps:
                self.check_step_refs(info, site, found.steps, is_handler)
            if shell and "secrets" in found.names and _is_shell_command(site.path, info.path):
                self.report_secret(site)

    def agent(self, a: int, agent: dict[str, Any]) -> None:
        shell = agent.get("action") == "shell"
        for site in template_sites(agent["with"], ("agents", a, "with"), _AGENT_NAMES):
            found = self.analyse(site)
            if found is None:
                continue
            self.check_names(site, found)
            for ref in sorted(found.steps - set(self.ctx.steps)):
                self.report_unknown_step(site, ref)
            if shell and _is_shell_command(site.path, ("agents", a)) and "secrets" in found.names:
                self.report_secret(site)

    def outputs(self, outputs: dict[str, Any]) -> None:
        """A workflow's `outputs:` (what its caller reads), rendered once all its steps
        have ended: any of them may be named, none is ahead of it."""
        for site in template_sites(outputs, ("outputs",), frozenset()):
            found = self.analyse(site)
            if found is None:
                continue
            self.check_names(site, found)
            self.check_limits(site, found)
            for ref in sorted(found.steps - set(self.ctx.steps)):
                self.report_unknown_step(site, ref)

    def analyse(self, site: Site) -> Analysis | None:
        from wfctl.expressions import ExpressionError
        from wfctl.expressions.analysis import analyse

        try:
            return analyse(site.source, site.bare)
        except ExpressionError as exc:
            self.report_error(site, exc)
            return None

    def report_error(self, site: Site, exc: ExpressionError) -> None:
        from wfctl.expressions.analysis import line_offset

        offset: int | None = None
        if exc.lineno is not None and exc.lineno > 1:
            offset = line_offset(site.source, exc.lineno)
        self.ctx.report(
            site.path,
            "expression-syntax",
            _error_message(site, exc.message),
            _expression_hint(site),
            pos=self.ctx.locate(site.path, site.source, offset),
        )

    def check_limits(self, site: Site, found: Analysis) -> None:
        """Resource limits the expression exceeds on its constants alone (issue 15)."""
        for problem in found.limits:
            self.ctx.report(
                site.path,
                "expression-limit",
                _error_message(site, problem),
                "every run would fail here: expressions are bounded in size and time",
            )

    def check_names(self, site: Site, found: Analysis) -> None:
        from wfctl.expressions.analysis import name_offset, workflow_attr_offset

        known_attrs = WORKFLOW_ATTRS | site.workflow_attrs
        for attr in sorted(found.workflow_attrs - known_attrs):
            self.ctx.report(
                site.path,
                "unknown-name",
                f"workflow has no attribute '{attr}'",
                did_you_mean(attr, known_attrs)
                or f"known: {', '.join(f'workflow.{a}' for a in sorted(known_attrs))}",
                pos=self.ctx.locate(
                    site.path, site.source, workflow_attr_offset(site.source, attr)
                ),
            )
        allowed = BASE_NAMES | site.names
        for name in sorted(found.names - allowed):
            hint = did_you_mean(name, allowed) or f"known names here: {', '.join(sorted(allowed))}"
            self.ctx.report(
                site.path,
                "unknown-name",
                f"unknown name '{name}' in {'expression' if site.bare else 'template'}",
                hint,
                pos=self.ctx.locate(site.path, site.source, name_offset(site.source, name)),
            )

    def check_step_refs(
        self, info: StepInfo, site: Site, refs: frozenset[str], is_handler: bool
    ) -> None:
        for ref in sorted(refs):
            if ref not in self.ctx.steps:
                self.report_unknown_step(site, ref)
            elif ref == info.step_id:
                self.check_own_result(info, site)
            elif (
                not is_handler
                and not self.ctx.is_upstream(info.step_id, ref)
                and not _after_iteration(self.ctx, info, site, ref)
            ):
                self.ctx.report(
                    site.path,
                    "not-upstream",
                    f"expression refers to step '{ref}', which is not upstream of "
                    f"'{info.step_id}' (it may not have run yet)",
                    f"add '{ref}' to the dependencies of '{info.step_id}'",
                    pos=self.ref_pos(site, ref),
                )

    def check_own_result(self, info: StepInfo, site: Site) -> None:
        keyed = site.path[len(info.path)] if len(site.path) > len(info.path) else ""
        if keyed not in _OWN_RESULT_KEYS:
            self.ctx.report(
                site.path,
                "not-upstream",
                f"step '{info.step_id}' refers to its own result before it has one",
                "use `output` in output_mapping or custom_metrics",
                pos=self.ref_pos(site, info.step_id),
            )

    def ref_pos(self, site: Site, ref: str) -> tuple[int, int]:
        from wfctl.expressions.analysis import step_ref_offset

        return self.ctx.locate(site.path, site.source, step_ref_offset(site.source, ref))

    def report_unknown_step(self, site: Site, ref: str) -> None:
        self.ctx.report(
            site.path,
            "unknown-step",
            f"expression refers to unknown step '{ref}'",
            did_you_mean(ref, list(self.ctx.steps)),
            pos=self.ref_pos(site, ref),
        )

    def report_secret(self, site: Site) -> None:
        from wfctl.expressions.analysis import name_offset

        names = self.secret_names
        shown = f" ({', '.join(names)})" if names else ""
        self.ctx.report(
            site.path,
            "secret-in-shell",
            "secrets must not be templated into a shell command",
            f"secrets reach shell steps as environment variables{shown}: "
            'write "$NAME" in the command',
            pos=self.ctx.locate(site.path, site.source, name_offset(site.source, "secrets")),
        )


def _error_message(site: Site, message: str) -> str:
    what = "expression" if site.bare else "template"
    if not message.startswith("syntax error: "):
        return f"invalid {what}: {message}"
    detail = message.removeprefix("syntax error: ")
    detail = detail.replace("'end of expression'", "end of expression")
    detail = detail.replace("'end of template'", "end of template")
    return f"syntax error in {what}: {detail}"


def _is_shell_command(path: Path_, owner: Path_) -> bool:
    n = len(owner)
    return len(path) > n + 1 and path[n] == "with" and path[n + 1] == "command"


def _expression_hint(site: Site) -> str | None:
    if site.bare and "{{" in site.source:
        return "a condition or mapping is a bare expression: write it without `{{ }}`"
    return None
