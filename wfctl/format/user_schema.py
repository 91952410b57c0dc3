"""The user's own JSON Schemas (inputs, input_validation, output_schema), checked in
bounded time.

jsonschema matches ``pattern`` and ``patternProperties`` with Python's backtracking
``re``: ``^(a+)+$`` on 31 characters took 45 s, in C code no timeout or signal can
interrupt (issue 15). Here every user pattern is matched by RE2 (``google-re2``), whose
matching time is linear in the text. Patterns RE2 cannot run (lookaround,
backreferences) have no such bound: ``wfctl validate`` reports them, and at run time a
value checked against one fails validation instead of risking the hang.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

__all__ = ["compiled_pattern", "pattern_problem", "pattern_search", "user_validator"]

#: RE2's memory budget per compiled pattern (bytes); a bigger automaton is an error.
_RE2_MAX_MEM = 8 << 20


@functools.cache
def _options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # RE2 would print every rejected pattern on stderr
    options.max_mem = _RE2_MAX_MEM
    return options


@functools.lru_cache(maxsize=1024)
def _compiled(pattern: str) -> tuple[Callable[[str], Any] | None, str | None]:
    import re2

    try:
        return re2.compile(pattern, _options()).search, None
    except re2.error as exc:
        detail = exc.args[0] if exc.args else str(exc)
        text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
        return None, text
    except (TypeError, ValueError, OverflowError) as exc:
        return None, str(exc)


def compiled_pattern(pattern: str) -> Callable[[str], Any] | None:
    """RE2's search for `pattern`, or None if RE2 cannot run it in linear time."""
    return _compiled(pattern)[0]


def pattern_problem(pattern: str) -> str | None:
    """Why `pattern` cannot be matched in linear time (RE2 refuses it), or None."""
    _search, problem = _compiled(pattern)
    if problem is None:
        return None
    return (
        f"pattern {pattern!r} cannot be matched in linear time ({problem}); "
        "lookaround and backreferences are not supported"
    )


class PatternError(ValueError):
    """A user pattern that RE2 cannot run."""


def pattern_search(pattern: str, text: str) -> bool:
    """Does `pattern` match somewhere in `text` (JSON Schema semantics: unanchored)?"""
    search, _problem = _compiled(pattern)
    if search is None:
        raise PatternError(pattern_problem(pattern))
    return search(text) is not None


def _pattern(validator: Any, pattern: Any, instance: Any, schema: Any) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "string"):
        return
    try:
        matched = pattern_search(pattern, instance)
    except PatternError as exc:
        yield ValidationError(str(exc))
        return
    if not matched:
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


def _pattern_properties(
    validator: Any, properties: Mapping[str, Any], instance: Any, schema: Any
) -> Iterator[Any]:
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in properties.items():
        for key, value in instance.items():
            try:
                matched = pattern_search(pattern, key)
            except PatternError as exc:
                yield ValidationError(str(exc))
                return
            if matched:
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Keys neither in ``properties`` nor matched by a ``patternProperties`` pattern."""
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    extras = []
    for key in instance:
        if key in properties:
            continue
        try:
            if any(pattern_search(p, key) for p in patterns):
                continue
        except PatternError:
            pass  # reported by patternProperties
        extras.append(key)
    return extras


def _additional_properties(
    validator: Any, additional: Any, instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    from jsonschema._utils import extras_msg
    from jsonschema.exceptions import ValidationError

    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        # jsonschema's own wording, which messages and tests quote.
        keys, verb = extras_msg(sorted(extras, key=str))
        yield ValidationError(f"Additional properties are not allowed ({keys} {verb} unexpected)")


@functools.cache
def _validator_class() -> Any:
    from jsonschema import Draft202012Validator, validators

    return validators.extend(
        Draft202012Validator,
        {
            "pattern": _pattern,
            "patternProperties": _pattern_properties,
            "additionalProperties": _additional_properties,
        },
    )


def user_validator(schema: Any) -> Any:
    """A Draft 2020-12 validator for a user's schema, with RE2 for every pattern."""
    return _validator_class()(schema)
