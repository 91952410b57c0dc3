"""What every semantic rule shares: the steps found in the document, their graph, and the
diagnostics reported so far (with positions inside expression strings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from wfctl import graph
from wfctl.format.diagnostics import Diagnostic

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument, Path_

__all__ = ["Context", "StepInfo", "as_list", "collect_steps", "str_list"]

_HANDLER_LISTS: Final = ("error_handlers", "rollback_actions")


def as_list(value: Any) -> list[Any]:
    """`value` if it is a list, else an empty one (data may be schema-invalid)."""
    return value if isinstance(value, list) else []


def str_list(value: Any) -> list[str]:
    """The strings of `value` if it is a list."""
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass
class StepInfo:
    """A step found in the document, nested ones included."""

    step_id: str
    path: Path_
    data: dict[str, Any]
    container: str | None  # id of the enclosing parallel step, None at top level

    def react_tools(self) -> list[Any]:
        """The `with.tools` of a react step (empty for any other step)."""
        with_ = self.data.get("with")
        if self.data.get("step_type") != "react" or not isinstance(with_, dict):
            return []
        return as_list(with_.get("tools"))


@dataclass
class Context:
    """One document under check: its steps, handler sets, graph and diagnostics."""

    doc: LoadedDocument
    out: list[Diagnostic] = field(default_factory=list)
    steps: dict[str, StepInfo] = field(default_factory=dict)
    handlers: set[str] = field(default_factory=set)
    tool_steps: set[str] = field(default_factory=set)  # named by react tools (also handlers)
    on_cycle: set[str] = field(default_factory=set)  # set by the cycle rule
    exit_steps: set[str] = field(default_factory=set)  # the workflow's `on_exit` steps

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
        """Add a diagnostic at `pos`, else at the key or the value at `path`."""
        from wfctl.document.loader import format_path

        if pos is None:
            sm = self.doc.source_map
            pos = sm.key_pos(path) if key else sm.value_pos(path)
        self.out.append(
            Diagnostic(self.doc.file, pos[0], pos[1], code, message, format_path(path), hint)
        )

    @cached_property
    def lines(self) -> list[str]:
        """The document's text, line by line."""
        return self.doc.text.split("\n")

    def locate(self, path: Path_, source: str, offset: int | None) -> tuple[int, int]:
        """Position in the file of `source[offset]`, the string value at `path`.

        Exact for single-line plain and quoted scalars and for literal block scalars (`|`),
        whose text is the file's text; otherwise the position of the value itself.
        """
        line, col = self.doc.source_map.value_pos(path)
        lines = self.lines
        if offset is None or not 0 <= offset <= len(source) or not 0 < line <= len(lines):
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
        lines = self.lines
        sub_line = source.count("\n", 0, offset)
        line_start = source.rfind("\n", 0, offset) + 1
        first = next((i for i in range(line, len(lines)) if lines[i].strip()), None)
        if first is None:
            return line, col
        indent = len(lines[first]) - len(lines[first].lstrip(" "))
        target = line + sub_line  # 0-based index of the file line holding source line sub_line
        expected = source.split("\n")[sub_line]
        if target < len(lines) and lines[target][indent:].rstrip() == expected.rstrip():
            return target + 1, indent + offset - line_start + 1
        return line, col

    # -- the graph (wfctl.graph, computed once) ---------------------------
    @cached_property
    def deps(self) -> dict[str, tuple[str, ...]]:
        """Each step's same-level dependencies after desugaring `next_steps`, sorted."""
        desugared = graph.desugar(_edges(info) for info in self.steps.values())
        # Sorted: the order in which rules walk dependencies does not depend on the file.
        return {s: tuple(sorted(d)) for s, d in desugared.items()}

    @cached_property
    def order(self) -> list[str]:
        """The steps in topological order (steps on or after a cycle last)."""
        return graph.topological_order(self.deps)

    @cached_property
    def _upstream(self) -> dict[str, int]:
        container = {s: info.container for s, info in self.steps.items()}
        return graph.upstream_masks(self.deps, container)

    @cached_property
    def _index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.steps)}

    def is_upstream(self, step_id: str, ref: str) -> bool:
        """Whether `ref` surely ends before `step_id` starts.

        True when `ref` is reached from `step_id` through dependencies (a step inside a
        parallel step inherits its container's dependencies), or `ref` is inside a
        parallel step that is reached so (a finished parallel step's children are
        finished). The parallel steps enclosing `step_id` do not count: they are still
        running while their children run.
        """
        return bool(self._upstream[step_id] >> self._index[ref] & 1)

    def doc_order(self, step_id: str) -> tuple[int, int]:
        """Where a step is written in the file (to start a cycle at the first one)."""
        return self.doc.source_map.value_pos(self.steps[step_id].path)


def _branch_targets(data: dict[str, Any]) -> list[str]:
    targets = str_list(data.get("next_steps"))
    for branch in as_list(data.get("conditions")):
        if isinstance(branch, dict):
            targets.extend(str_list(branch.get("next_steps")))
    return targets


def _edges(info: StepInfo) -> graph.StepEdges:
    from wfctl.validate._depends import depends_refs

    return graph.StepEdges(
        info.step_id,
        info.container,
        # The steps `depends` names are dependencies too (desugared as in the model).
        (*str_list(info.data.get("dependencies")), *depends_refs(info.data.get("depends"))),
        tuple(_branch_targets(info.data)),
    )


# ------------------------------------------------------------------------- collection


def collect_steps(ctx: Context, steps: Any, base: Path_, container: str | None) -> None:
    """Find every step (nested ones too) and the handler and tool steps they name."""
    if not isinstance(steps, list):
        return
    for index, raw in enumerate(steps):
        path: Path_ = (*base, index)
        if not isinstance(raw, dict) or not isinstance(raw.get("step_id"), str):
            continue
        if _is_duplicate(ctx, raw["step_id"], path):
            continue
        info = StepInfo(raw["step_id"], path, raw, container)
        ctx.steps[info.step_id] = info
        if raw.get("step_type") == "parallel":
            collect_steps(ctx, raw.get("parallel_steps"), (*path, "parallel_steps"), info.step_id)
        if raw.get("step_type") == "loop":  # a group loop's body (`steps:`)
            collect_steps(ctx, raw.get("steps"), (*path, "steps"), info.step_id)
        _note_invoked(ctx, info)


def _is_duplicate(ctx: Context, step_id: str, path: Path_) -> bool:
    first = ctx.steps.get(step_id)
    if first is None:
        return False
    line, _ = ctx.doc.source_map.value_pos((*first.path, "step_id"))
    ctx.report(
        (*path, "step_id"),
        "duplicate-step-id",
        f"duplicate step_id '{step_id}' (first defined at line {line})",
        "step ids must be unique across the workflow, nested steps included",
    )
    return True


def _note_invoked(ctx: Context, info: StepInfo) -> None:
    for key in _HANDLER_LISTS:
        ctx.handlers.update(str_list(info.data.get(key)))
    for tool in info.react_tools():
        # A step a react tool names runs only as that tool, like a handler.
        if isinstance(tool, dict) and isinstance(tool.get("step"), str):
            ctx.handlers.add(tool["step"])
            ctx.tool_steps.add(tool["step"])
