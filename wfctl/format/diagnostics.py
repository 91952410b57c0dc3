"""Diagnostics: one problem found in a workflow file, with where it is."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from wfctl.format.codes import CODE_NAMES


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    """A problem at file:line:col; `path` is the JSON path (`steps[2].retry_policy`).

    `code` must be registered in `wfctl.format.codes` (ValueError otherwise).
    """

    file: str
    line: int
    col: int
    code: str
    message: str
    path: str = ""
    hint: str | None = None
    severity: Severity = field(default=Severity.ERROR, compare=False)

    def __post_init__(self) -> None:
        if self.code not in CODE_NAMES:
            raise ValueError(
                f"unregistered diagnostic code {self.code!r}: add it to wfctl.format.codes"
            )

    def location(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"

    def to_json(self) -> dict[str, object]:
        return {
            "file": self.file,
            "line": self.line,
            "col": self.col,
            "code": self.code,
            "severity": self.severity.value,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class WorkflowError(Exception):
    """Raised when a workflow cannot be used; carries every diagnostic found."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        self.diagnostics = diagnostics
        first = diagnostics[0] if diagnostics else None
        summary = (
            f"{first.location()} {first.path + ': ' if first.path else ''}{first.message}"
            if first
            else "invalid workflow"
        )
        if len(diagnostics) > 1:
            summary += f" (and {len(diagnostics) - 1} more)"
        super().__init__(summary)
