"""Small pieces every loader stage shares: building a diagnostic, stopping early."""

from __future__ import annotations

from typing import Any, Final

from wfctl.format.diagnostics import Diagnostic

__all__ = ["Fatal", "describe", "diag"]


class Fatal(Exception):
    """Stops the event loop; the diagnostics gathered so far are reported."""


def diag(
    file: str, line: int, col: int, code: str, message: str, path: str = "", hint: str | None = None
) -> Diagnostic:
    """A loader diagnostic (always an error)."""
    return Diagnostic(
        file=file, line=line, col=col, code=code, message=message, path=path, hint=hint
    )


# Checked in order: bool before int, because a bool is an int.
_KINDS: Final[tuple[tuple[type, str], ...]] = (
    (bool, "a boolean"),
    (int, "an integer"),
    (float, "a number"),
    (str, "a string"),
    (list, "a list"),
)


def describe(value: Any) -> str:
    """What a loaded value is, in words (`a boolean`, `null`, `a mapping`)."""
    if value is None:
        return "null"
    return next((name for kind, name in _KINDS if isinstance(value, kind)), "a mapping")
