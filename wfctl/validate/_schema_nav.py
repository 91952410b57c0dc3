"""Finding one's way in the workflow schema: `$ref`s, and the `if` clause behind an error."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["IfContext", "condition_parts", "if_context", "resolve_ref"]

_MAX_REF_HOPS: Final = 32
# Schema path elements that go one level down in the instance.
_CHILD_OF: Final = frozenset({"properties", "patternProperties"})
_CHILD_KEYWORDS: Final = frozenset({"additionalProperties", "items"})


def resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    """The schema a local `#/...` reference points at, or None."""
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        node = _child(node, part.replace("~1", "/").replace("~0", "~"))
        if node is None:
            return None
    return node


def _child(node: Any, part: str) -> Any:
    if isinstance(node, dict):
        return node.get(part)
    if isinstance(node, list) and part.isdigit() and int(part) < len(node):
        return node[int(part)]
    return None


@dataclass(frozen=True)
class IfContext:
    """The `if` clause whose `then` produced an error, and how far below it the error is."""

    condition: Mapping[str, Any]
    depth: int  # instance levels between the `if`'s object and the error's instance


@dataclass
class _IfWalk:
    """The innermost `if` met so far on a schema path, and the instance levels below it."""

    condition: Mapping[str, Any] | None = None
    depth: int = 0

    def into_mapping(self, node: dict[str, Any], element: Any, previous: Any) -> Any:
        if element == "then" and isinstance(node.get("if"), dict):
            self.condition, self.depth = node["if"], 0
        elif self.condition is not None and (previous in _CHILD_OF or element in _CHILD_KEYWORDS):
            self.depth += 1
        return node.get(element)

    def into_list(self, node: list[Any], element: int, previous: Any) -> Any:
        if self.condition is not None and previous == "prefixItems":
            self.depth += 1
        return node[element]


def _follow_refs(root: Mapping[str, Any], node: Any, element: Any) -> Any:
    # jsonschema leaves `$ref` out of the path: follow refs until the element exists.
    hops = 0
    while (
        isinstance(node, dict)
        and element not in node
        and isinstance(node.get("$ref"), str)
        and hops < _MAX_REF_HOPS
    ):
        node = resolve_ref(root, node["$ref"])
        hops += 1
    return node


def _is_index(node: Any, element: Any) -> bool:
    return isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node)


def if_context(root: Mapping[str, Any], schema_path: Iterable[Any]) -> IfContext | None:
    """The innermost `if` whose `then` the (ref-free) absolute schema path went through."""
    node: Any = root
    walk = _IfWalk()
    previous: Any = None
    for element in schema_path:
        node = _follow_refs(root, node, element)
        if isinstance(node, dict):
            child = walk.into_mapping(node, element, previous)
        elif _is_index(node, element):
            child = walk.into_list(node, element, previous)
        else:
            break
        previous = element
        node = child
    return IfContext(walk.condition, walk.depth) if walk.condition is not None else None


def _strings(value: Any) -> list[str]:
    return [k for k in value if isinstance(k, str)] if isinstance(value, list) else []


def _phrase(key: str, sub: Mapping[str, Any]) -> str | None:
    if "const" in sub:
        return f"{key} is '{sub['const']}'"
    if isinstance(sub.get("enum"), list):
        return f"{key} is {' or '.join(str(v) for v in sub['enum'])}"
    return None


def _property_conditions(props: Mapping[str, Any], instance: Any, required: list[str]) -> list[str]:
    parts: list[str] = []
    for key, sub in props.items():
        if not isinstance(sub, dict):
            continue
        # A condition on a key the object does not have matched by default: not worth
        # mentioning (`step_type` defaults to `action`).
        if isinstance(instance, dict) and key not in instance and key not in required:
            continue
        phrase = _phrase(key, sub)
        if phrase is not None:
            parts.append(phrase)
    return parts


def condition_parts(condition: Mapping[str, Any], instance: Any) -> tuple[list[str], list[str]]:
    """(`step_type is 'loop'`-style conditions, keys that must be absent) of an `if`."""
    props = condition.get("properties")
    props = props if isinstance(props, dict) else {}
    required = _strings(condition.get("required"))
    parts = _property_conditions(props, instance, required)
    parts += [f"'{key}' is set" for key in required if key not in props]
    negated = condition.get("not")
    absent = _strings(negated.get("required")) if isinstance(negated, dict) else []
    return parts, absent
