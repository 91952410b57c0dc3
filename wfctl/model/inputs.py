"""Run inputs: parse `-i KEY=VALUE`, apply defaults, validate against the workflow's schemas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any


class InputError(Exception):
    """Bad run inputs (exit 2): the message names the input."""


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value`: the value parsed as JSON when it parses, else kept as a string."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise InputError(f"input '{text}' is not KEY=VALUE")
    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key.strip(), value


def resolve_inputs(
    declared: Mapping[str, Any], given: Mapping[str, Any], source: str = "workflow"
) -> dict[str, Any]:
    """Defaults applied and every input checked; raises InputError listing all problems."""
    from jsonschema import Draft202012Validator

    problems: list[str] = []
    resolved: dict[str, Any] = {}
    for name in given:
        if name not in declared:
            known = ", ".join(sorted(declared)) or "none"
            problems.append(f"unknown input '{name}' (declared inputs: {known})")
    for name, schema in declared.items():
        if name in given:
            value = given[name]
        elif isinstance(schema, Mapping) and "default" in schema:
            value = schema["default"]
        else:
            problems.append(f"missing required input '{name}' (pass -i {name}=VALUE)")
            continue
        clean = (
            {k: v for k, v in schema.items() if k != "secret"}
            if isinstance(schema, Mapping)
            else schema
        )
        errors = sorted(Draft202012Validator(clean).iter_errors(value), key=lambda e: e.path)
        for error in errors[:1]:
            if isinstance(schema, Mapping) and schema.get("secret"):
                # jsonschema's message quotes the value: never show a secret's.
                problems.append(f"input '{name}' = ***: fails its schema ('{error.validator}')")
            else:
                problems.append(f"input '{name}' = {value!r}: {error.message}")
        resolved[name] = value
    if problems:
        raise InputError("; ".join(problems))
    return resolved
