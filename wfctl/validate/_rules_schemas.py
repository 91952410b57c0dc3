"""Rules on the JSON Schemas a workflow carries: its inputs (and their defaults), steps'
`input_validation` and react steps' `output_schema` must be valid Draft 2020-12 schemas."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from typing import TYPE_CHECKING, Any, Final

from wfctl.validate._context import Context
from wfctl.validate.schema_messages import compile_schema_check, describe_value

if TYPE_CHECKING:
    from wfctl.document.loader import Path_

__all__ = [
    "check_inputs",
    "instance_problem",
    "meta_validator",
    "plainly_valid_schema",
    "schema_patterns",
]


def check_inputs(ctx: Context) -> None:
    """Input schemas and their defaults, then the schemas of every step."""
    inputs = ctx.doc.data.get("inputs")
    if isinstance(inputs, dict):
        for name, schema in inputs.items():
            if isinstance(schema, dict | bool):
                _check_input(ctx, name, schema)
    for info in ctx.steps.values():
        _check_schema(
            ctx,
            (*info.path, "input_validation"),
            info.data.get("input_validation"),
            "input_validation",
        )
        with_ = info.data.get("with")
        if info.data.get("step_type") == "react" and isinstance(with_, dict):
            path: Path_ = (*info.path, "with", "output_schema")
            _check_schema(ctx, path, with_.get("output_schema"), "output_schema")


def _check_input(ctx: Context, name: str, schema: dict[str, Any] | bool) -> None:
    path: Path_ = ("inputs", name)
    clean = (
        {k: v for k, v in schema.items() if k != "secret"} if isinstance(schema, dict) else schema
    )
    problem = schema_problem(clean)
    if problem is not None:
        ctx.report(path, "invalid-json-schema", f"schema of input '{name}': {problem}")
        return
    if _check_patterns(ctx, path, clean):
        return
    if isinstance(schema, dict) and "default" in schema:
        violation = instance_problem(clean, schema["default"])
        if violation is not None:
            ctx.report(
                (*path, "default"),
                "input-default",
                f"default of input '{name}' violates its own schema: {violation}",
                "fix the default, or the schema",
            )


def _check_schema(ctx: Context, path: Path_, schema: Any, what: str) -> None:
    if not isinstance(schema, dict | bool):
        return
    problem = schema_problem(schema)
    if problem is not None:
        ctx.report(path, "invalid-json-schema", f"{what} is not a valid JSON Schema: {problem}")
        return
    _check_patterns(ctx, path, schema)


def schema_patterns(schema: Any, path: Path_ = ()) -> Iterator[tuple[Path_, str]]:
    """(path, pattern) for every `pattern` and `patternProperties` key inside a schema."""
    todo: list[tuple[Path_, Any]] = [(path, schema)]
    while todo:
        where, node = todo.pop()
        if isinstance(node, list):
            todo.extend(((*where, i), item) for i, item in enumerate(node))
        elif isinstance(node, dict):
            yield from _own_patterns(where, node)
            todo.extend(((*where, k), v) for k, v in node.items() if k not in _DATA_KEYWORDS)


def _own_patterns(where: Path_, node: dict[str, Any]) -> Iterator[tuple[Path_, str]]:
    """The patterns one schema object holds itself (`pattern`, `patternProperties` keys)."""
    pattern = node.get("pattern")
    if isinstance(pattern, str):
        yield (*where, "pattern"), pattern
    properties = node.get("patternProperties")
    if isinstance(properties, dict):
        yield from (((*where, "patternProperties", k), k) for k in properties if isinstance(k, str))


# Keywords whose values are data, not schemas (a `pattern` key inside them is a value).
_DATA_KEYWORDS: Final = frozenset({"default", "const", "enum", "examples"})


def _check_patterns(ctx: Context, path: Path_, schema: Any) -> bool:
    """Report patterns RE2 cannot run (no linear-time bound); True when there were any."""
    found = False
    for where, pattern in schema_patterns(schema, path):
        from wfctl.format.user_schema import pattern_problem

        problem = pattern_problem(pattern)
        if problem is not None:
            found = True
            ctx.report(
                where,
                "unbounded-pattern",
                problem,
                "rewrite it without lookaround or backreferences (wfctl matches patterns "
                "with RE2, in time linear in the text)",
                key=where[-2:-1] == ("patternProperties",),
            )
    return found


# ------------------------------------------------------------- is it a valid schema?


@cache
def meta_validator() -> Any:
    """A validator of schemas against the Draft 2020-12 metaschema (jsonschema, cached)."""
    from jsonschema import Draft202012Validator

    # As Draft202012Validator.check_schema does: `pattern`s must be valid regexes.
    return Draft202012Validator(
        Draft202012Validator.META_SCHEMA, format_checker=Draft202012Validator.FORMAT_CHECKER
    )


_SIMPLE_TYPES: Final = frozenset(
    {"string", "integer", "number", "boolean", "object", "array", "null"}
)
_MAX_PLAIN_DEPTH: Final = 16


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_type(value: Any) -> bool:
    names = value if isinstance(value, list) else [value]
    return (
        bool(names)
        and all(isinstance(n, str) and n in _SIMPLE_TYPES for n in names)
        and len(set(names)) == len(names)
    )


def _is_required(value: Any) -> bool:
    return (
        isinstance(value, list)
        and all(isinstance(v, str) for v in value)
        and len(set(value)) == len(value)
    )


def _compiles(pattern: Any) -> bool:
    if not isinstance(pattern, str):
        return False
    try:
        re.compile(pattern)
    except (re.error, RecursionError, OverflowError):
        return False
    return True


# keyword -> check of its value (given the depth, for keywords holding schemas).
_Keyword = Callable[[Any, int], bool]
_PLAIN_KEYWORDS: Final[Mapping[str, _Keyword]] = {
    **dict.fromkeys(
        ("title", "description", "$comment", "format"), lambda v, _d: isinstance(v, str)
    ),
    **dict.fromkeys(("default", "const"), lambda _v, _d: True),
    **dict.fromkeys(("examples", "enum"), lambda v, _d: isinstance(v, list)),
    **dict.fromkeys(
        ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
        lambda v, _d: _is_number(v),
    ),
    **dict.fromkeys(
        ("minLength", "maxLength", "minItems", "maxItems", "minProperties", "maxProperties"),
        lambda v, _d: _is_count(v),
    ),
    "type": lambda v, _d: _is_type(v),
    "pattern": lambda v, _d: _compiles(v),
    "uniqueItems": lambda v, _d: isinstance(v, bool),
    "required": lambda v, _d: _is_required(v),
    "items": lambda v, d: plainly_valid_schema(v, d + 1),
    "additionalProperties": lambda v, d: plainly_valid_schema(v, d + 1),
    "properties": lambda v, d: (
        isinstance(v, dict) and all(plainly_valid_schema(s, d + 1) for s in v.values())
    ),
}


def plainly_valid_schema(schema: Any, depth: int = 0) -> bool:
    """A sufficient condition for being a valid Draft 2020-12 schema, for the simple
    schemas inputs usually have; False means "ask the metaschema" (which means importing
    jsonschema, a fifth of the start-up of `wfctl validate`)."""
    if isinstance(schema, bool):
        return True
    if not isinstance(schema, dict) or depth > _MAX_PLAIN_DEPTH:
        return False
    for key, value in schema.items():
        check = _PLAIN_KEYWORDS.get(key)
        if check is None or not check(value, depth):
            return False
    return True


@cache
def _schema_problem_cached(text: str) -> str | None:
    from jsonschema.exceptions import best_match

    error = best_match(meta_validator().iter_errors(json.loads(text)))
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{where + ': ' if where else ''}{error.message}"


def schema_problem(schema: Any) -> str | None:
    """Why `schema` is not a valid Draft 2020-12 schema, or None (cached by content)."""
    if plainly_valid_schema(schema):
        return None
    try:
        text = json.dumps(schema, sort_keys=True)
    except (TypeError, ValueError):
        return "not representable as JSON"
    return _schema_problem_cached(text)


# --------------------------------------------------------------- does a value fit it?

_BOUND_WORDS: Final = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
}


def _bound_violation(word: str) -> Callable[[Any, Any], str]:
    return lambda arg, value: f"must be {word} {arg} (got {describe_value(value)})"


_VIOLATIONS: Final[Mapping[str, Callable[[Any, Any], str]]] = {
    **{kind: _bound_violation(word) for kind, word in _BOUND_WORDS.items()},
    "enum": lambda arg, value: (
        f"must be one of: {', '.join(str(a) for a in arg)} (got {describe_value(value)})"
    ),
    "type": lambda arg, value: f"must be of type {arg} (got {describe_value(value)})",
    "pattern": lambda arg, value: f"{describe_value(value)} does not match the pattern {arg}",
}


def instance_problem(schema: Any, instance: Any) -> str | None:
    """The first way `instance` violates `schema`, in plain words, or None."""
    check = compile_schema_check(schema)  # its patterns run on RE2 too (linear time)
    if check is not None and check(instance):
        return None
    from jsonschema.exceptions import best_match

    from wfctl.format.user_schema import user_validator

    error = best_match(user_validator(schema).iter_errors(instance))
    if error is None:
        return None
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    explain = _VIOLATIONS.get(error.validator)
    if explain is not None:
        text = explain(error.validator_value, error.instance)
    else:
        text = error.message.split("\n")[0]
    return f"{where.lstrip('.')}: {text}" if where else text
