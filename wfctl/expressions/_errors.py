"""The one exception expressions raise, and the internal signal for a resource limit."""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["ExpressionError", "ExpressionKind", "LimitExceeded", "unexpected_compile_error"]

ExpressionKind = Literal["syntax", "undefined", "type", "limit", "security"]


class ExpressionError(Exception):
    """An expression failed to compile or to evaluate.

    ``message`` is one human-readable line (never a traceback), ``expression`` the source
    text, ``kind`` one of ``syntax``, ``undefined``, ``type``, ``limit``, ``security``.
    ``lineno`` is the line inside the source when known (multi-line templates), ``path``
    the position inside a ``with:`` structure for :class:`CompiledValue` errors.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str,
        kind: ExpressionKind,
        lineno: int | None = None,
        path: tuple[str | int, ...] = (),
    ) -> None:
        super().__init__(message)
        self.message = message
        self.expression = expression
        self.kind: ExpressionKind = kind
        self.lineno = lineno
        self.path = path

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"ExpressionError(kind={self.kind!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only arguments break the default exception pickling (process pools,
        # copy.copy); rebuild from the attributes instead.
        return (_rebuild_error, (self.message, self.expression, self.kind, self.lineno, self.path))

    def with_path(self, path: tuple[str | int, ...]) -> ExpressionError:
        return ExpressionError(
            self.message,
            expression=self.expression,
            kind=self.kind,
            lineno=self.lineno,
            path=path,
        )


def _rebuild_error(
    message: str,
    expression: str,
    kind: ExpressionKind,
    lineno: int | None,
    path: tuple[str | int, ...],
) -> ExpressionError:
    return ExpressionError(message, expression=expression, kind=kind, lineno=lineno, path=path)


class LimitExceeded(Exception):
    """Raised inside evaluation when a resource limit is hit (becomes kind="limit")."""


def unexpected_compile_error(exc: Exception, source: str) -> ExpressionError:
    """What the parser or code generator raised unforeseen, as a syntax ExpressionError."""
    detail = " ".join(str(exc).split()) or type(exc).__name__
    return ExpressionError(f"cannot compile: {detail}", expression=source, kind="syntax")
