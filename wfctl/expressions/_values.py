"""``with:`` structures: every template string inside a value compiled once, rendered fresh."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from wfctl.expressions._compiled import Template, compile_template, is_template
from wfctl.expressions._errors import ExpressionError

__all__ = ["CompiledValue", "Path", "compile_value"]

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class CompiledValue:
    """A ``with:`` structure with its template strings compiled.

    ``render`` returns fresh dicts and lists each time (so callers may mutate the result);
    non-template leaves are shared.
    """

    value: Any = field(repr=False)  # the structure with Template objects at template leaves
    has_templates: bool = False

    def render(self, context: Mapping[str, Any]) -> Any:
        return _render_value(self.value, context, ())

    def templates(self) -> Iterator[tuple[Path, Template]]:
        """(relative path, Template) for every templated string, in document order."""
        yield from _walk_templates(self.value, ())

    def names(self) -> frozenset[str]:
        return frozenset().union(*(t.names() for _, t in self.templates()))

    def step_refs(self) -> frozenset[str]:
        return frozenset().union(*(t.step_refs() for _, t in self.templates()))


def _compile_tree(value: Any, path: Path) -> tuple[Any, bool]:
    if isinstance(value, str):
        if not is_template(value):
            return value, False
        try:
            return compile_template(value), True
        except ExpressionError as exc:
            raise exc.with_path(path) from None
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        found = False
        for key, item in value.items():
            out[key], sub = _compile_tree(item, (*path, key))
            found = found or sub
        return out, found
    if isinstance(value, (list, tuple)):
        items = []
        found = False
        for index, item in enumerate(value):
            compiled, sub = _compile_tree(item, (*path, index))
            items.append(compiled)
            found = found or sub
        return items, found
    return value, False


def _render_value(value: Any, context: Mapping[str, Any], path: Path) -> Any:
    if isinstance(value, Template):
        try:
            return value.render(context)
        except ExpressionError as exc:
            raise exc.with_path(path) from None
    if isinstance(value, dict):
        return {k: _render_value(v, context, (*path, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_value(v, context, (*path, i)) for i, v in enumerate(value)]
    return value


def _walk_templates(value: Any, path: Path) -> Iterator[tuple[Path, Template]]:
    if isinstance(value, Template):
        yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_templates(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _walk_templates(item, (*path, index))


def compile_value(value: Any) -> CompiledValue:
    """Compile every template string inside a ``with:`` value (keys are not templated).

    Raises ExpressionError with ``path`` set to the offending position.
    """
    tree, found = _compile_tree(value, ())
    return CompiledValue(tree, found)
