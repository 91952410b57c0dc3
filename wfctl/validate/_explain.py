"""jsonschema errors as problems in the author's terms: one function per JSON-Schema keyword.

jsonschema's own messages (`0 is less than the minimum of 1`, `None is not of type
'object'`) are written for schema authors. Each keyword's function here says what is wrong
in the author's terms (`must be >= 1 (got 0)`), points at the right place (an unknown or
forbidden key: the key; a wrong value: the value) and, where it helps, carries a hint
(`did you mean 'dependencies'?`, or the `description` the schema puts on an
`if`/`then`/`not` clause). `KEYWORDS` maps each keyword to its function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from wfctl.validate._schema_nav import condition_parts, if_context
from wfctl.validate._words import (
    TYPE_NAMES,
    describe_value,
    description,
    did_you_mean,
    looks_numeric,
    or_list,
    quoted_list,
    type_phrase,
)

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument, Path_

__all__ = ["KEYWORDS", "Explainer", "Problem", "leaf_errors"]

_BOUNDS: Final = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
}
# The schema accepts a `{{ }}` template wherever a built-in action expects a number, an
# integer or a boolean: `type: [number, string], pattern: "\\{\\{"`.
_TEMPLATE_PATTERN: Final = r"\{\{"
_RAW_SCALAR_RE: Final = re.compile(r"[^\s,\]}#]+")
_MAX_LISTED_KEYS: Final = 12


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where it is, and a hint."""

    path: Path_
    message: str
    hint: str | None = None
    at_key: bool = False
    # For `required`: the missing key, so a misspelt key can absorb it.
    missing: str | None = None


def leaf_errors(error: Any) -> Iterator[Any]:
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
                yield from leaf_errors(sub)
            return
    yield error


def _schema_of(error: Any) -> Mapping[str, Any]:
    return error.schema if isinstance(error.schema, dict) else {}


def _plural(count: Any, word: str) -> str:
    return f"{count} {word}{'s' if count != 1 else ''}"


class Explainer:
    """Turns jsonschema errors into `Problem`s for one document."""

    def __init__(self, doc: LoadedDocument, root: Mapping[str, Any]) -> None:
        self.doc = doc
        self.root = root

    def explain(self, error: Any) -> list[Problem]:
        """The problems one jsonschema error stands for (usually one)."""
        path: Path_ = tuple(error.absolute_path)
        if "propertyNames" in error.absolute_schema_path:
            return [_property_name(error, path)]
        keyword = KEYWORDS.get(error.validator)
        problems = keyword(self, error, path) if keyword is not None else None
        return [_as_jsonschema_says(error, path)] if problems is None else problems

    # -- what needs the document -----------------------------------------

    def ancestor_value(self, path: Path_, depth: int) -> Any:
        """The instance `depth` levels above `path` (None if there is none)."""
        node: Any = self.doc.data
        for element in path[: len(path) - depth] if depth else path:
            try:
                node = node[element]
            except (KeyError, IndexError, TypeError):
                return None
        return node

    def conditions(self, error: Any, path: Path_) -> tuple[int, list[str], list[str]] | None:
        """(depth, conditions, absent keys) of the `if` behind an error, or None."""
        context = if_context(self.root, error.absolute_schema_path)
        if context is None:
            return None
        owner = self.ancestor_value(path, context.depth)
        return (context.depth, *condition_parts(context.condition, owner))

    def type_hint(self, expected: Any, value: Any, path: Path_) -> str | None:
        """How to write the value so that it has the expected type."""
        names = expected if isinstance(expected, list) else [expected]
        if names == ["string"] and isinstance(value, bool | int | float):
            raw = self.raw_scalar(path) or describe_value(value)
            return f'quote it: "{raw}"'
        if {"number", "integer"} & set(names) and isinstance(value, str) and looks_numeric(value):
            return "remove the quotes to make it a number"
        if value is None and "object" in names:
            return "give it some keys, or remove it"
        return None

    def raw_scalar(self, path: Path_) -> str | None:
        """The scalar at `path` as written in the file."""
        line, col = self.doc.source_map.value_pos(path)
        lines = self.doc.text.splitlines()
        if not 0 < line <= len(lines):
            return None
        match = _RAW_SCALAR_RE.match(lines[line - 1], col - 1)
        return match.group() if match else None


_Keyword = Callable[[Explainer, Any, "Path_"], "list[Problem] | None"]


def _as_jsonschema_says(error: Any, path: Path_) -> Problem:
    return Problem(path, error.message.split("\n")[0])


# ------------------------------------------------------------------------ per keyword


