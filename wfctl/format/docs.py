"""docs/FORMAT.md's field tables and code table, generated from the schema and the registry.

    python -m wfctl.format.docs            # rewrite the generated sections
    python -m wfctl.format.docs --check    # exit 1 if they drifted (CI, tests)

A generated section sits between `<!-- BEGIN GENERATED: name -->` and
`<!-- END GENERATED: name -->`; everything outside the markers is hand-written prose and
is left as it is. The names are the keys of TABLES, plus `types` and `codes`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final

from wfctl.format.codes import CODES
from wfctl.format.schema import load_schema, resolve

__all__ = [
    "TABLES",
    "TYPES",
    "format_md_path",
    "main",
    "render",
    "render_codes",
    "render_object",
    "render_types",
    "sections",
]

#: Generated section name -> JSON pointer of the object whose fields it lists.
TABLES: Final[Mapping[str, str]] = {
    "workflow": "",
    "local_workflow": "/$defs/local_workflow",
    "retry_policy": "/$defs/retry_policy",
    "circuit_breaker": "/$defs/circuit_breaker",
    "sla_targets": "/$defs/sla_targets",
    "agent": "/$defs/agent",
    "step": "/$defs/step",
    "condition_branch": "/$defs/condition_branch",
    "human_approval_with": "/$defs/human_approval_with",
    "react_with": "/$defs/react_with",
    "react_tool": "/$defs/react_tool",
    "shell_with": "/$defs/shell_with",
    "python_with": "/$defs/python_with",
    "http_with": "/$defs/http_with",
    "set_with": "/$defs/set_with",
    "sleep_with": "/$defs/sleep_with",
    "fail_with": "/$defs/fail_with",
}

_SECTION_RE: Final = re.compile(
    r"(<!-- BEGIN GENERATED: (?P<name>[a-z_]+) -->\n)"
    r"(?P<body>.*?)"
    r"(<!-- END GENERATED: (?P=name) -->)",
    re.DOTALL,
)
# `{{ }}` strings accepted beside a number, a list...: shown as "template".
_TEMPLATE_PATTERN: Final = r"\{\{"


def format_md_path() -> Path:
    """docs/FORMAT.md of the repository this package is in."""
    return Path(__file__).resolve().parent.parent.parent / "docs" / "FORMAT.md"


# ------------------------------------------------------------------------- object tables


def render_object(schema: Mapping[str, Any], pointer: str) -> str:
    """A Markdown table of the fields of the object at `pointer`."""
    node = resolve(schema, pointer)
    required = set(node.get("required", ()))
    rows = ["| field | type | default | description |", "|---|---|---|---|"]
    for name, field in node.get("properties", {}).items():
        default = "required" if name in required else _default(field)
        cells = (f"`{name}`", _type(schema, field), default, field.get("description", ""))
        rows.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(rows) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(field: Mapping[str, Any]) -> str:
    if "default" not in field:
        return ""
    return f"`{json.dumps(field['default'], ensure_ascii=False)}`"


def _type(schema: Mapping[str, Any], field: Mapping[str, Any]) -> str:
    """The field's type in words: `integer >= 1`, `list of Step`, `` `a` | `b` ``."""
    if "$ref" in field:
        target = resolve(schema, field["$ref"][1:])
        if field["$ref"].startswith("#/properties/"):  # a field of the workflow reused
            return _type(schema, target)
        return str(target.get("title", field["$ref"]))
    if "enum" in field:
        return " | ".join(f"`{value}`" for value in field["enum"])
    types = field.get("type")
    if types is None:
        return "any"
    if isinstance(types, str):
        types = [types]
    return " or ".join(_ONE_TYPE[kind](schema, field) for kind in types)


def _bounds(field: Mapping[str, Any], noun: str) -> str:
    low, high = field.get("minimum"), field.get("maximum")
    if "exclusiveMinimum" in field:
        return f"{noun} > {field['exclusiveMinimum']}"
    if low is not None and high is not None:
        return f"{noun} {low}..{high}"
    if low is not None:
        return f"{noun} >= {low}"
    return noun


