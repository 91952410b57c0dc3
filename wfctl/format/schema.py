"""Where the published JSON Schemas live, their cached validators, and reading them.

Kept light (json and functools only): `wfctl validate` and the model import it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent.parent  # wfctl/


def schema_path(name: str = "workflow.schema.json") -> Path:
    """Path of a published schema: bundled in the wheel, or the repository's `schemas/`."""
    for candidate in (_PACKAGE_DIR / "_schemas" / name, _PACKAGE_DIR.parent / "schemas" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"schema {name} is not installed with wfctl")


@cache
def load_schema(name: str = "workflow.schema.json") -> dict[str, Any]:
    """The schema document as data (cached: read once per process)."""
    with schema_path(name).open(encoding="utf-8") as fh:
        data: dict[str, Any] = json.load(fh)
    return data


@cache
def validator_for(name: str = "workflow.schema.json") -> Any:
    """A Draft 2020-12 validator for a published schema, built once per process."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def resolve(document: Any, pointer: str) -> Any:
    """The node of `document` at a JSON pointer (RFC 6901; "" is the root)."""
    node = document
    for part in pointer.split("/")[1:]:
        key = part.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


@cache
def _node(pointer: str, name: str) -> Any:
    return resolve(load_schema(name), pointer)


def node(pointer: str, name: str = "workflow.schema.json") -> Any:
    """The schema node at `pointer` (`/$defs/retry_policy`), looked up once per process.

    Shared and cached: do not modify it.
    """
    return _node(pointer, name)


def default(pointer: str, name: str = "workflow.schema.json") -> Any:
    """The `default` of the field at `pointer`, e.g. `/properties/timeout` -> 3600.

    Lists and mappings are fresh copies (the caller may keep or change them); raises
    KeyError when the field has no default.
    """
    found = _node(pointer, name)
    if not isinstance(found, dict) or "default" not in found:
        raise KeyError(f"{name}#{pointer} has no default")
    value = found["default"]
    return json.loads(json.dumps(value)) if isinstance(value, list | dict) else value


def enum(pointer: str, name: str = "workflow.schema.json") -> tuple[Any, ...]:
    """The `enum` of the field at `pointer` (for a list, of its items), in schema order."""
    found = _node(pointer, name)
    if isinstance(found, dict) and "enum" not in found and isinstance(found.get("items"), dict):
        found = found["items"]
    if not isinstance(found, dict) or "enum" not in found:
        raise KeyError(f"{name}#{pointer} has no enum")
    return tuple(found["enum"])