def _unknown_keys(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    schema = _schema_of(error)
    props = schema.get("properties")
    allowed = [k for k in props if isinstance(k, str)] if isinstance(props, dict) else []
    return [
        Problem((*path, key), f"unknown key '{key}'", _unknown_key_hint(key, allowed, schema), True)
        for key in _extra_keys(error.instance, schema, allowed)
    ]


def _extra_keys(value: Any, schema: Mapping[str, Any], allowed: list[str]) -> list[Any]:
    """The keys of `value` neither `properties` nor `patternProperties` allow."""
    patterns = schema.get("patternProperties")
    regexes = (
        [re.compile(p) for p in patterns if isinstance(p, str)]
        if isinstance(patterns, dict)
        else []
    )
    keys = value if isinstance(value, dict) else {}
    return [k for k in keys if k not in allowed and not any(r.search(k) for r in regexes)]


def _unknown_key_hint(key: Any, allowed: list[str], schema: Mapping[str, Any]) -> str | None:
    hint = did_you_mean(str(key), allowed)
    if hint is not None:
        return hint
    if allowed:
        return f"allowed keys: {', '.join(allowed)}" if len(allowed) <= _MAX_LISTED_KEYS else None
    title = schema.get("title")
    if isinstance(title, str) and title.endswith(" arguments"):
        return f"the {title.removesuffix(' arguments')} action takes no arguments"
    return "no keys are allowed here"


def _required(ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    value = error.instance
    needed = [k for k in error.validator_value if isinstance(k, str)]
    missing = [k for k in needed if not (isinstance(value, dict) and k in value)]
    found = ex.conditions(error, path)
    out: list[Problem] = []
    for key in missing or needed[:1]:
        message, hint = _required_wording(key, found)
        out.append(Problem(path, message, hint, at_key=True, missing=key))
    return out


def _required_wording(
    key: str, found: tuple[int, list[str], list[str]] | None
) -> tuple[str, str | None]:
    message = f"missing required key '{key}'"
    if found is None:
        return message, None
    depth, parts, absent = found
    if depth == 0 and absent:
        message = f"needs '{key}' or '{absent[0]}'"
    else:
        parts = parts + [f"there is no '{k}'" for k in absent]
    return message, f"required when {' and '.join(parts)}" if parts else None


def _not(ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    arg = error.validator_value
    forbidden = arg.get("required") if isinstance(arg, dict) else None
    hint = description(error.schema) or _not_hint(ex, error, path)
    if isinstance(forbidden, list) and forbidden:
        instance = error.instance
        present = [k for k in forbidden if isinstance(instance, dict) and k in instance]
        key = (present or forbidden)[0]
        return [Problem((*path, key), f"'{key}' is not allowed here", hint, at_key=True)]
    return [Problem(path, f"{describe_value(error.instance)} is not allowed here", hint)]


def _not_hint(ex: Explainer, error: Any, path: Path_) -> str | None:
    found = ex.conditions(error, path)
    if found is None:
        return None
    _depth, parts, absent = found
    parts += [f"there is no '{k}'" for k in absent]
    return f"not allowed when {' and '.join(parts)}" if parts else None


def _type(ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    arg, value = error.validator_value, error.instance
    message = f"must be {type_phrase(arg)} (got {describe_value(value)})"
    return [Problem(path, message, ex.type_hint(arg, value, path))]


def _enum(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    arg, value = error.validator_value, error.instance
    hint = did_you_mean(value, [str(o) for o in arg]) if isinstance(value, str) else None
    message = f"must be one of: {quoted_list(arg)} (got {describe_value(value)})"
    return [Problem(path, message, hint)]


def _simple(words: Callable[[Any, Any], str]) -> _Keyword:
    """A keyword whose message depends only on its argument and the value."""

    def explain(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
        return [Problem(path, words(error.validator_value, error.instance))]

    return explain


def _bound(word: str) -> _Keyword:
    return _simple(lambda arg, value: f"must be {word} {arg} (got {describe_value(value)})")


def _min_items(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    arg = error.validator_value
    if arg == 1:
        return [Problem(path, "must not be empty", "list at least one item")]
    return [Problem(path, f"must have at least {arg} items (got {len(error.instance)})")]


def _unique(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    value = error.instance
    if isinstance(value, list):
        seen: list[Any] = []
        for index, item in enumerate(value):
            if item in seen:
                return [
                    Problem(
                        (*path, index),
                        f"{describe_value(item)} is listed more than once",
                        "remove the repeated item",
                    )
                ]
            seen.append(item)
    return [Problem(path, "items must be unique")]


def _pattern(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    value, pattern, schema = error.instance, str(error.validator_value), _schema_of(error)
    if pattern == _TEMPLATE_PATTERN:
        return [_template_or(schema, path, value)]
    title = schema.get("title")
    if isinstance(title, str) and title:
        what = title[0].lower() + title[1:]
        hint = description(schema) or f"it must match {pattern}"
        return [Problem(path, f"{describe_value(value)} is not a valid {what}", hint)]
    message = f"{describe_value(value)} does not match the pattern {pattern}"
    return [Problem(path, message, description(schema))]


def _template_or(schema: Mapping[str, Any], path: Path_, value: Any) -> Problem:
    """A value that is neither of its types nor a `{{ }}` template."""
    types = schema.get("type")
    others = [t for t in (types if isinstance(types, list) else [types]) if t != "string"]
    names = [str(n) for n in others if n != "integer" or "number" not in others]
    what = or_list([*(TYPE_NAMES.get(n, n) for n in names), "a `{{ }}` template"])
    return Problem(path, f"must be {what} (got {describe_value(value)})", description(schema))


def _property_name(error: Any, path: Path_) -> Problem:
    key = error.instance
    schema = _schema_of(error)
    key_path: Path_ = (*path, key) if isinstance(key, str) else path
    if error.validator == "pattern":
        title = schema.get("title")
        what = title[0].lower() + title[1:] if isinstance(title, str) and title else "name"
        return Problem(
            key_path,
            f"key {describe_value(key)} is not a valid {what}",
            description(schema) or f"it must match {error.validator_value}",
            at_key=True,
        )
    return Problem(
        key_path, f"key {describe_value(key)}: {error.message.splitlines()[0]}", at_key=True
    )


def _contains(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    schema = _schema_of(error)
    contains = schema.get("contains")
    negated = contains.get("not") if isinstance(contains, dict) else None
    omitted = negated.get("required") if isinstance(negated, dict) else None
    if error.validator == "maxContains" and isinstance(omitted, list) and omitted:
        limit = schema.get("maxContains")
        message = f"at most {_plural(limit, 'item')} may leave out '{omitted[0]}'"
        return [Problem(path, message, description(schema))]
    return [_as_jsonschema_says(error, path)]


def _alternatives(_ex: Explainer, error: Any, path: Path_) -> list[Problem]:
    alternatives = error.validator_value
    keys = [
        a["required"][0]
        for a in alternatives
        if isinstance(a, dict) and isinstance(a.get("required"), list) and a["required"]
    ]
    if not keys or len(keys) != len(alternatives):
        return [Problem(path, f"{describe_value(error.instance)} is not valid here")]
    names = " or ".join(f"'{k}'" for k in keys)
    if error.validator == "oneOf":
        return [Problem(path, f"needs exactly one of {names}", at_key=True)]
    return [Problem(path, f"needs {names}", at_key=True)]


def _dependent_required(_ex: Explainer, error: Any, path: Path_) -> list[Problem] | None:
    arg, value = error.validator_value, error.instance
    if not isinstance(arg, dict) or not isinstance(value, dict):
        return None
    for trigger, needed in arg.items():
        missing = [k for k in needed if k not in value] if trigger in value else []
        if missing:
            return [Problem(path, f"'{trigger}' needs '{missing[0]}'")]
    return None


def _nothing_allowed(_ex: Explainer, _error: Any, path: Path_) -> list[Problem]:
    return [Problem(path, "no value is allowed here", at_key=True)]


KEYWORDS: Final[Mapping[Any, _Keyword]] = {
    "additionalProperties": _unknown_keys,
    "required": _required,
    "not": _not,
    "type": _type,
    "enum": _enum,
    "const": _simple(lambda arg, value: f"must be {json.dumps(arg)} (got {describe_value(value)})"),
    **{kind: _bound(word) for kind, word in _BOUNDS.items()},
    "multipleOf": _simple(
        lambda arg, value: f"must be a multiple of {arg} (got {describe_value(value)})"
    ),
    "minItems": _min_items,
    "maxItems": _simple(lambda arg, _value: f"must have at most {_plural(arg, 'item')}"),
    "uniqueItems": _unique,
    "minLength": _simple(
        lambda arg, _value: (
            "must not be empty" if arg == 1 else f"must be at least {arg} characters long"
        )
    ),
    "maxLength": _simple(lambda arg, _value: f"must be at most {arg} characters long"),
    "minProperties": _simple(lambda arg, _value: f"must have at least {_plural(arg, 'key')}"),
    "maxProperties": _simple(lambda arg, _value: f"must have at most {_plural(arg, 'key')}"),
    "pattern": _pattern,
    "contains": _contains,
    "minContains": _contains,
    "maxContains": _contains,
    "anyOf": _alternatives,
    "oneOf": _alternatives,
    "dependentRequired": _dependent_required,
    False: _nothing_allowed,
    "false": _nothing_allowed,
}
