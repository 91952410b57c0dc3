"""Draw a workflow as the user wrote it: Mermaid, Graphviz DOT, or a terminal tree."""

from __future__ import annotations

import json
from collections.abc import Iterator

from wfctl.model import (
    Branch,
    Call,
    ConditionalBody,
    ForEachBody,
    LoopBody,
    Step,
    StepType,
    SubflowBody,
    Workflow,
)


def _what(step: Step) -> str:
    match step.body:
        case Call(action=action, agent_capability=capability):
            return action or (f"agent: {capability}" if capability else "")
        case ForEachBody():
            return "for each"
        case LoopBody(condition=condition, max_iterations=most):
            return f"loop while {condition.source if condition else 'once'} (max {most})"
    return step.step_type.value.replace("_", " ")


def _label(step: Step) -> str:
    """The step id, then what it does, the agent it needs and its `when`, a line each."""
    lines = [step.step_id, _what(step)]
    capability = step.agent_capability
    if capability and step.action:  # without an action, _what already names the agent
        lines.append(f"agent: {capability}")
    if step.when is not None:
        lines.append(f"when {step.when.source}")
    return "\n".join(line for line in lines if line)


#: Steps drawn as a cluster (a box around their node and children) in DOT.
_CLUSTERS = frozenset({StepType.PARALLEL, StepType.LOOP, StepType.WORKFLOW})
#: Containers drawn with their children inside: a parallel group, a sub-workflow call.
_GROUPS = frozenset({StepType.PARALLEL, StepType.WORKFLOW})


def _group_title(step: Step) -> str:
    """`fan (parallel)`, or `deploy (uses ./lib/deploy.yaml)` for a sub-workflow call."""
    if isinstance(step.body, SubflowBody):
        return f"{step.step_id} (uses {step.body.uses})"
    return f"{step.step_id} (parallel)"


def _branches(step: Step) -> tuple[Branch, ...]:
    return step.body.branches if isinstance(step.body, ConditionalBody) else ()


def _edges(workflow: Workflow, level: tuple[Step, ...]) -> Iterator[tuple[str, str, str | None]]:
    """(from, to, label) for dependencies within one level; branch edges carry the condition."""
    branch_labels: dict[tuple[str, str], str] = {}
    for step in level:
        for branch in _branches(step):
            label = branch.name or (branch.when.source if branch.when else "else")
            for target in branch.next_steps:
                branch_labels[(step.step_id, target)] = label
    ids = {s.step_id for s in level}
    for step in level:
        for dep in step.dependencies:
            if dep in ids:
                yield dep, step.step_id, branch_labels.get((dep, step.step_id))


def _handler_edges(workflow: Workflow) -> Iterator[tuple[str, str, str]]:
    for step in workflow.all_steps.values():
        for h in step.error_handlers:
            yield step.step_id, h, "on error"
        for h in step.rollback_actions:
            yield step.step_id, h, "rollback"


def to_mermaid(workflow: Workflow) -> str:
    """A Mermaid flowchart; parallel and loop steps drawn as subgraphs."""
    ids = {sid: f"s{i}" for i, sid in enumerate(workflow.all_steps)}
    lines = ["flowchart TD"]

    def esc(text: str) -> str:
        return text.replace('"', "#quot;").replace("\n", "<br/>")

    def emit(level: tuple[Step, ...], indent: str) -> None:
        for step in level:
            node = ids[step.step_id]
            if step.step_type in _GROUPS:
                lines.append(f'{indent}subgraph {node}["{esc(_group_title(step))}"]')
                emit(step.children, indent + "  ")
                lines.append(f"{indent}end")
            elif step.step_type is StepType.LOOP:
                lines.append(f'{indent}subgraph {node}_loop["{esc(_what(step))}"]')
                lines.append(f'{indent}  {node}["{esc(step.step_id)}"]')
                lines.append(f"{indent}end")
            elif step.step_type is StepType.CONDITIONAL:
                lines.append(f'{indent}{node}{{"{esc(step.step_id)}"}}')
            elif step.step_type is StepType.HUMAN_APPROVAL:
                lines.append(f'{indent}{node}[/"{esc(_label(step))}"/]')
            else:
                lines.append(f'{indent}{node}["{esc(_label(step))}"]')
        for src, dst, label in _edges(workflow, level):
            arrow = f'-->|"{esc(label)}"|' if label else "-->"
            lines.append(f"{indent}{ids[src]} {arrow} {ids[dst]}")

    emit(workflow.steps, "  ")
    if workflow.on_exit:
        lines.append('  subgraph on_exit["on exit: last, in order, whatever the outcome"]')
        emit(workflow.on_exit, "    ")
        lines.append("  end")
    for src, dst, label in _handler_edges(workflow):
        lines.append(f'  {ids[src]} -.->|"{label}"| {ids[dst]}')
    return "\n".join(lines) + "\n"


