"""Semantic checks that JSON Schema cannot express: ids, graph shape, expressions, references.

Every check is robust to schema-invalid data (the schema errors are reported separately):
a value of the wrong shape is skipped, never trusted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, Final

from wfctl.format.diagnostics import Diagnostic
from wfctl.validate.schema_messages import compile_schema_check, describe_value, did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument, Path_
    from wfctl.expressions import ExpressionError

__all__ = ["BASE_NAMES", "ID_LISTS", "analyse", "semantic_diagnostics"]

# Names an expression may use, by where it stands; anything else is a typo.
BASE_NAMES: Final = frozenset({"inputs", "vars", "steps", "workflow", "secrets"})
# What `workflow` holds at run time (the executor's workflow view).
WORKFLOW_ATTRS: Final = frozenset({"id", "name", "version", "run_id"})
ID_LISTS: Final = ("dependencies", "next_steps", "error_handlers", "rollback_actions")
_HANDLER_LISTS: Final = ("error_handlers", "rollback_actions")


@dataclass
class StepInfo:
    """A step found in the document, nested ones included."""

    step_id: str
    path: Path_
    data: dict[str, Any]
    container: str | None  # id of the enclosing parallel step, None at top level
    deps: set[str] = field(default_factory=set)  # same-level dependencies after desugaring


@dataclass(frozen=True)
class _Site:
    """One expression or template in the document."""

    path: Path_
    source: str
    bare: bool  # a bare expression (`when`), not a `{{ }}` template
    names: frozenset[str]  # names visible here besides BASE_NAMES


@dataclass
class _Checker:
    doc: LoadedDocument
    out: list[Diagnostic] = field(default_factory=list)
    steps: dict[str, StepInfo] = field(default_factory=dict)
    handlers: set[str] = field(default_factory=set)
    tool_steps: set[str] = field(default_factory=set)  # named by react tools (also handlers)
    _lines: list[str] | None = None
    _upstream: list[int] | None = None
    _index: dict[str, int] = field(default_factory=dict)

    # -- reporting -------------------------------------------------------
    def report(
        self,
        path: Path_,
        code: str,
        message: str,
        hint: str | None = None,
        key: bool = False,
        pos: tuple[int, int] | None = None,
    ) -> None:
        from wfctl.document.loader import format_path

        if pos is None:
            sm = self.doc.source_map
            pos = sm.key_pos(path) if key else sm.value_pos(path)
        self.out.append(
            Diagnostic(self.doc.file, pos[0], pos[1], code, message, format_path(path), hint)
        )

    def lines(self) -> list[str]:
        if self._lines is None:
            self._lines = self.doc.text.split("\n")
        return self._lines

    def locate(self, path: Path_, source: str, offset: int | None) -> tuple[int, int]:
        """Position in the file of `source[offset]`, the string value at `path`.

        Exact for single-line plain and quoted scalars and for literal block scalars (`|`),
        whose text is the file's text; otherwise the position of the value itself.
        """
        line, col = self.doc.source_map.value_pos(path)
        if offset is None or not 0 <= offset <= len(source):
            return line, col
        lines = self.lines()
        if not 0 < line <= len(lines):
            return line, col
        text = lines[line - 1]
        indicator = text[col - 1 : col]
        if indicator == "|":
            return self._locate_literal(line, col, source, offset)
        if "\n" in source:
            return line, col
        quote = 1 if indicator in ("'", '"') else 0
        start = col - 1 + quote
        if text[start : start + len(source)] == source:
            return line, start + offset + 1
        return line, col

    def _locate_literal(self, line: int, col: int, source: str, offset: int) -> tuple[int, int]:
        lines = self.lines()
        sub_line = source.count("\n", 0, offset)
        line_start = source.rfind("\n", 0, offset) + 1
        first = next(
            (i for i in range(line, len(lines)) if lines[i].strip()),
            None,
        )
        if first is None:
            return line, col
        indent = len(lines[first]) - len(lines[first].lstrip(" "))
        target = line + sub_line  # 0-based index of the file line holding source line sub_line
        expected = source.split("\n")[sub_line]
        if target < len(lines) and lines[target][indent:].rstrip() == expected.rstrip():
            return target + 1, indent + offset - line_start + 1
        return line, col

    # -- collection ------------------------------------------------------
    def collect(self, steps: Any, base: Path_, container: str | None) -> None:
        if not isinstance(steps, list):
            return
        for index, raw in enumerate(steps):
            path: Path_ = (*base, index)
            if not isinstance(raw, dict) or not isinstance(raw.get("step_id"), str):
                continue
            step_id = raw["step_id"]
            if step_id in self.steps:
                first = self.steps[step_id]
                line, _ = self.doc.source_map.value_pos((*first.path, "step_id"))
                self.report(
                    (*path, "step_id"),
                    "duplicate-step-id",
                    f"duplicate step_id '{step_id}' (first defined at line {line})",
                    "step ids must be unique across the workflow, nested steps included",
                )
                continue
            self.steps[step_id] = StepInfo(step_id, path, raw, container)
            if raw.get("step_type") == "parallel":
                self.collect(raw.get("parallel_steps"), (*path, "parallel_steps"), step_id)
            for key in _HANDLER_LISTS:
                for ref in _str_list(raw.get(key)):
                    self.handlers.add(ref)
            with_ = raw.get("with")
            if raw.get("step_type") == "react" and isinstance(with_, dict):
                # A step a react tool names runs only as that tool, like a handler.
                for tool in _list(with_.get("tools")):
                    if isinstance(tool, dict) and isinstance(tool.get("step"), str):
                        self.handlers.add(tool["step"])
                        self.tool_steps.add(tool["step"])

    # -- references ------------------------------------------------------
    def check_references(self) -> None:
        known = list(self.steps)
        for info in self.steps.values():
            for key in ID_LISTS:
                for i, ref in enumerate(_list(info.data.get(key))):
                    if isinstance(ref, str):
                        self._check_ref(info, (*info.path, key, i), ref, key, known)
            for b, branch in enumerate(_list(info.data.get("conditions"))):
                if isinstance(branch, dict):
                    for i, ref in enumerate(_list(branch.get("next_steps"))):
                        if isinstance(ref, str):
                            path: Path_ = (*info.path, "conditions", b, "next_steps", i)
                            self._check_ref(info, path, ref, "next_steps", known)
            self._check_tool_steps(info, known)

    def _check_ref(self, info: StepInfo, path: Path_, ref: str, key: str, known: list[str]) -> None:
        if ref == info.step_id:
            what = "depend on itself" if key == "dependencies" else f"list itself in {key}"
            self.report(path, "self-dependency", f"step '{ref}' cannot {what}")
            return
        target = self.steps.get(ref)
        if target is None:
            self.report(
                path, "unknown-step", f"unknown step '{ref}' in {key}", did_you_mean(ref, known)
            )
            return
        if key in ("dependencies", "next_steps") and target.container != info.container:
            where = f"inside '{info.container}'" if info.container else "at the top level"
            hint = (
                f"depend on the enclosing parallel step '{info.container}' instead"
                if info.container
                else "steps after a parallel step depend on the parallel step itself"
            )
            self.report(
                path,
                "cross-level-reference",
                f"step '{ref}' is not {where}: {key} may only name steps at the same level",
                hint,
            )

    def _check_tool_steps(self, info: StepInfo, known: list[str]) -> None:
        with_ = info.data.get("with")
        if info.data.get("step_type") != "react" or not isinstance(with_, dict):
            return
        for t, tool in enumerate(_list(with_.get("tools"))):
            ref = tool.get("step") if isinstance(tool, dict) else None
            if isinstance(ref, str) and ref not in self.steps:
                self.report(
                    (*info.path, "with", "tools", t, "step"),
                    "unknown-step",
                    f"unknown step '{ref}' in tool '{tool.get('name', t)}'",
                    did_you_mean(ref, known),
                )

    def check_branches(self) -> None:
        """The branch without `when` (the else branch) must be the last one."""
        for info in self.steps.values():
            branches = _list(info.data.get("conditions"))
            for b, branch in enumerate(branches[:-1]):
                if isinstance(branch, dict) and "when" not in branch:
                    self.report(
                        (*info.path, "conditions", b),
                        "else-not-last",
                        "a branch without `when` (the else branch) must be the last one",
                        "branches after it could never be chosen",
                    )

    def check_sla_steps(self) -> None:
        sla = self.doc.data.get("sla_targets")
        per_step = sla.get("step_max_duration") if isinstance(sla, dict) else None
        if not isinstance(per_step, dict):
            return
        known = list(self.steps)
        for ref in per_step:
            if isinstance(ref, str) and ref not in self.steps:
                self.report(
                    ("sla_targets", "step_max_duration", ref),
                    "unknown-step",
                    f"unknown step '{ref}' in sla_targets.step_max_duration",
                    did_you_mean(ref, known),
                    key=True,
                )

    # -- graph -----------------------------------------------------------
    def build_edges(self) -> None:
        for info in self.steps.values():
            for ref in _str_list(info.data.get("dependencies")):
                if self._same_level(info.step_id, ref):
                    info.deps.add(ref)
            for ref in _str_list(info.data.get("next_steps")):
                if self._same_level(info.step_id, ref):
                    self.steps[ref].deps.add(info.step_id)
            for branch in _list(info.data.get("conditions")):
                if isinstance(branch, dict):
                    for ref in _str_list(branch.get("next_steps")):
                        if self._same_level(info.step_id, ref):
                            self.steps[ref].deps.add(info.step_id)

    def _same_level(self, a: str, b: str) -> bool:
        return a != b and b in self.steps and self.steps[a].container == self.steps[b].container

    def check_handlers(self) -> None:
        for ref in sorted(self.handlers):
            info = self.steps.get(ref)
            if info is None:
                continue
            if _str_list(info.data.get("dependencies")):
                self.report(
                    (*info.path, "dependencies"),
                    "handler-has-dependencies",
                    (
                        f"step '{ref}' is a react tool, so it cannot have dependencies"
                        if ref in self.tool_steps
                        else f"step '{ref}' is an error handler or rollback action, so it "
                        "cannot have dependencies"
                    ),
                    "a handler step runs only when invoked: remove its dependencies",
                    key=True,
                )

    def check_cycles(self) -> set[str]:
        """Report each dependency cycle once, with its path; return the steps on cycles."""
        white, grey, black = 0, 1, 2
        colour = dict.fromkeys(self.steps, white)
        on_cycle: set[str] = set()
        reported: set[frozenset[str]] = set()

        for root in self.steps:
            if colour[root] != white:
                continue
            # Iterative DFS: deep chains (10,000 steps) must not hit the recursion limit.
            stack: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(self.steps[root].deps)))]
            trail = [root]
            colour[root] = grey
            while stack:
                node, children = stack[-1]
                child = next(children, None)
                if child is None:
                    colour[node] = black
                    stack.pop()
                    trail.pop()
                    continue
                if colour[child] == grey:
                    cycle = trail[trail.index(child) :]
                    on_cycle.update(cycle)
                    members = frozenset(cycle)
                    if members not in reported:
                        reported.add(members)
                        # Dependencies point backwards; print the cycle in run order,
                        # starting from the step written first in the file.
                        order = [child, *reversed(cycle[1:])]
                        first = min(range(len(order)), key=lambda i: self._doc_order(order[i]))
                        order = order[first:] + order[:first]
                        text = " -> ".join([*order, order[0]])
                        self.report(
                            (*self.steps[order[0]].path, "step_id"),
                            "cycle",
                            f"dependency cycle: {text}",
                            "remove one of these dependencies",
                        )
                elif colour[child] == white:
                    colour[child] = grey
                    trail.append(child)
                    stack.append((child, iter(sorted(self.steps[child].deps))))
        return on_cycle

    def _doc_order(self, step_id: str) -> tuple[int, int]:
        return self.doc.source_map.value_pos(self.steps[step_id].path)

    def check_reachable(self, on_cycle: set[str]) -> None:
        """Steps that wait on a handler step can never start (nor can their dependents).

        Only the first step of each such chain is reported: the rest follows from it.
        Steps downstream of a cycle are not reported either; the cycle is.
        """
        handlers = self.handlers & set(self.steps)
        blocked = set(on_cycle) | handlers
        for step_id in self._topological():
            info = self.steps[step_id]
            if step_id in blocked:
                continue
            culprits = sorted(d for d in info.deps if d in blocked)
            if not culprits:
                continue
            blocked.add(step_id)
            direct = [c for c in culprits if c in handlers]
            if direct:
                self.report(
                    (*info.path, "step_id"),
                    "unreachable",
                    f"step '{step_id}' can never run: it waits on '{direct[0]}', "
                    "which is a handler step",
                    "handler steps run only from error_handlers/rollback_actions, never in "
                    "the normal flow",
                )

    def _topological(self) -> list[str]:
        indeg = dict.fromkeys(self.steps, 0)
        users: dict[str, list[str]] = {s: [] for s in self.steps}
        for info in self.steps.values():
            for dep in info.deps:
                indeg[info.step_id] += 1
                users[dep].append(info.step_id)
        ready = [s for s, n in indeg.items() if n == 0]
        order: list[str] = []
        while ready:
            node = ready.pop()
            order.append(node)
            for user in users[node]:
                indeg[user] -= 1
                if indeg[user] == 0:
                    ready.append(user)
        return order

    def is_upstream(self, step_id: str, ref: str) -> bool:
        """Whether `ref` surely ends before `step_id` starts.

        True when `ref` is reached from `step_id` through dependencies (a step inside a
        parallel step inherits its container's dependencies), or `ref` is inside a
        parallel step that is reached so (a finished parallel step's children are
        finished). The parallel steps enclosing `step_id` do not count: they are still
        running while their children run.
        """
        if self._upstream is None:
            self._upstream = self._upstream_masks()
        index = self._index[ref]
        return bool(self._upstream[self._index[step_id]] >> index & 1)

    def _upstream_masks(self) -> list[int]:
        """Per step, a bit set (an int) of the steps upstream of it; linear in the graph."""
        ids = list(self.steps)
        self._index = {s: i for i, s in enumerate(ids)}
        index = self._index
        inside = [0] * len(ids)  # bits of every step nested in a parallel step
        for step_id in ids:
            bit = 1 << index[step_id]
            for parent in self._containers_of(step_id):
                inside[index[parent]] |= bit
        masks: list[int | None] = [None] * len(ids)
        for root in ids:
            if masks[index[root]] is not None:
                continue
            # Iterative post-order: a step's mask needs its dependencies' and container's.
            stack: list[tuple[str, bool]] = [(root, False)]
            active: set[str] = set()
            while stack:
                node, ready = stack.pop()
                i = index[node]
                if masks[i] is not None:
                    continue
                info = self.steps[node]
                before = sorted(info.deps)
                if info.container is not None:
                    before.append(info.container)
                if not ready:
                    active.add(node)
                    stack.append((node, True))
                    # A dependency on a cycle (reported elsewhere) contributes nothing.
                    stack.extend(
                        (d, False) for d in before if masks[index[d]] is None and d not in active
                    )
                    continue
                mask = 0
                for dep in info.deps:
                    j = index[dep]
                    mask |= (1 << j) | inside[j] | (masks[j] or 0)
                if info.container is not None:
                    mask |= masks[index[info.container]] or 0
                masks[i] = mask
                active.discard(node)
        return [m or 0 for m in masks]

    def _containers_of(self, step_id: str) -> list[str]:
        chain: list[str] = []
        parent = self.steps[step_id].container
        while parent is not None and parent not in chain:
            chain.append(parent)
            parent = self.steps[parent].container
        return chain

    # -- expressions -----------------------------------------------------
    def step_sites(self, info: StepInfo) -> list[_Site]:
        data = info.data
        extra: set[str] = set()
        if info.step_id in self.handlers:
            extra.add("error")
        if data.get("step_type") == "loop":
            extra.add("loop")
        base = frozenset(extra)
        sites: list[_Site] = []
        if isinstance(data.get("when"), str):
            sites.append(_Site((*info.path, "when"), data["when"], True, base))
        for b, branch in enumerate(_list(data.get("conditions"))):
            if isinstance(branch, dict) and isinstance(branch.get("when"), str):
                path: Path_ = (*info.path, "conditions", b, "when")
                sites.append(_Site(path, branch["when"], True, base))
        if isinstance(data.get("loop_condition"), str):
            sites.append(
                _Site((*info.path, "loop_condition"), data["loop_condition"], True, base | {"loop"})
            )
        if isinstance(data.get("for_each"), str):
            sites.append(_Site((*info.path, "for_each"), data["for_each"], True, base))
        for key, names in (
            ("input_mapping", base),
            ("output_mapping", base | {"output", "input"}),
            ("custom_metrics", base | {"output", "input"}),
        ):
            mapping = data.get(key)
            if isinstance(mapping, dict):
                for name, source in mapping.items():
                    if isinstance(source, str):
                        sites.append(_Site((*info.path, key, name), source, True, names))
        if "with" in data:
            sites.extend(_template_sites(data["with"], (*info.path, "with"), base | {"input"}))
        return sites

    def check_expressions(self) -> None:
        secrets = self.doc.data.get("secrets")
        secret_names = sorted(secrets) if isinstance(secrets, dict) else []
        for info in self.steps.values():
            is_handler = info.step_id in self.handlers
            shell = info.data.get("action") == "shell"
            for site in self.step_sites(info):
                expr = self._compile(site)
                if expr is None:
                    continue
                self._check_names(site, expr)
                refs = expr.refs
                if refs:
                    self._check_step_refs(info, site, refs, is_handler)
                if shell and _is_shell_command(site.path, info.path) and "secrets" in expr.names:
                    self._report_secret(site, secret_names)
        for a, agent in enumerate(_list(self.doc.data.get("agents"))):
            if not isinstance(agent, dict) or "with" not in agent:
                continue
            # An agent's `with` is rendered in the context of whichever step it serves.
            names = frozenset({"input", "loop", "error"})
            for site in _template_sites(agent["with"], ("agents", a, "with"), names):
                expr = self._compile(site)
                if expr is None:
                    continue
                self._check_names(site, expr)
                for ref in sorted(expr.refs - set(self.steps)):
                    self._report_unknown_step_ref(site, ref)
                if (
                    agent.get("action") == "shell"
                    and _is_shell_command(site.path, ("agents", a))
                    and "secrets" in expr.names
                ):
                    self._report_secret(site, secret_names)

    def _compile(self, site: _Site) -> _Analysis | None:
        from wfctl.expressions import ExpressionError

        try:
            return analyse(site.source, site.bare)
        except ExpressionError as exc:
            self._report_expression_error(site, exc)
            return None

    def _report_expression_error(self, site: _Site, exc: ExpressionError) -> None:
        what = "expression" if site.bare else "template"
        message = exc.message
        if message.startswith("syntax error: "):
            detail = message.removeprefix("syntax error: ")
            detail = detail.replace("'end of expression'", "end of expression")
            detail = detail.replace("'end of template'", "end of template")
            message = f"syntax error in {what}: {detail}"
        else:
            message = f"invalid {what}: {message}"
        offset: int | None = None
        if exc.lineno is not None and exc.lineno > 1:
            offset = _line_offset(site.source, exc.lineno)
        self.report(
            site.path,
            "expression-syntax",
            message,
            _expression_hint(site),
            pos=self.locate(site.path, site.source, offset),
        )

    def _check_names(self, site: _Site, expr: _Analysis) -> None:
        for attr in sorted(expr.workflow_attrs - WORKFLOW_ATTRS):
            self.report(
                site.path,
                "unknown-name",
                f"workflow has no attribute '{attr}'",
                did_you_mean(attr, WORKFLOW_ATTRS)
                or f"known: {', '.join(f'workflow.{a}' for a in sorted(WORKFLOW_ATTRS))}",
                pos=self.locate(site.path, site.source, _workflow_attr_offset(site.source, attr)),
            )
        allowed = BASE_NAMES | site.names
        for name in sorted(expr.names - allowed):
            hint = did_you_mean(name, allowed) or f"known names here: {', '.join(sorted(allowed))}"
            self.report(
                site.path,
                "unknown-name",
                f"unknown name '{name}' in {'expression' if site.bare else 'template'}",
                hint,
                pos=self.locate(site.path, site.source, _name_offset(site.source, name)),
            )

    def _check_step_refs(
        self, info: StepInfo, site: _Site, refs: frozenset[str], is_handler: bool
    ) -> None:
        for ref in sorted(refs):
            if ref not in self.steps:
                self._report_unknown_step_ref(site, ref)
            elif ref == info.step_id:
                keyed = site.path[len(info.path)] if len(site.path) > len(info.path) else ""
                if keyed not in ("output_mapping", "custom_metrics"):
                    self.report(
                        site.path,
                        "not-upstream",
                        f"step '{info.step_id}' refers to its own result before it has one",
                        "use `output` in output_mapping or custom_metrics",
                        pos=self._ref_pos(site, ref),
                    )
            elif not is_handler and not self.is_upstream(info.step_id, ref):
                self.report(
                    site.path,
                    "not-upstream",
                    f"expression refers to step '{ref}', which is not upstream of "
                    f"'{info.step_id}' (it may not have run yet)",
                    f"add '{ref}' to the dependencies of '{info.step_id}'",
                    pos=self._ref_pos(site, ref),
                )

    def _ref_pos(self, site: _Site, ref: str) -> tuple[int, int]:
        return self.locate(site.path, site.source, _step_ref_offset(site.source, ref))

    def _report_unknown_step_ref(self, site: _Site, ref: str) -> None:
        self.report(
            site.path,
            "unknown-step",
            f"expression refers to unknown step '{ref}'",
            did_you_mean(ref, list(self.steps)),
            pos=self._ref_pos(site, ref),
        )

    def _report_secret(self, site: _Site, secret_names: list[str]) -> None:
        shown = f" ({', '.join(secret_names)})" if secret_names else ""
        self.report(
            site.path,
            "secret-in-shell",
            "secrets must not be templated into a shell command",
            f"secrets reach shell steps as environment variables{shown}: "
            'write "$NAME" in the command',
            pos=self.locate(site.path, site.source, _name_offset(site.source, "secrets")),
        )

    # -- actions, agents, inputs ----------------------------------------
    def check_actions_and_agents(self) -> None:
        from wfctl.format.actions import available_action_names

        actions = available_action_names()
        known_actions = f"known actions: {', '.join(sorted(actions))}"
        capabilities: set[str] = set()
        agent_names: dict[str, int] = {}
        for a, agent in enumerate(_list(self.doc.data.get("agents"))):
            if not isinstance(agent, dict):
                continue
            name = agent.get("name")
            if isinstance(name, str):
                if name in agent_names:
                    line, _ = self.doc.source_map.value_pos(("agents", agent_names[name], "name"))
                    self.report(
                        ("agents", a, "name"),
                        "duplicate-agent",
                        f"duplicate agent name '{name}' (first defined at line {line})",
                    )
                else:
                    agent_names[name] = a
            capabilities.update(_str_list(agent.get("capabilities")))
            action = agent.get("action")
            if isinstance(action, str) and action not in actions:
                self.report(
                    ("agents", a, "action"),
                    "unknown-action",
                    f"unknown action '{action}'",
                    did_you_mean(action, actions) or known_actions,
                )
        for info in self.steps.values():
            action = info.data.get("action")
            if isinstance(action, str) and action not in actions:
                self.report(
                    (*info.path, "action"),
                    "unknown-action",
                    f"unknown action '{action}'",
                    did_you_mean(action, actions) or known_actions,
                )
            with_ = info.data.get("with")
            if info.data.get("step_type") == "react" and isinstance(with_, dict):
                for t, tool in enumerate(_list(with_.get("tools"))):
                    tool_action = tool.get("action") if isinstance(tool, dict) else None
                    if isinstance(tool_action, str) and tool_action not in actions:
                        self.report(
                            (*info.path, "with", "tools", t, "action"),
                            "unknown-action",
                            f"unknown action '{tool_action}'",
                            did_you_mean(tool_action, actions) or known_actions,
                        )
            capability = info.data.get("agent_capability")
            if isinstance(capability, str) and capability not in capabilities:
                hint = did_you_mean(capability, capabilities) or (
                    f"declared capabilities: {', '.join(sorted(capabilities))}"
                    if capabilities
                    else "declare an agent providing it under `agents:`"
                )
                self.report(
                    (*info.path, "agent_capability"),
                    "unknown-capability",
                    f"no agent provides capability '{capability}'",
                    hint,
                )

    def check_inputs(self) -> None:
        inputs = self.doc.data.get("inputs")
        if isinstance(inputs, dict):
            for name, schema in inputs.items():
                path: Path_ = ("inputs", name)
                if not isinstance(schema, dict | bool):
                    continue
                clean = (
                    {k: v for k, v in schema.items() if k != "secret"}
                    if isinstance(schema, dict)
                    else schema
                )
                problem = _schema_problem(clean)
                if problem is not None:
                    self.report(path, "invalid-json-schema", f"schema of input '{name}': {problem}")
                    continue
                if isinstance(schema, dict) and "default" in schema:
                    violation = _instance_problem(clean, schema["default"])
                    if violation is not None:
                        self.report(
                            (*path, "default"),
                            "input-default",
                            f"default of input '{name}' violates its own schema: {violation}",
                            "fix the default, or the schema",
                        )
        for info in self.steps.values():
            schema = info.data.get("input_validation")
            if isinstance(schema, dict | bool):
                problem = _schema_problem(schema)
                if problem is not None:
                    self.report(
                        (*info.path, "input_validation"),
                        "invalid-json-schema",
                        f"input_validation is not a valid JSON Schema: {problem}",
                    )
            with_ = info.data.get("with")
            output_schema = with_.get("output_schema") if isinstance(with_, dict) else None
            if info.data.get("step_type") == "react" and isinstance(output_schema, dict | bool):
                problem = _schema_problem(output_schema)
                if problem is not None:
                    self.report(
                        (*info.path, "with", "output_schema"),
                        "invalid-json-schema",
                        f"output_schema is not a valid JSON Schema: {problem}",
                    )


# ------------------------------------------------------------------- expression analysis
#
# Validation needs what compiling an expression finds (syntax errors, forbidden
# constructs, unknown filters) and what it tells (the names and step ids it reads), but
# not the Python code Jinja generates, which is 80% of the cost of a compile (about 0.6 ms
# per expression; most of `wfctl validate` on a directory). `analyse` follows the steps of
# `wfctl.expressions.compile_expression`/`compile_template` up to code generation and adds
# the checks that only code generation would make. It uses that module's own parser and
# checks, so the two cannot drift apart silently: when they are not there it compiles,
# and tests/test_semantic.py checks on many sources that both accept and reject alike.

_ANALYSER_NEEDS: Final = (
    "_check_source",
    "_environment",
    "_single_expression",
    "_syntax_error",
    "_parse_template",
    "_check_tree",
    "_find",
    "_load_names",
    "_step_refs",
    "_unexpected_compile_error",
    "is_template",
)
# Deeper trees go through the real compiler (Python's own compiler has nesting limits).
_MAX_ANALYSED_DEPTH: Final = 40


@dataclass(frozen=True)
class _Analysis:
    """What an expression reads: top-level names and statically named step ids."""

    names: frozenset[str]
    refs: frozenset[str]
    workflow_attrs: frozenset[str] = frozenset()  # workflow.<attr> read statically


def analyse(source: str, bare: bool) -> _Analysis:
    """Names and step refs of an expression (`bare`) or a template string.

    Raises ExpressionError exactly where compiling it would.
    """
    return _analyse_cached(source, bare)


@cache
def _fast_analysis_available() -> bool:
    from wfctl import expressions

    return all(hasattr(expressions, name) for name in _ANALYSER_NEEDS)


@lru_cache(maxsize=8192)
def _analyse_cached(source: str, bare: bool) -> _Analysis:
    from wfctl import expressions as ex

    if not _fast_analysis_available():
        return _compile_fully(source, bare)
    source = ex._check_source(source)
    try:
        return _analyse_tree(ex, source, bare)
    except ex.ExpressionError:
        raise
    except _TooDeep:
        return _compile_fully(source, bare)
    except Exception as exc:  # as compile_*: nothing unforeseen escapes
        raise ex._unexpected_compile_error(exc, source) from None


class _TooDeep(Exception):
    """The tree is deep enough that only the real compiler can tell."""


def _compile_fully(source: str, bare: bool) -> _Analysis:
    from wfctl.expressions import compile_expression, compile_template

    compiled = compile_expression(source) if bare else compile_template(source)
    return _Analysis(frozenset(compiled.names()), frozenset(compiled.step_refs()))


def _analyse_tree(ex: Any, source: str, bare: bool) -> _Analysis:
    from jinja2.exceptions import TemplateSyntaxError
    from jinja2.parser import Parser

    env = ex._environment()
    if bare:
        stripped = source.strip()
        if stripped.startswith("{{") and stripped.endswith("}}"):
            try:
                single = ex._single_expression(Parser(env, stripped).parse())
            except Exception:
                single = None
            if single is not None:
                return _analyse_expression(ex, env, single, source)
        parser = Parser(env, source, state="variable")
        try:
            expr = parser.parse_expression()
            if not parser.stream.eos:
                token = parser.stream.current
                raise TemplateSyntaxError(
                    f"unexpected {token.value!r} after the expression", token.lineno
                )
        except TemplateSyntaxError as exc:
            raise ex._syntax_error(exc, source, bare=True) from None
        except (RecursionError, MemoryError):
            raise _TooDeep from None
        return _analyse_expression(ex, env, expr, source)
    if not ex.is_template(source):
        return _Analysis(frozenset(), frozenset())
    tree = ex._parse_template(env, source)
    single = ex._single_expression(tree)
    if single is not None:
        return _analyse_expression(ex, env, single, source)
    _check_generated(ex, tree, source)
    ex._check_tree(tree, source)
    from jinja2 import nodes

    if any(n.ctx != "load" for n in ex._find(tree, nodes.Name)):
        from jinja2 import meta

        names = set(meta.find_undeclared_variables(tree))
    else:
        names = ex._load_names(tree)
    names -= set(env.globals)
    return _Analysis(frozenset(names), frozenset(ex._step_refs(tree)), _workflow_attrs(ex, tree))


def _analyse_expression(ex: Any, env: Any, expr: Any, source: str) -> _Analysis:
    _check_generated(ex, expr, source)
    ex._check_tree(expr, source)
    names = ex._load_names(expr) - set(env.globals)
    return _Analysis(frozenset(names), frozenset(ex._step_refs(expr)), _workflow_attrs(ex, expr))


def _workflow_attr_offset(source: str, attr: str) -> int | None:
    a = re.escape(attr)
    found = re.search(rf"\bworkflow\s*(?:\.\s*{a}\b|\[\s*(['\"]){a}\1\s*\])", source)
    return found.start() if found else _name_offset(source, "workflow")


def _workflow_attrs(ex: Any, tree: Any) -> frozenset[str]:
    from jinja2 import nodes

    def is_workflow(node: Any) -> bool:
        return isinstance(node, nodes.Name) and node.name == "workflow" and node.ctx == "load"

    attrs = {n.attr for n in ex._find(tree, nodes.Getattr) if is_workflow(n.node)}
    for item in ex._find(tree, nodes.Getitem):
        if is_workflow(item.node) and isinstance(item.arg, nodes.Const):
            attrs.add(str(item.arg.value))
    return frozenset(attrs)


def _check_generated(ex: Any, tree: Any, source: str) -> None:
    """The checks Jinja's code generator (and Python's compiler) would make."""
    from jinja2 import nodes

    depth = 0
    todo = [(tree, 1)]
    while todo:
        node, level = todo.pop()
        depth = max(depth, level)
        if depth > _MAX_ANALYSED_DEPTH:
            raise _TooDeep
        if isinstance(node, nodes.For) and any(
            n.name == "loop" for n in ex._find(node.target, nodes.Name)
        ):
            raise ex._unexpected_compile_error(
                Exception("Can't assign to special loop variable in for-loop target"), source
            )
        if isinstance(node, nodes.Call | nodes.Filter | nodes.Test):
            keys = [k.key for k in node.kwargs]
            if len(keys) != len(set(keys)):
                raise ex._unexpected_compile_error(Exception("keyword argument repeated"), source)
        todo.extend((child, level + 1) for child in node.iter_child_nodes())


# ----------------------------------------------------------------------------- helpers


def _template_sites(value: Any, path: Path_, names: frozenset[str]) -> Iterator[_Site]:
    """Every templated string inside a `with:` value (keys are not templated)."""
    from wfctl.expressions import is_template

    if isinstance(value, str):
        if is_template(value):
            yield _Site(path, value, False, names)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _template_sites(item, (*path, key), names)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _template_sites(item, (*path, index), names)


def _is_shell_command(path: Path_, owner: Path_) -> bool:
    n = len(owner)
    return len(path) > n + 1 and path[n] == "with" and path[n + 1] == "command"


def _expression_hint(site: _Site) -> str | None:
    if site.bare and "{{" in site.source:
        return "a condition or mapping is a bare expression: write it without `{{ }}`"
    return None


def _line_offset(source: str, lineno: int) -> int | None:
    """Offset of the first non-blank character of line `lineno` (1-based) of `source`."""
    start = 0
    for _ in range(lineno - 1):
        start = source.find("\n", start) + 1
        if start == 0:
            return None
    end = source.find("\n", start)
    line = source[start : end if end >= 0 else len(source)]
    return start + len(line) - len(line.lstrip())


def _code_start(source: str) -> int:
    """Where the code of a template starts (its first `{{`/`{%`); 0 for an expression."""
    starts = [i for i in (source.find("{{"), source.find("{%")) if i >= 0]
    return min(starts) if starts else 0


def _name_offset(source: str, name: str) -> int | None:
    match = re.compile(rf"(?<![\w.'\"]){re.escape(name)}(?!\w)").search(source, _code_start(source))
    return match.start() if match else None


def _step_ref_offset(source: str, ref: str) -> int | None:
    quoted = re.escape(ref)
    match = re.compile(
        rf"(?<![\w.])steps\s*(?:\.\s*{quoted}(?!\w)|\[\s*['\"]{quoted}['\"]|\.\s*get\(\s*['\"]{quoted}['\"])"
    ).search(source, _code_start(source))
    return match.start() if match else None


@cache
def _meta_validator() -> Any:
    from jsonschema import Draft202012Validator

    # As Draft202012Validator.check_schema does: `pattern`s must be valid regexes.
    return Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


_SIMPLE_TYPES: Final = frozenset(
    {"string", "integer", "number", "boolean", "object", "array", "null"}
)
_TEXT_KEYWORDS: Final = frozenset({"title", "description", "$comment", "format"})
_ANY_KEYWORDS: Final = frozenset({"default", "const", "examples", "enum"})
_NUMBER_KEYWORDS: Final = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_COUNT_KEYWORDS: Final = frozenset(
    {"minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"}
)


def _plainly_valid_schema(schema: Any, depth: int = 0) -> bool:
    """A sufficient condition for being a valid Draft 2020-12 schema, for the simple
    schemas inputs usually have; False means "ask the metaschema" (which means importing
    jsonschema, a fifth of the start-up of `wfctl validate`)."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or depth > 16:
        return False
    for key, value in schema.items():
        if key in _TEXT_KEYWORDS:
            ok = isinstance(value, str)
        elif key in _ANY_KEYWORDS:
            ok = key not in ("enum", "examples") or isinstance(value, list)
        elif key in _NUMBER_KEYWORDS:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        elif key in _COUNT_KEYWORDS:
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        elif key == "type":
            names = value if isinstance(value, list) else [value]
            ok = (
                bool(names)
                and all(isinstance(n, str) and n in _SIMPLE_TYPES for n in names)
                and len(set(names)) == len(names)
            )
        elif key == "pattern":
            ok = isinstance(value, str) and _compiles(value)
        elif key == "uniqueItems":
            ok = isinstance(value, bool)
        elif key == "required":
            ok = (
                isinstance(value, list)
                and all(isinstance(v, str) for v in value)
                and len(set(value)) == len(value)
            )
        elif key in ("items", "additionalProperties"):
            ok = _plainly_valid_schema(value, depth + 1)
        elif key == "properties":
            ok = isinstance(value, dict) and all(
                _plainly_valid_schema(v, depth + 1) for v in value.values()
            )
        else:
            ok = False
        if not ok:
            return False
    return True


