"""Run inputs: parse `-i KEY=VALUE`, apply defaults, validate against the workflow's schemas."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from wfctl.document._limits import MAX_DEPTH, nesting_exceeds


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
    except RecursionError:
        raise InputError(f"input '{key.strip()}' is nested too deeply") from None
    return key.strip(), value


_MISSING = object()


def _unknown(declared: Mapping[str, Any], given: Mapping[str, Any]) -> list[str]:
    known = ", ".join(sorted(declared)) or "none"
    return [
        f"unknown input '{name}' (declared inputs: {known})"
        for name in given
        if name not in declared
    ]


def _value(name: str, schema: Any, given: Mapping[str, Any]) -> Any:
    """The given value, else the schema's default, else _MISSING."""
    if name in given:
        return given[name]
    if isinstance(schema, Mapping) and "default" in schema:
        return schema["default"]
    return _MISSING


def _schema_problem(name: str, schema: Any, value: Any) -> str | None:
    """The first way `value` fails the input's schema, or None."""
    from wfctl.format.user_schema import user_validator

    secret = isinstance(schema, Mapping) and schema.get("secret")
    clean = (
        {k: v for k, v in schema.items() if k != "secret"}
        if isinstance(schema, Mapping)
        else schema
    )
    errors = sorted(user_validator(clean).iter_errors(value), key=lambda e: e.path)
    if not errors:
        return None
    if secret:
        # jsonschema's message quotes the value: never show a secret's.
        return f"input '{name}' = ***: fails its schema ('{errors[0].validator}')"
    return f"input '{name}' = {value!r}: {errors[0].message}"


def resolve_inputs(
    declared: Mapping[str, Any], given: Mapping[str, Any], source: str = "workflow"
) -> dict[str, Any]:
    """Defaults applied and every input checked; raises InputError listing all problems."""
    problems = _unknown(declared, given)
    problems += [
        f"input '{name}' is nested deeper than {MAX_DEPTH} levels"
        for name, value in given.items()
        if nesting_exceeds(value)
    ]
    if problems:
        # Checking a schema against data that deep would recurse without bound.
        raise InputError("; ".join(problems))
    resolved: dict[str, Any] = {}
    for name, schema in declared.items():
        value = _value(name, schema, given)
        if value is _MISSING:
            problems.append(f"missing required input '{name}' (pass -i {name}=VALUE)")
            continue
        problem = _schema_problem(name, schema, value)
        if problem is not None:
            problems.append(problem)
        resolved[name] = value
    if problems:
        raise InputError("; ".join(problems))
    return resolved
