"""Scalar values: the YAML 1.2 reading we give them, and warnings where YAML 1.1 differs.

Anything a YAML 1.1 reader (PyYAML's `safe_load`, many CI tools) would read differently
from us is reported, so nobody is surprised: `yes`, `0755`, `2026-01-01`, `1_000`, `1e3`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import Any, Final, Protocol

from wfctl.document._resolver import BOOL, FLOAT, INT, NULL, STR, resolve_plain, short_tag
from wfctl.document.sourcemap import Path_

__all__ = ["Report", "check_yaml11", "scalar_value"]

# y/n are 1.1 booleans on paper, but PyYAML (and its safe_dump) treats them as strings.
_YAML11_BOOL_RE: Final = re.compile(r"^(?:yes|no|on|off)$", re.IGNORECASE)
_YAML11_TIMESTAMP_RE: Final = re.compile(
    r"""^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}
     (?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
     (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$""",
    re.VERBOSE,
)
_NON_FINITE_RE: Final = re.compile(r"^[-+]?\.(?:inf|nan)$", re.IGNORECASE)
_LEADING_ZERO_RE: Final = re.compile(r"^[-+]?0[0-9]+$")
# 1.1 ints/floats with `_` separators or 0b prefixes; sexagesimal (22:22) is left as a
# string on purpose (times of day are far more common than base-60 numbers).
_YAML11_NUMBER_RE: Final = re.compile(
    r"""^[-+]?(?:0b[0-1_]+
    |0x[0-9a-fA-F_]+
    |[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$""",
    re.VERBOSE,
)
_AMBIGUOUS_NUMBER: Final = "unquoted {!r} is a string in YAML 1.1 but a number here"


class Report(Protocol):
    """How a scalar problem is recorded (the builder's `_add`)."""

    def __call__(
        self,
        line: int,
        col: int,
        code: str,
        message: str,
        path: Path_ = (),
        hint: str | None = None,
    ) -> None: ...


Pos = tuple[int, int]
# (value, path, pos, warn about YAML 1.1, report) -> the constructed value
_Constructor = Callable[[str, Path_, Pos, bool, Report], Any]


def scalar_value(event: Any, is_value: bool, path: Path_, pos: Pos, add: Report) -> Any:
    """The value of a scalar event; YAML 1.1 differences are reported for values only
    (a key's reading is checked by the builder: keys must be strings)."""
    value: str = event.value
    tag = event.tag
    if tag is None and not event.style:
        tag = resolve_plain(value)
        if tag == STR:
            if is_value:
                check_yaml11(value, path, pos, add)
            return value
        return _CONSTRUCTORS[tag](value, path, pos, is_value, add)
    if tag is None or tag == "!" or tag == STR:
        return value
    return _explicit(tag, value, path, pos, add)


def _explicit(tag: str, value: str, path: Path_, pos: Pos, add: Report) -> Any:
    """A value with an explicit `!!tag`: allowed when it agrees with the plain reading."""
    construct = _CONSTRUCTORS.get(tag)
    if construct is not None:
        resolved = resolve_plain(value)
        if resolved == tag or (tag == FLOAT and resolved == INT):
            return construct(value, path, pos, False, add)
    add(
        *pos,
        "unsupported-tag",
        f"unsupported tag {short_tag(tag)} on value {value!r}",
        path,
        hint="remove the tag, or quote the value to make it a string",
    )
    return value


def _null(value: str, path: Path_, pos: Pos, warn: bool, add: Report) -> None:
    return None


def _bool(value: str, path: Path_, pos: Pos, warn: bool, add: Report) -> bool:
    return value[0] in "tT"


def _int(value: str, path: Path_, pos: Pos, warn: bool, add: Report) -> int | str:
    prefix = value[:2]
    if prefix == "0x":
        return int(value[2:], 16)
    if prefix == "0o":
        if warn:
            # A YAML 1.1 reader (PyYAML included) sees the string "0o17".
            add(
                *pos,
                "yaml-ambiguous-number",
                _AMBIGUOUS_NUMBER.format(value),
                path,
                hint=f'write {int(value[2:], 8)} for a number, or quote it ("{value}")',
            )
        return int(value[2:], 8)
    try:
        number = int(value)
    except ValueError:
        # Python refuses to convert decimal strings over 4300 digits.
        add(
            *pos,
            "number-too-large",
            f"integer with {len(value)} digits is too large",
            path,
            hint="quote it to keep it as a string",
        )
        return value
    if warn and _LEADING_ZERO_RE.match(value):
        _report_octal(value, number, path, pos, add)
    return number


def _float(value: str, path: Path_, pos: Pos, warn: bool, add: Report) -> float | str:
    real = float(value)
    if not math.isfinite(real):
        add(
            *pos,
            "yaml-non-finite",
            f"{value!r} overflows to infinity, and JSON has no NaN/Infinity",
            path,
            hint="use a smaller number, or quote it to keep it as a string",
        )
        return value
    if warn and "." not in value:
        # `1e3`: a float in YAML 1.2, a string for PyYAML and other YAML 1.1 readers.
        add(
            *pos,
            "yaml-ambiguous-number",
            _AMBIGUOUS_NUMBER.format(value),
            path,
            hint=f"write {value.lower().replace('e', '.0e', 1)} for a number, "
            f'or quote it ("{value}") for a string',
        )
    return real


_CONSTRUCTORS: Final[dict[str, _Constructor]] = {
    NULL: _null,
    BOOL: _bool,
    INT: _int,
    FLOAT: _float,
}


def _report_octal(value: str, decimal: int, path: Path_, pos: Pos, add: Report) -> None:
    digits = value.lstrip("+-")
    if set(digits) <= set("01234567"):
        octal = int(value, 8)
        if octal == decimal:
            return
        reading = f"octal ({octal})"
    else:
        reading = "a string"
    add(
        *pos,
        "yaml-ambiguous-octal",
        f"unquoted {value!r} is {reading} in YAML 1.1 but decimal {decimal} here",
        path,
        hint=f'quote it ("{value}"), or write 0o{digits.lstrip("0")} for octal or '
        f"{decimal} for decimal",
    )


# ------------------------------------------------ plain strings a YAML 1.1 reader retypes


def check_yaml11(value: str, path: Path_, pos: Pos, add: Report) -> None:
    """Report a plain string that YAML 1.1 would read as a bool, date, number or NaN."""
    check = _BY_FIRST_CHAR.get(value[:1])
    if check is not None:
        check(value, path, pos, add)


def _bool_word(value: str, path: Path_, pos: Pos, add: Report) -> None:
    if 2 <= len(value) <= 3 and _YAML11_BOOL_RE.match(value):
        add(
            *pos,
            "yaml-ambiguous-bool",
            f"unquoted {value!r} is a boolean in YAML 1.1 but a string here",
            path,
            hint=f'quote it ("{value}") or write true/false',
        )


def _starts_with_digit(value: str, path: Path_, pos: Pos, add: Report) -> None:
    if _YAML11_TIMESTAMP_RE.match(value):
        add(
            *pos,
            "yaml-timestamp",
            f"unquoted {value!r} is a date/time in YAML 1.1 but a string here",
            path,
            hint=f'quote it ("{value}")',
        )
    else:
        _number_word(value, path, pos, add)


def _starts_with_sign(value: str, path: Path_, pos: Pos, add: Report) -> None:
    if _NON_FINITE_RE.match(value):
        add(
            *pos,
            "yaml-non-finite",
            f"unquoted {value!r} is NaN/Infinity in YAML 1.1, and JSON has no NaN/Infinity",
            path,
            hint=f'quote it ("{value}") to keep it as a string, or use a number',
        )
    else:
        _number_word(value, path, pos, add)


def _number_word(value: str, path: Path_, pos: Pos, add: Report) -> None:
    if ("_" in value or "0b" in value) and _YAML11_NUMBER_RE.match(value):
        add(
            *pos,
            "yaml-ambiguous-number",
            f"unquoted {value!r} is a number in YAML 1.1 but a string here",
            path,
            hint=f'quote it ("{value}"), or write the number without `_` or `0b`',
        )


# Which check a plain string needs, by its first character (most strings need none).
_BY_FIRST_CHAR: Final[dict[str, Callable[[str, Path_, Pos, Report], None]]] = {
    **dict.fromkeys("yYnNoO", _bool_word),
    **dict.fromkeys("0123456789", _starts_with_digit),
    **dict.fromkeys(".+-", _starts_with_sign),
}
