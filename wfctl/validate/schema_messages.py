"""JSON Schema validation of a loaded workflow, with messages that read like a human wrote them.

jsonschema's own messages (`0 is less than the minimum of 1`, `None is not of type
'object'`) are written for schema authors. Here each error becomes one Diagnostic that
says what is wrong in the author's terms (`must be >= 1 (got 0)`), points at the right
place (an unknown or forbidden key: the key; a wrong value: the value) and, where it
helps, carries a hint (`did you mean 'dependencies'?`, or the `description` the schema
puts on an `if`/`then`/`not` clause).

Errors that are mere consequences of another one are dropped: a value of the wrong type
also "fails" every keyword that assumes the right type (an `if`/`then` on a step that is a
string, say), and a misspelt required key is also a missing one.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wfctl.format.diagnostics import Diagnostic

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument, Path_

__all__ = [
    "compile_schema_check",
    "describe_value",
    "did_you_mean",
    "fast_is_valid",
    "schema_diagnostics",
]

_TYPE_NAMES: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}
_BOUNDS: Final = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
}
# The schema accepts a `{{ }}` template wherever a built-in action expects a number, an
# integer or a boolean: `type: [number, string], pattern: "\\{\\{"`.
_TEMPLATE_PATTERN: Final = r"\{\{"
# Keywords whose failure is explained by the key, not by the value.
_RAW_SCALAR_RE: Final = re.compile(r"[^\s,\]}#]+")
_MAX_LISTED_KEYS: Final = 12


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a misspelt word, or None."""
    options = [c for c in choices if isinstance(c, str)]
    folded = word.casefold()
    for option in options:
        if option.casefold() == folded and option != word:
            return f"did you mean '{option}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def describe_value(value: Any) -> str:
    """Short rendering of a YAML value for messages (`'abc'`, `0`, `a mapping`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        text = value if len(value) <= 40 else value[:37] + "..."
        return repr(text)
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _type_phrase(expected: Any) -> str:
    names = [str(n) for n in (expected if isinstance(expected, list) else [expected])]
    if names == ["boolean"]:
        return "true or false"
    if "integer" in names and "number" in names:
        names.remove("integer")
    return _or_list([_TYPE_NAMES.get(n, n) for n in names])


def _or_list(phrases: list[str]) -> str:
    if len(phrases) <= 2:
        return " or ".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def _quoted_list(items: Iterable[Any]) -> str:
    return ", ".join(str(i) for i in items)


# ------------------------------------------------------------------ schema navigation


def _resolve_ref(root: Mapping[str, Any], ref: str) -> Any:
    if not ref.startswith("#"):
        return None
    node: Any = root
    for part in ref[1:].split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


@dataclass(frozen=True)
class _IfContext:
    """The `if` clause whose `then` produced an error, and how far below it the error is."""

    condition: Mapping[str, Any]
    depth: int  # instance levels between the `if`'s object and the error's instance


def _if_context(root: Mapping[str, Any], schema_path: Iterable[Any]) -> _IfContext | None:
    """The innermost `if` whose `then` the (ref-free) absolute schema path went through."""
    node: Any = root
    condition: Mapping[str, Any] | None = None
    depth = 0
    previous: Any = None
    for element in schema_path:
        # jsonschema leaves `$ref` out of the path: follow refs until the element exists.
        hops = 0
        while (
            isinstance(node, dict)
            and element not in node
            and isinstance(node.get("$ref"), str)
            and hops < 32
        ):
            node = _resolve_ref(root, node["$ref"])
            hops += 1
        if isinstance(node, dict):
            if element == "then" and isinstance(node.get("if"), dict):
                condition, depth = node["if"], 0
            elif condition is not None and (
                previous in ("properties", "patternProperties")
                or element in ("additionalProperties", "items")
            ):
                depth += 1
            child = node.get(element)
        elif isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            if condition is not None and previous == "prefixItems":
                depth += 1
            child = node[element]
        else:
            break
        previous = element
        node = child
    return _IfContext(condition, depth) if condition is not None else None


def _condition_parts(condition: Mapping[str, Any], instance: Any) -> tuple[list[str], list[str]]:
    """(`step_type is 'loop'`-style conditions, keys that must be absent) of an `if`."""
    parts: list[str] = []
    props = condition.get("properties")
    required = condition.get("required")
    required_keys = (
        [k for k in required if isinstance(k, str)] if isinstance(required, list) else []
    )
    if isinstance(props, dict):
        for key, sub in props.items():
            if not isinstance(sub, dict):
                continue
            # A condition on a key the object does not have matched by default: not worth
            # mentioning (`step_type` defaults to `action`).
            if isinstance(instance, dict) and key not in instance and key not in required_keys:
                continue
            if "const" in sub:
                parts.append(f"{key} is '{sub['const']}'")
            elif isinstance(sub.get("enum"), list):
                parts.append(f"{key} is {' or '.join(str(v) for v in sub['enum'])}")
    for key in required_keys:
        if not (isinstance(props, dict) and key in props):
            parts.append(f"'{key}' is set")
    absent: list[str] = []
    negated = condition.get("not")
    if isinstance(negated, dict) and isinstance(negated.get("required"), list):
        absent = [k for k in negated["required"] if isinstance(k, str)]
    return parts, absent


# ------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class _Problem:
    path: Path_
    message: str
    hint: str | None = None
    at_key: bool = False
    # For `required`: the missing key, so a misspelt key can absorb it.
    missing: str | None = None


def _leaf_errors(error: Any) -> Iterator[Any]:
    """Descend through anyOf/oneOf to the errors that explain the failure best."""
    if error.validator in ("anyOf", "oneOf") and error.context:
        from jsonschema.exceptions import best_match

        # Prefer the alternative that got furthest into the instance: its errors are
        # the ones the author meant (e.g. a bad key inside a list form, not "not a string").
        best = best_match(error.context)
        deepest = max(len(e.absolute_path) for e in error.context)
        if deepest > len(error.absolute_path) and best is not None:
            group = [
                e for e in error.context if list(e.schema_path)[:1] == list(best.schema_path)[:1]
            ]
            for sub in group or [best]:
                yield from _leaf_errors(sub)
            return
    yield error


class _Explainer:
    """Turns jsonschema errors into `_Problem`s for one document."""

    def __init__(self, doc: LoadedDocument, root: Mapping[str, Any]) -> None:
        self.doc = doc
        self.root = root

    def explain(self, error: Any) -> list[_Problem]:
        kind = error.validator
        path: Path_ = tuple(error.absolute_path)
        value = error.instance
        arg = error.validator_value
        schema = error.schema if isinstance(error.schema, dict) else {}
        if "propertyNames" in error.absolute_schema_path:
            return [self._property_name(error, path)]
        if kind == "additionalProperties":
            return self._unknown_keys(error, path)
        if kind == "required":
            return self._required(error, path)
        if kind == "not":
            return [self._not(error, path)]
        if kind == "type":
            return [
                _Problem(
                    path,
                    f"must be {_type_phrase(arg)} (got {describe_value(value)})",
                    self._type_hint(arg, value, path),
                )
            ]
        if kind == "enum":
            options = _quoted_list(arg)
            hint = did_you_mean(value, [str(o) for o in arg]) if isinstance(value, str) else None
            return [
                _Problem(path, f"must be one of: {options} (got {describe_value(value)})", hint)
            ]
        if kind == "const":
            return [_Problem(path, f"must be {json.dumps(arg)} (got {describe_value(value)})")]
        if kind in _BOUNDS:
            return [_Problem(path, f"must be {_BOUNDS[kind]} {arg} (got {describe_value(value)})")]
        if kind == "multipleOf":
            return [_Problem(path, f"must be a multiple of {arg} (got {describe_value(value)})")]
        if kind == "minItems":
            if arg == 1:
                return [_Problem(path, "must not be empty", "list at least one item")]
            return [_Problem(path, f"must have at least {arg} items (got {len(value)})")]
        if kind == "maxItems":
            return [_Problem(path, f"must have at most {arg} item{'s' if arg != 1 else ''}")]
        if kind == "uniqueItems":
            return [self._unique(path, value)]
        if kind == "minLength":
            if arg == 1:
                return [_Problem(path, "must not be empty")]
            return [_Problem(path, f"must be at least {arg} characters long")]
        if kind == "maxLength":
            return [_Problem(path, f"must be at most {arg} characters long")]
        if kind == "minProperties":
            return [_Problem(path, f"must have at least {arg} key{'s' if arg != 1 else ''}")]
        if kind == "maxProperties":
            return [_Problem(path, f"must have at most {arg} key{'s' if arg != 1 else ''}")]
        if kind == "pattern":
            return [self._pattern(error, path, value, str(arg), schema)]
        if kind in ("maxContains", "minContains", "contains"):
            return [self._contains(error, path)]
        if kind in ("anyOf", "oneOf"):
            return [self._alternatives(error, path)]
        if kind == "dependentRequired" and isinstance(arg, dict):
            for trigger, needed in arg.items():
                if isinstance(value, dict) and trigger in value:
                    missing = [k for k in needed if k not in value]
                    if missing:
                        return [_Problem(path, f"'{trigger}' needs '{missing[0]}'")]
        if kind is False or kind == "false":
            return [_Problem(path, "no value is allowed here", at_key=True)]
        return [_Problem(path, error.message.split("\n")[0])]

    # -- per keyword -----------------------------------------------------

    def _unknown_keys(self, error: Any, path: Path_) -> list[_Problem]:
        value = error.instance
        schema = error.schema if isinstance(error.schema, dict) else {}
        props = schema.get("properties")
        allowed = [k for k in props if isinstance(k, str)] if isinstance(props, dict) else []
        patterns = schema.get("patternProperties")
        regexes = (
            [re.compile(p) for p in patterns if isinstance(p, str)]
            if isinstance(patterns, dict)
            else []
        )
        extras = [
            k
            for k in (value if isinstance(value, dict) else {})
            if k not in allowed and not any(r.search(k) for r in regexes)
        ]
        out: list[_Problem] = []
        for key in extras:
            hint = did_you_mean(str(key), allowed)
            if hint is None:
                if not allowed:
                    title = schema.get("title")
                    if isinstance(title, str) and title.endswith(" arguments"):
                        hint = f"the {title.removesuffix(' arguments')} action takes no arguments"
                    else:
                        hint = "no keys are allowed here"
                elif len(allowed) <= _MAX_LISTED_KEYS:
                    hint = f"allowed keys: {', '.join(allowed)}"
            out.append(_Problem((*path, key), f"unknown key '{key}'", hint, at_key=True))
        return out

    def _required(self, error: Any, path: Path_) -> list[_Problem]:
        value = error.instance
        needed = [k for k in error.validator_value if isinstance(k, str)]
        missing = [k for k in needed if not (isinstance(value, dict) and k in value)]
        out: list[_Problem] = []
        context = _if_context(self.root, error.absolute_schema_path)
        for key in missing or needed[:1]:
            message = f"missing required key '{key}'"
            hint: str | None = None
            if context is not None:
                owner = self._ancestor_value(path, context.depth)
                parts, absent = _condition_parts(context.condition, owner)
                if context.depth == 0 and absent:
                    message = f"needs '{key}' or '{absent[0]}'"
                    if parts:
                        hint = f"required when {' and '.join(parts)}"
                else:
                    parts = parts + [f"there is no '{k}'" for k in absent]
                    if parts:
                        hint = f"required when {' and '.join(parts)}"
            out.append(_Problem(path, message, hint, at_key=True, missing=key))
        return out

    def _not(self, error: Any, path: Path_) -> _Problem:
        arg = error.validator_value
        forbidden = arg.get("required") if isinstance(arg, dict) else None
        hint = _description(error.schema)
        if hint is None:
            context = _if_context(self.root, error.absolute_schema_path)
            if context is not None:
                parts, absent = _condition_parts(
                    context.condition, self._ancestor_value(path, context.depth)
                )
                parts += [f"there is no '{k}'" for k in absent]
                if parts:
                    hint = f"not allowed when {' and '.join(parts)}"
        if isinstance(forbidden, list) and forbidden:
            present = [
                k for k in forbidden if isinstance(error.instance, dict) and k in error.instance
            ]
            key = (present or forbidden)[0]
            return _Problem((*path, key), f"'{key}' is not allowed here", hint, at_key=True)
        return _Problem(path, f"{describe_value(error.instance)} is not allowed here", hint)

    def _pattern(
        self, error: Any, path: Path_, value: Any, pattern: str, schema: Mapping[str, Any]
    ) -> _Problem:
        if pattern == _TEMPLATE_PATTERN:
            types = schema.get("type")
            others = [t for t in (types if isinstance(types, list) else [types]) if t != "string"]
            names = [str(n) for n in others if n != "integer" or "number" not in others]
            what = _or_list([*(_TYPE_NAMES.get(n, n) for n in names), "a `{{ }}` template"])
            return _Problem(
                path,
                f"must be {what} (got {describe_value(value)})",
                _description(schema),
            )
        title = schema.get("title")
        if isinstance(title, str) and title:
            return _Problem(
                path,
                f"{describe_value(value)} is not a valid {title[0].lower() + title[1:]}",
                _description(schema) or f"it must match {pattern}",
            )
        return _Problem(
            path,
            f"{describe_value(value)} does not match the pattern {pattern}",
            _description(schema),
        )

    def _property_name(self, error: Any, path: Path_) -> _Problem:
        key = error.instance
        schema = error.schema if isinstance(error.schema, dict) else {}
        key_path: Path_ = (*path, key) if isinstance(key, str) else path
        if error.validator == "pattern":
            title = schema.get("title")
            what = title[0].lower() + title[1:] if isinstance(title, str) and title else "name"
            return _Problem(
                key_path,
                f"key {describe_value(key)} is not a valid {what}",
                _description(schema) or f"it must match {error.validator_value}",
                at_key=True,
            )
        return _Problem(
            key_path, f"key {describe_value(key)}: {error.message.splitlines()[0]}", at_key=True
        )

    def _unique(self, path: Path_, value: Any) -> _Problem:
        if isinstance(value, list):
            seen: list[Any] = []
            for index, item in enumerate(value):
                if item in seen:
                    return _Problem(
                        (*path, index),
                        f"{describe_value(item)} is listed more than once",
                        "remove the repeated item",
                    )
                seen.append(item)
        return _Problem(path, "items must be unique")

    def _contains(self, error: Any, path: Path_) -> _Problem:
        schema = error.schema if isinstance(error.schema, dict) else {}
        contains = schema.get("contains")
        negated = contains.get("not") if isinstance(contains, dict) else None
        omitted = negated.get("required") if isinstance(negated, dict) else None
        limit = schema.get("maxContains")
        if error.validator == "maxContains" and isinstance(omitted, list) and omitted:
            key = omitted[0]
            description = _description(schema)
            return _Problem(
                path,
                f"at most {limit} item{'s' if limit != 1 else ''} may leave out '{key}'",
                description,
            )
        return _Problem(path, error.message.split("\n")[0])

    def _alternatives(self, error: Any, path: Path_) -> _Problem:
        alternatives = error.validator_value
        keys = [
            a["required"][0]
            for a in alternatives
            if isinstance(a, dict) and isinstance(a.get("required"), list) and a["required"]
        ]
        if keys and len(keys) == len(alternatives):
            names = " or ".join(f"'{k}'" for k in keys)
            if error.validator == "oneOf":
                return _Problem(path, f"needs exactly one of {names}", at_key=True)
            return _Problem(path, f"needs {names}", at_key=True)
        return _Problem(path, f"{describe_value(error.instance)} is not valid here")

    # -- helpers ---------------------------------------------------------

    def _ancestor_value(self, path: Path_, depth: int) -> Any:
        node: Any = self.doc.data
        for element in path[: len(path) - depth] if depth else path:
            try:
                node = node[element]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def _type_hint(self, expected: Any, value: Any, path: Path_) -> str | None:
        names = expected if isinstance(expected, list) else [expected]
        if names == ["string"] and isinstance(value, bool | int | float):
            raw = self._raw_scalar(path) or describe_value(value)
            return f'quote it: "{raw}"'
        if {"number", "integer"} & set(names) and isinstance(value, str) and _looks_numeric(value):
            return "remove the quotes to make it a number"
        if value is None and "object" in names:
            return "give it some keys, or remove it"
        return None

    def _raw_scalar(self, path: Path_) -> str | None:
        line, col = self.doc.source_map.value_pos(path)
        lines = self.doc.text.splitlines()
        if not 0 < line <= len(lines):
            return None
        match = _RAW_SCALAR_RE.match(lines[line - 1], col - 1)
        return match.group() if match else None


def _looks_numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _description(schema: Any) -> str | None:
    description = schema.get("description") if isinstance(schema, dict) else None
    return description if isinstance(description, str) and description else None


# ----------------------------------------------------------------- fast validity check
#
# jsonschema walks the schema for every value (creating a validator per `$ref`, `if`,
# `allOf` branch...): about 5 ms per workflow, most of `wfctl validate` on a directory.
# Most files are valid, so we first ask a validator compiled to closures, which only says
# yes or no for the keywords our schema uses; jsonschema runs (for its detailed errors)
# only when that says no. A keyword the compiler does not know makes it give up, and
# jsonschema does all the work, so the fast path can never accept what jsonschema rejects.
# tests/test_schema_check.py checks that both agree on valid and broken documents.

_Check = Callable[[Any], bool]

_ANNOTATIONS: Final = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "default",
        "examples",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",  # an annotation only: jsonschema checks it only with a format checker
        "minContains",
        "maxContains",  # read together with `contains`
        "then",
        "else",  # read together with `if`
    }
)


class _Unsupported(Exception):
    """The schema uses a keyword the fast compiler does not implement."""


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema sees it: true is not 1, 1 is 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _is_number(a) and _is_number(b):
        return bool(a == b)
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_json_equal(a[k], b[k]) for k in a)
    return a is None and b is None


_TYPE_CHECKS: Final[dict[str, _Check]] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": _is_number,
    "integer": lambda v: (
        (isinstance(v, int) and not isinstance(v, bool))
        or (isinstance(v, float) and v.is_integer())
    ),
}


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, list[_Check]] = {}

    def compile(self, schema: Any) -> _Check:
        if schema is True:
            return lambda _v: True
        if schema is False:
            return lambda _v: False
        if not isinstance(schema, dict):
            raise _Unsupported(repr(schema))
        checks: list[_Check] = []
        for keyword, arg in schema.items():
            if keyword in _ANNOTATIONS:
                continue
            method = getattr(self, "_kw_" + keyword.lstrip("$"), None)
            if method is None:
                raise _Unsupported(keyword)
            check: _Check | None = method(arg, schema)
            if check is not None:
                checks.append(check)
        if not checks:
            return lambda _v: True
        if len(checks) == 1:
            return checks[0]

        def all_checks(value: Any) -> bool:
            for check in checks:  # noqa: SIM110 - a plain loop is faster than all() here
                if not check(value):
                    return False
            return True

        return all_checks

    # -- references and combinators ----------------------------------------

    def _kw_ref(self, ref: Any, _schema: Any) -> _Check:
        if not isinstance(ref, str):
            raise _Unsupported("$ref")
        holder = self.refs.get(ref)
        if holder is None:
            target = _resolve_ref(self.root, ref)
            if target is None:
                raise _Unsupported(ref)
            holder = []
            self.refs[ref] = holder  # registered first: recursive refs find it
            holder.append(self.compile(target))
        return lambda value: holder[0](value)

    def _kw_allOf(self, subs: Any, _schema: Any) -> _Check:
        checks = [self.compile(s) for s in subs]

        def all_of(value: Any) -> bool:
            for check in checks:  # noqa: SIM110 - a plain loop is faster than all() here
                if not check(value):
                    return False
            return True

        return all_of

    def _kw_anyOf(self, subs: Any, _schema: Any) -> _Check:
        checks = [self.compile(s) for s in subs]
        return lambda value: any(c(value) for c in checks)

    def _kw_oneOf(self, subs: Any, _schema: Any) -> _Check:
        checks = [self.compile(s) for s in subs]
        return lambda value: sum(1 for c in checks if c(value)) == 1

    def _kw_not(self, sub: Any, _schema: Any) -> _Check:
        check = self.compile(sub)
        return lambda value: not check(value)

    def _kw_if(self, sub: Any, schema: Mapping[str, Any]) -> _Check:
        condition = self.compile(sub)
        then = self.compile(schema["then"]) if "then" in schema else None
        otherwise = self.compile(schema["else"]) if "else" in schema else None

        def if_then_else(value: Any) -> bool:
            if condition(value):
                return then is None or then(value)
            return otherwise is None or otherwise(value)

        return if_then_else

    # -- any type --------------------------------------------------------

    def _kw_type(self, arg: Any, _schema: Any) -> _Check:
        names = arg if isinstance(arg, list) else [arg]
        try:
            checks = [_TYPE_CHECKS[n] for n in names]
        except (KeyError, TypeError):
            raise _Unsupported(f"type {arg!r}") from None
        if len(checks) == 1:
            return checks[0]
        return lambda value: any(c(value) for c in checks)

    def _kw_enum(self, options: Any, _schema: Any) -> _Check:
        if not isinstance(options, list):
            raise _Unsupported("enum")
        if all(isinstance(o, str) for o in options):
            allowed = frozenset(options)
            return lambda value: isinstance(value, str) and value in allowed
        return lambda value: any(_json_equal(value, o) for o in options)

    def _kw_const(self, expected: Any, _schema: Any) -> _Check:
        return lambda value: _json_equal(value, expected)

    # -- numbers -----------------------------------------------------------

    def _bound(self, arg: Any, test: Callable[[Any, Any], bool]) -> _Check:
        if not _is_number(arg):
            raise _Unsupported("bound")
        return lambda value: not _is_number(value) or test(value, arg)

    def _kw_minimum(self, arg: Any, _schema: Any) -> _Check:
        return self._bound(arg, lambda v, a: v >= a)

    def _kw_maximum(self, arg: Any, _schema: Any) -> _Check:
        return self._bound(arg, lambda v, a: v <= a)

    def _kw_exclusiveMinimum(self, arg: Any, _schema: Any) -> _Check:
        return self._bound(arg, lambda v, a: v > a)

    def _kw_exclusiveMaximum(self, arg: Any, _schema: Any) -> _Check:
        return self._bound(arg, lambda v, a: v < a)

    # -- strings -----------------------------------------------------------

    def _kw_minLength(self, arg: Any, _schema: Any) -> _Check:
        return lambda value: not isinstance(value, str) or len(value) >= arg

    def _kw_maxLength(self, arg: Any, _schema: Any) -> _Check:
        return lambda value: not isinstance(value, str) or len(value) <= arg

    def _kw_pattern(self, arg: Any, _schema: Any) -> _Check:
        search = re.compile(arg).search
        return lambda value: not isinstance(value, str) or search(value) is not None

    # -- arrays ------------------------------------------------------------

    def _kw_items(self, sub: Any, _schema: Any) -> _Check:
        check = self.compile(sub)

        def items(value: Any) -> bool:
            if isinstance(value, list):
                for item in value:
                    if not check(item):
                        return False
            return True

        return items

    def _kw_minItems(self, arg: Any, _schema: Any) -> _Check:
        return lambda value: not isinstance(value, list) or len(value) >= arg

    def _kw_maxItems(self, arg: Any, _schema: Any) -> _Check:
        return lambda value: not isinstance(value, list) or len(value) <= arg

    def _kw_uniqueItems(self, arg: Any, _schema: Any) -> _Check | None:
        if not arg:
            return None

        def unique(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            return not any(
                _json_equal(value[i], value[j])
                for i in range(len(value))
                for j in range(i + 1, len(value))
            )

        return unique

    def _kw_contains(self, sub: Any, schema: Mapping[str, Any]) -> _Check:
        check = self.compile(sub)
        low = schema.get("minContains", 1)
        high = schema.get("maxContains")

        def contains(value: Any) -> bool:
            if not isinstance(value, list):
                return True
            matches = sum(1 for v in value if check(v))
            return matches >= low and (high is None or matches <= high)

        return contains

    # -- objects -----------------------------------------------------------

    def _kw_required(self, arg: Any, _schema: Any) -> _Check:
        keys = frozenset(arg)
        if len(keys) == 1:
            (key,) = keys
            return lambda value: not isinstance(value, dict) or key in value
        return lambda value: not isinstance(value, dict) or keys.issubset(value)

    def _kw_properties(self, arg: Any, _schema: Any) -> _Check:
        checks = {name: self.compile(sub) for name, sub in arg.items()}
        if len(checks) == 1:
            ((name, check),) = checks.items()
            return lambda value: (
                not isinstance(value, dict) or name not in value or check(value[name])
            )

        def properties(value: Any) -> bool:
            if not isinstance(value, dict):
                return True
            for name, check in checks.items():
                if name in value and not check(value[name]):
                    return False
            return True

        return properties

    def _kw_additionalProperties(self, sub: Any, schema: Mapping[str, Any]) -> _Check:
        if "patternProperties" in schema:
            raise _Unsupported("patternProperties")
        known = frozenset(schema.get("properties") or ())
        if sub is False:
            return lambda value: not isinstance(value, dict) or known.issuperset(value)
        check = self.compile(sub)
        return lambda value: (
            not isinstance(value, dict) or all(check(v) for k, v in value.items() if k not in known)
        )

    def _kw_propertyNames(self, sub: Any, _schema: Any) -> _Check:
        check = self.compile(sub)
        return lambda value: not isinstance(value, dict) or all(check(k) for k in value)

    def _kw_minProperties(self, arg: Any, _schema: Any) -> _Check:
        return lambda value: not isinstance(value, dict) or len(value) >= arg

    def _kw_maxProperties(self, arg: Any, _schema: Any) -> _Check:
        return lambda value: not isinstance(value, dict) or len(value) <= arg


def compile_schema_check(schema: Any) -> Callable[[Any], bool] | None:
    """A yes/no validity check compiled from a JSON Schema (refs resolved against it), or
    None when the schema uses a keyword the compiler does not implement."""
    try:
        return _Compiler(schema if isinstance(schema, dict) else {}).compile(schema)
    except (_Unsupported, re.error, TypeError, KeyError, ValueError, RecursionError):
        return None


_fast_checks: dict[int, _Check | None] = {}


def fast_is_valid(data: Any) -> bool | None:
    """True/False from the compiled check of the workflow schema; None if it cannot say."""
    from wfctl.format.schema import load_schema

    root = load_schema()
    key = id(root)
    if key not in _fast_checks:
        try:
            _fast_checks[key] = _Compiler(root).compile(root)
        except (_Unsupported, re.error, TypeError, KeyError):
            _fast_checks[key] = None
    check = _fast_checks[key]
    if check is None:
        return None
    try:
        return check(data)
    except RecursionError:
        return None


# ------------------------------------------------------------------------- entry point


def _schema_errors(data: Any) -> list[Any]:
    from wfctl.format.schema import validator_for

    errors: list[Any] = []
    for top in validator_for().iter_errors(data):
        errors.extend(_leaf_errors(top))
    return errors


def schema_diagnostics(doc: LoadedDocument) -> list[Diagnostic]:
    """Validate `doc.data` against the workflow schema; one Diagnostic per problem."""
    from wfctl.document.loader import format_path
    from wfctl.format.schema import load_schema

    if fast_is_valid(doc.data):
        return []
    errors = _schema_errors(doc.data)
    if not errors:
        return []
    # A value of the wrong type "fails" every keyword that expects the right type too
    # (a step written as a string fails each `if`/`then`/`not` clause): keep the type error.
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    explainer = _Explainer(doc, load_schema())
    problems: list[_Problem] = []
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator != "type" and (
            path in wrong_type or any(path[:n] in wrong_type for n in range(len(path)))
        ):
            continue
        problems.extend(explainer.explain(error))
    # A misspelt required key is reported once, as an unknown key with a hint.
    suggested = {
        (p.path[:-1], p.hint) for p in problems if p.message.startswith("unknown key ") and p.hint
    }
    problems = [
        p
        for p in problems
        if p.missing is None or (p.path, f"did you mean '{p.missing}'?") not in suggested
    ]
    sm = doc.source_map
    seen: set[tuple[Path_, str]] = set()
    out: list[Diagnostic] = []
    for problem in problems:
        dedup = (problem.path, problem.message)
        if dedup in seen:
            continue
        seen.add(dedup)
        if problem.at_key or _value_at(doc.data, problem.path) is None:
            line, col = sm.key_pos(problem.path)
        else:
            line, col = sm.value_pos(problem.path)
        out.append(
            Diagnostic(
                file=doc.file,
                line=line,
                col=col,
                code="schema",
                message=problem.message,
                path=format_path(problem.path),
                hint=problem.hint,
            )
        )
    return out


_MISSING: Final = object()


def _value_at(data: Any, path: Path_) -> Any:
    """The value at `path`; `_MISSING` (not None) when there is none."""
    node = data
    for element in path:
        try:
            node = node[element]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return node