def _string(schema: Mapping[str, Any], field: Mapping[str, Any]) -> str:
    multi = isinstance(field.get("type"), list)
    return "template" if multi and field.get("pattern") == _TEMPLATE_PATTERN else "string"


def _array(schema: Mapping[str, Any], field: Mapping[str, Any]) -> str:
    items = field.get("items")
    return f"list of {_inner(schema, items)}" if isinstance(items, Mapping) else "list"


def _object(schema: Mapping[str, Any], field: Mapping[str, Any]) -> str:
    values = field.get("additionalProperties")
    return f"map of {_inner(schema, values)}" if isinstance(values, Mapping) else "map"


def _inner(schema: Mapping[str, Any], node: Mapping[str, Any]) -> str:
    """The type of list items or map values: its title if it has one, parenthesised if
    it is a choice."""
    if "title" in node and "enum" not in node:
        return str(node["title"])
    text = _type(schema, node)
    return f"({text})" if " or " in text else text


_ONE_TYPE: Final[dict[str, Callable[[Mapping[str, Any], Mapping[str, Any]], str]]] = {
    "string": _string,
    "integer": lambda _s, f: _bounds(f, "integer"),
    "number": lambda _s, f: _bounds(f, "number"),
    "boolean": lambda _s, _f: "boolean",
    "array": _array,
    "object": _object,
    "null": lambda _s, _f: "null",
}


#: The named value types the tables refer to ($defs that are not objects with fields).
TYPES: Final = (
    "id",
    "env_var",
    "duration",
    "expression",
    "model",
    "action_name",
    "capability",
    "user_schema",
)


def render_types(schema: Mapping[str, Any]) -> str:
    """A Markdown table of the named value types (Identifier, Duration, ...)."""
    rows = ["| type | meaning |", "|---|---|"]
    for name in TYPES:
        node = schema["$defs"][name]
        meaning = node.get("description", "")
        if "pattern" in node:
            meaning += f" Pattern: `{node['pattern']}`."
        rows.append(f"| {_cell(node['title'])} | {_cell(meaning)} |")
    return "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------- the codes


def render_codes() -> str:
    """A Markdown table of every diagnostic code, from wfctl.format.codes."""
    rows = ["| code | found by | meaning |", "|---|---|---|"]
    for code in CODES.values():
        stages = ", ".join(stage.value for stage in code.stages)
        rows.append(f"| `{code.name}` | {stages} | {_cell(code.meaning)} |")
    return "\n".join(rows) + "\n"


# ------------------------------------------------------------------------------ the page


def sections(schema: Mapping[str, Any]) -> dict[str, str]:
    """Every generated section's text, by name."""
    out = {name: render_object(schema, pointer) for name, pointer in TABLES.items()}
    out["types"] = render_types(schema)
    out["codes"] = render_codes()
    return out


def render(text: str, schema: Mapping[str, Any] | None = None) -> str:
    """`text` (FORMAT.md) with every generated section rewritten; prose is kept as it is.

    Raises ValueError when a section is missing or its markers name no known section.
    """
    wanted = sections(schema if schema is not None else load_schema())
    seen: set[str] = set()

    def fill(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in wanted:
            raise ValueError(f"unknown generated section {name!r}")
        seen.add(name)
        return match.group(1) + wanted[name] + match.group(4)

    result = _SECTION_RE.sub(fill, text)
    missing = sorted(set(wanted) - seen)
    if missing:
        raise ValueError(f"docs/FORMAT.md has no generated section for: {', '.join(missing)}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Rewrite docs/FORMAT.md's generated sections, or (--check) report drift."""
    parser = argparse.ArgumentParser(prog="python -m wfctl.format.docs", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    parser.add_argument("path", nargs="?", type=Path, default=None, help="default: FORMAT.md")
    args = parser.parse_args(argv)
    path: Path = args.path or format_md_path()
    current = path.read_text(encoding="utf-8")
    try:
        fresh = render(current)
    except ValueError as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    if fresh == current:
        return 0
    if args.check:
        print(f"{path} is out of date: run python -m wfctl.format.docs", file=sys.stderr)
        return 1
    path.write_text(fresh, encoding="utf-8")
    print(f"rewrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
