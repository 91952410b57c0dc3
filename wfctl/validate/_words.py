"""The words of diagnostics: values, types and suggestions as a workflow author reads them."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, Final

__all__ = [
    "TYPE_NAMES",
    "describe_value",
    "description",
    "did_you_mean",
    "looks_numeric",
    "or_list",
    "quoted_list",
    "type_phrase",
]

TYPE_NAMES: Final = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean ...?' hint for a misspelt word, or None."""
    options = [c for c in choices if isinstance(c, str)]
    folded = word.casefold()
    for option in options:
        if option.casefold() == folded and option != word:
            return f"did you mean '{option}'?"
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


_KIND_WORDS: Final = ((dict, "a mapping"), (list, "a list"))


def describe_value(value: Any) -> str:
    """Short rendering of a YAML value for messages (`'abc'`, `0`, `a mapping`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, int | float):
        return str(value)
    for kind, words in _KIND_WORDS:
        if isinstance(value, kind):
            return words
    return type(value).__name__


def type_phrase(expected: Any) -> str:
    """`a string or a list` for a JSON Schema `type`."""
    names = [str(n) for n in (expected if isinstance(expected, list) else [expected])]
    if names == ["boolean"]:
        return "true or false"
    if "integer" in names and "number" in names:
        names.remove("integer")
    return or_list([TYPE_NAMES.get(n, n) for n in names])


def or_list(phrases: list[str]) -> str:
    """`a, b or c`."""
    if len(phrases) <= 2:
        return " or ".join(phrases)
    return ", ".join(phrases[:-1]) + " or " + phrases[-1]


def quoted_list(items: Iterable[Any]) -> str:
    """The items, comma-separated."""
    return ", ".join(str(i) for i in items)


def looks_numeric(text: str) -> bool:
    """Whether a string would be a number without its quotes."""
    try:
        float(text)
    except ValueError:
        return False
    return True


def description(schema: Any) -> str | None:
    """A schema's non-empty `description`, or None."""
    text = schema.get("description") if isinstance(schema, dict) else None
    return text if isinstance(text, str) and text else None