def _compiles(pattern: str) -> bool:
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


@cache
def _schema_problem_cached(text: str) -> str | None:
    from jsonschema.exceptions import best_match

    error = best_match(_meta_validator().iter_errors(json.loads(text)))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def _schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid Draft 2020-12 schema, or None (cached by content)."""
    if _plainly_valid_schema(schema):
        return None
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return "not representable as JSON"
    return _schema_problem_cached(text)


def _instance_problem(schema: Any, instance: Any) -> str | None:
    """The first way `instance` violates `schema`, in plain words, or None."""
    check = compile_schema_check(schema)
    if check is not None and check(instance):
        return None
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    error = best_match(Draft202012Validator(schema).iter_errors(instance))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    kind, arg, value = error.validator, error.validator_value, error.instance
    bounds = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}
    if kind in bounds:
        text = f"must be {bounds[kind]} {arg} (got {describe_value(value)})"
    elif kind == "enum":
        text = f"must be one of: {', '.join(str(a) for a in arg)} (got {describe_value(value)})"
    elif kind == "type":
        text = f"must be of type {arg} (got {describe_value(value)})"
    elif kind == "pattern":
        text = f"{describe_value(value)} does not match the pattern {arg}"
    else:
        text = error.message.split("\n")[0]
    return f"{where.lstrip('.')}: {text}" if where else text


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def semantic_diagnostics(doc: LoadedDocument) -> list[Diagnostic]:
    """Every semantic problem in a loaded workflow (robust to schema-invalid data)."""
    if not isinstance(doc.data, dict):
        return []
    checker = _Checker(doc)
    checker.collect(doc.data.get("steps"), ("steps",), None)
    checker.check_references()
    checker.check_branches()
    checker.check_sla_steps()
    checker.build_edges()
    checker.check_handlers()
    on_cycle = checker.check_cycles()
    checker.check_reachable(on_cycle)
    checker.check_expressions()
    checker.check_actions_and_agents()
    checker.check_inputs()
    return checker.out
