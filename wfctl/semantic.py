"""Semantic checks that JSON Schema cannot express: ids, graph shape, expressions, references."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from wfctl.diagnostics import Diagnostic
from wfctl.schema_check import did_you_mean

if TYPE_CHECKING:
    from wfctl.loader import LoadedDocument, Path_

# Names an expression may use, by where it stands; anything else is a typo.
BASE_NAMES = frozenset({"inputs", "vars", "steps", "workflow", "secrets"})
ID_LISTS = ("dependencies", "next_steps", "error_handlers", "rollback_actions")


@dataclass
class StepInfo:
    """A step found in the document, nested ones included."""

    step_id: str
    path: Path_
    data: dict[str, Any]
    container: str | None  # id of the enclosing parallel step, None at top level
    deps: set[str] = field(default_factory=set)  # same-level dependencies after desugaring


@dataclass
class _Checker:
    doc: LoadedDocument
    out: list[Diagnostic] = field(default_factory=list)
    steps: dict[str, StepInfo] = field(default_factory=dict)
    handlers: set[str] = field(default_factory=set)

    # -- reporting -------------------------------------------------------
    def report(
        self, path: Path_, code: str, message: str, hint: str | None = None, key: bool = False
    ) -> None:
        from wfctl.loader import format_path

        sm = self.doc.source_map
        line, col = sm.key_pos(path) if key else sm.value_pos(path)
        self.out.append(
            Diagnostic(self.doc.file, line, col, code, message, format_path(path), hint)
        )

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
                )
                continue
            self.steps[step_id] = StepInfo(step_id, path, raw, container)
            if raw.get("step_type") == "parallel":
                self.collect(raw.get("parallel_steps"), (*path, "parallel_steps"), step_id)
            for key in ("error_handlers", "rollback_actions"):
                for ref in _str_list(raw.get(key)):
                    self.handlers.add(ref)

    # -- references ------------------------------------------------------
    def check_references(self) -> None:
        known = list(self.steps)
        for info in self.steps.values():
            for key in ID_LISTS:
                for i, ref in enumerate(_str_list(info.data.get(key))):
                    self._check_ref(info, (*info.path, key, i), ref, key, known)
            for b, branch in enumerate(_list(info.data.get("conditions"))):
                if isinstance(branch, dict):
                    for i, ref in enumerate(_str_list(branch.get("next_steps"))):
                        path: Path_ = (*info.path, "conditions", b, "next_steps", i)
                        self._check_ref(info, path, ref, "next_steps", known)

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
            self.report(
                path,
                "cross-level-reference",
                f"step '{ref}' is not {where}: {key} may only name steps at the same level",
                "depend on the enclosing parallel step instead",
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
                    f"step '{ref}' is an error handler or rollback action, so it cannot have "
                    "dependencies (it runs only when invoked)",
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
                        # Dependencies point backwards; print the cycle in run order.
                        order = [child, *reversed(cycle[1:])] if len(cycle) > 1 else [child]
                        text = " -> ".join([*order, order[0]])
                        first = self.steps[order[0]]
                        self.report(
                            (*first.path, "step_id"),
                            "cycle",
                            f"dependency cycle: {text}",
                        )
                elif colour[child] == white:
                    colour[child] = grey
                    trail.append(child)
                    stack.append((child, iter(sorted(self.steps[child].deps))))
        return on_cycle

    def check_reachable(self, on_cycle: set[str]) -> None:
        """Steps that wait on a cycle or on a handler step can never start."""
        blocked = set(on_cycle) | (self.handlers & set(self.steps))
        order = self._topological()
        for step_id in order:
            info = self.steps[step_id]
            if step_id in blocked:
                continue
            culprits = sorted(d for d in info.deps if d in blocked)
            if culprits:
                blocked.add(step_id)
                reason = "a dependency cycle" if culprits[0] in on_cycle else "a handler step"
                self.report(
                    (*info.path, "step_id"),
                    "unreachable",
                    f"step '{step_id}' can never run: it waits on '{culprits[0]}', "
                    f"which is part of {reason}",
                    "handler steps run only from error_handlers/rollback_actions"
                    if reason == "a handler step"
                    else None,
                )

    def _topological(self) -> list[str]:
        indeg = {s: 0 for s in self.steps}
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

    def ancestors(self, step_id: str) -> set[str]:
        """Steps that surely end before `step_id` starts (containers' ancestors included)."""
        seen: set[str] = set()
        todo = [step_id]
        while todo:
            info = self.steps[todo.pop()]
            nxt = set(info.deps)
            if info.container is not None:
                nxt.add(info.container)
            for dep in nxt:
                if dep not in seen:
                    seen.add(dep)
                    todo.append(dep)
        # A container is not finished when its children run; it is an enclosing scope.
        parent = self.steps[step_id].container
        while parent is not None:
            seen.discard(parent)
            parent = self.steps[parent].container
        # A finished parallel step's children are finished too.
        for done in list(seen):
            seen.update(self._descendants(done))
        return seen

    def _descendants(self, container: str) -> set[str]:
        return {
            s.step_id
            for s in self.steps.values()
            if s.container is not None
            and (s.container == container or container in self._containers_of(s.step_id))
        }

    def _containers_of(self, step_id: str) -> list[str]:
        chain = []
        parent = self.steps[step_id].container
        while parent is not None:
            chain.append(parent)
            parent = self.steps[parent].container
        return chain

    # -- expressions -----------------------------------------------------
    def check_expressions(self) -> None:
        from wfctl.expressions import ExpressionError, compile_expression, compile_value

        secrets = self.doc.data.get("secrets")
        for info in self.steps.values():
            data = info.data
            is_handler = info.step_id in self.handlers
            extra_names: set[str] = {"error"} if is_handler else set()
            if data.get("step_type") == "loop":
                extra_names.add("loop")
            sites: list[tuple[Path_, str, bool, set[str]]] = []  # path, source, is_bare, names
            if isinstance(data.get("when"), str):
                sites.append(((*info.path, "when"), data["when"], True, extra_names))
            for b, branch in enumerate(_list(data.get("conditions"))):
                if isinstance(branch, dict) and isinstance(branch.get("when"), str):
                    sites.append(
                        ((*info.path, "conditions", b, "when"), branch["when"], True, extra_names)
                    )
            for key in ("loop_condition",):
                if isinstance(data.get(key), str):
                    sites.append(((*info.path, key), data[key], True, extra_names | {"loop"}))
            if isinstance(data.get("for_each"), str):
                sites.append(((*info.path, "for_each"), data["for_each"], True, extra_names))
            for key, names in (
                ("input_mapping", extra_names),
                ("output_mapping", extra_names | {"output", "input"}),
                ("custom_metrics", extra_names | {"output", "input"}),
            ):
                mapping = data.get(key)
                if isinstance(mapping, dict):
                    for name, source in mapping.items():
                        if isinstance(source, str):
                            sites.append(((*info.path, key, name), source, True, names))
            with_names = extra_names | {"input"}
            if "with" in data:
                try:
                    compiled = compile_value(data["with"])
                except ExpressionError as exc:
                    self.report((*info.path, "with"), "expression-syntax", exc.message)
                    compiled = None
                if compiled is not None:
                    for rel, template in compiled.templates():
                        sites.append(
                            ((*info.path, "with", *rel), template.source, False, with_names)
                        )
            ancestors = self.ancestors(info.step_id)
            for path, source, bare, names in sites:
                try:
                    expr = compile_expression(source) if bare else _template(source)
                except ExpressionError as exc:
                    self.report(path, "expression-syntax", f"bad expression: {exc.message}")
                    continue
                allowed = BASE_NAMES | names
                for name in sorted(expr.names() - allowed):
                    self.report(
                        path,
                        "unknown-name",
                        f"unknown name '{name}' in expression",
                        did_you_mean(name, allowed) or f"names: {', '.join(sorted(allowed))}",
                    )
                self._check_step_refs(info, path, expr.step_refs(), ancestors, is_handler)
                if (
                    not bare
                    and data.get("action") == "shell"
                    and len(path) > len(info.path) + 1
                    and path[len(info.path) + 1] == "command"
                    and "secrets" in expr.names()
                ):
                    names_hint = ", ".join(sorted(secrets)) if isinstance(secrets, dict) else ""
                    self.report(
                        path,
                        "secret-in-shell",
                        "secrets must not be templated into a shell command",
                        "secrets reach shell steps as environment variables"
                        + (f" ({names_hint})" if names_hint else "")
                        + ': write "$NAME" in the command',
                    )

    def _check_step_refs(
        self,
        info: StepInfo,
        path: Path_,
        refs: frozenset[str],
        ancestors: set[str],
        is_handler: bool,
    ) -> None:
        for ref in sorted(refs):
            if ref not in self.steps:
                self.report(
                    path,
                    "unknown-step",
                    f"expression refers to unknown step '{ref}'",
                    did_you_mean(ref, list(self.steps)),
                )
            elif ref == info.step_id:
                keyed = path[len(info.path)] if len(path) > len(info.path) else ""
                if keyed not in ("output_mapping", "custom_metrics"):
                    self.report(
                        path,
                        "not-upstream",
                        f"step '{info.step_id}' refers to its own result before it has one",
                        "use 'output' in output_mapping",
                    )
            elif not is_handler and ref not in ancestors:
                self.report(
                    path,
                    "not-upstream",
                    f"expression refers to step '{ref}', which is not upstream of "
                    f"'{info.step_id}' (it may not have run yet)",
                    f"add '{ref}' to dependencies",
                )

    # -- actions, agents, inputs ----------------------------------------
    def check_actions_and_agents(self) -> None:
        from wfctl.actions.registry import available_action_names

        actions = available_action_names()
        agents = _list(self.doc.data.get("agents"))
        capabilities: set[str] = set()
        agent_names: dict[str, Path_] = {}
        for a, agent in enumerate(agents):
            if not isinstance(agent, dict):
                continue
            name = agent.get("name")
            if isinstance(name, str):
                if name in agent_names:
                    self.report(
                        ("agents", a, "name"), "duplicate-agent", f"duplicate agent '{name}'"
                    )
                agent_names[name] = ("agents", a)
            capabilities.update(_str_list(agent.get("capabilities")))
            action = agent.get("action")
            if isinstance(action, str) and action not in actions:
                self.report(
                    ("agents", a, "action"),
                    "unknown-action",
                    f"unknown action '{action}'",
                    did_you_mean(action, actions) or f"known actions: {', '.join(sorted(actions))}",
                )
        for info in self.steps.values():
            action = info.data.get("action")
            if isinstance(action, str) and action not in actions:
                self.report(
                    (*info.path, "action"),
                    "unknown-action",
                    f"unknown action '{action}'",
                    did_you_mean(action, actions) or f"known actions: {', '.join(sorted(actions))}",
                )
            capability = info.data.get("agent_capability")
            if isinstance(capability, str) and capability not in capabilities:
                hint = did_you_mean(capability, capabilities) or (
                    f"declared capabilities: {', '.join(sorted(capabilities))}"
                    if capabilities
                    else "declare an agent providing it under 'agents:'"
                )
                self.report(
                    (*info.path, "agent_capability"),
                    "unknown-capability",
                    f"no agent provides capability '{capability}'",
                    hint,
                )

    def check_inputs(self) -> None:
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

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
                try:
                    Draft202012Validator.check_schema(clean)
                except SchemaError as exc:
                    self.report(
                        path, "invalid-json-schema", f"input '{name}' schema: {exc.message}"
                    )
                    continue
                if isinstance(schema, dict) and "default" in schema:
                    errors = list(Draft202012Validator(clean).iter_errors(schema["default"]))
                    if errors:
                        self.report(
                            (*path, "default"),
                            "input-default",
                            f"default of input '{name}' violates its own schema: "
                            f"{errors[0].message}",
                        )
        for info in self.steps.values():
            schema = info.data.get("input_validation")
            sub_path: Path_ = (*info.path, "input_validation")
            if isinstance(schema, dict | bool):
                try:
                    Draft202012Validator.check_schema(schema)
                except SchemaError as exc:
                    self.report(sub_path, "invalid-json-schema", f"input_validation: {exc.message}")


def _template(source: str) -> Any:
    from wfctl.expressions import compile_template

    return compile_template(source)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str_list(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def semantic_diagnostics(doc: LoadedDocument) -> list[Diagnostic]:
    """Every semantic problem in a loaded workflow (robust to schema-invalid data)."""
    checker = _Checker(doc)
    if not isinstance(doc.data, dict):
        return []
    checker.collect(doc.data.get("steps"), ("steps",), None)
    checker.check_references()
    checker.build_edges()
    checker.check_handlers()
    on_cycle = checker.check_cycles()
    checker.check_reachable(on_cycle)
    checker.check_expressions()
    checker.check_actions_and_agents()
    checker.check_inputs()
    return checker.out