def to_dot(workflow: Workflow) -> str:
    """Graphviz DOT; containers are clusters entered through a node of their own."""
    lines = [
        f"digraph {json.dumps(workflow.workflow_id)} {{",
        "  rankdir=TB;",
        # Edges into and out of a container end at its box, not at a node inside it.
        "  compound=true;",
        "  node [shape=box];",
    ]
    clusters = {sid for sid, st in workflow.all_steps.items() if st.step_type in _CLUSTERS}

    def q(text: str) -> str:
        return json.dumps(text)

    def emit(level: tuple[Step, ...], indent: str) -> None:
        for step in level:
            if step.step_type in _GROUPS:
                lines.append(f"{indent}subgraph {q('cluster_' + step.step_id)} {{")
                lines.append(f"{indent}  label={q(_group_title(step))};")
                lines.append(f"{indent}  {q(step.step_id)} [shape=point];")
                emit(step.children, indent + "  ")
                for child in step.children:
                    if not child.dependencies:
                        lines.append(
                            f"{indent}  {q(step.step_id)} -> {q(child.step_id)} [style=dotted];"
                        )
                lines.append(f"{indent}}}")
            elif step.step_type is StepType.LOOP:
                lines.append(f"{indent}subgraph {q('cluster_' + step.step_id)} {{")
                lines.append(f"{indent}  label={q(_what(step))};")
                lines.append(f"{indent}  {q(step.step_id)};")
                lines.append(f"{indent}}}")
            else:
                shape = {
                    StepType.CONDITIONAL: "diamond",
                    StepType.HUMAN_APPROVAL: "parallelogram",
                }.get(step.step_type, "box")
                lines.append(f"{indent}{q(step.step_id)} [label={q(_label(step))}, shape={shape}];")
        for src, dst, label in _edges(workflow, level):
            attrs = [f"label={q(label)}"] if label else []
            attrs += [f"ltail={q('cluster_' + src)}"] if src in clusters else []
            attrs += [f"lhead={q('cluster_' + dst)}"] if dst in clusters else []
            attr = f" [{', '.join(attrs)}]" if attrs else ""
            lines.append(f"{indent}{q(src)} -> {q(dst)}{attr};")

    emit(workflow.steps, "  ")
    if workflow.on_exit:
        lines.append(f"  subgraph {q('cluster_on_exit')} {{")
        lines.append(f"    label={q('on exit: last, in order, whatever the outcome')};")
        emit(workflow.on_exit, "    ")
        lines.append("  }")
    for src, dst, label in _handler_edges(workflow):
        lines.append(f"  {q(src)} -> {q(dst)} [style=dashed, label={q(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def to_tree(workflow: Workflow) -> object:
    """A rich.tree.Tree: each step under the steps it waits on (shared ones drawn once)."""
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]{escape(workflow.name)}[/] ({escape(workflow.workflow_id)})")
    drawn: set[str] = set()

    def add(parent: Tree, level: tuple[Step, ...]) -> None:
        ids = {s.step_id for s in level}
        users: dict[str, list[Step]] = {s.step_id: [] for s in level}
        for s in level:
            for dep in s.dependencies:
                if dep in ids:
                    users[dep].append(s)
        labels = {(src, dst): label for src, dst, label in _edges(workflow, level) if label}

        def node(at: Tree, step: Step, via: str | None) -> None:
            cond = f" [yellow]if {escape(via)}[/]" if via else ""
            text = escape(_label(step).replace("\n", " · "))
            if step.step_id in drawn:
                at.add(f"[dim]{escape(step.step_id)} (see above)[/]{cond}")
                return
            drawn.add(step.step_id)
            branch = at.add(f"{text}{cond}")
            if step.children:
                # A node of their own: the container's dependents are not its children.
                add(branch.add("[dim]runs at once[/]"), step.children)
            for user in users[step.step_id]:
                node(branch, user, labels.get((step.step_id, user.step_id)))

        for step in level:
            if (
                not any(d in ids for d in step.dependencies)
                and step.step_id not in workflow.handlers
            ):
                node(parent, step, None)

    add(tree, workflow.steps)
    if workflow.on_exit:
        hooks = tree.add("[dim]on exit (last, in order, whatever the outcome)[/]")
        for step in workflow.on_exit:
            hooks.add(escape(_label(step).replace("\n", " · ")))
    if workflow.handlers:
        handlers = tree.add("[dim]handlers (run on error / rollback)[/]")
        for h in sorted(workflow.handlers):
            handlers.add(escape(h))
    return tree
