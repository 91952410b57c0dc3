"""PyYAML's syntax errors, reworded: where the unclosed thing began, a hint, tabs named."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import yaml

from wfctl.document._errors import diag
from wfctl.document._limits import MAX_DEPTH
from wfctl.format.diagnostics import Diagnostic

__all__ = ["SyntaxProblem", "syntax_problem"]

_SYNTAX_HINTS: Final = (
    ("cannot start any token", "quote the value"),
    ("mapping values are not allowed", "quote values that contain ': ', or fix the indentation"),
    ("could not find expected ':'", "check the indentation and that each key ends with ': '"),
    ("did not find expected key", "check the indentation of this line"),
    ("did not find expected '-'", "check the indentation of this list item"),
    ("undefined alias", "define the anchor (&name) before using *name"),
)


@dataclass(frozen=True)
class SyntaxProblem:
    """The diagnostic, where the parse stopped, and the offset of a tab that began a
    block scalar (-1 if none)."""

    diagnostic: Diagnostic
    stop_index: int
    block_scalar_tab: int = -1


def syntax_problem(exc: yaml.MarkedYAMLError, text: str, file: str) -> SyntaxProblem:
    """Turn a parser error into one diagnostic."""
    mark = exc.problem_mark or exc.context_mark
    line, col, stop = _where(mark)
    problem = exc.problem or "invalid YAML"
    if "maximum nesting depth" in problem:
        # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) stops at 1000 levels; its scanner can
        # run ahead of our MAX_DEPTH check in flow context, so it is the same error.
        message = f"nesting is deeper than {MAX_DEPTH} levels"
        return SyntaxProblem(diag(file, line, col, "too-deep", message), stop)
    message = _with_context(exc, problem, mark)
    if mark is not None and text[stop : stop + 1] == "\t":
        tab = stop if "block scalar" in (exc.context or "") else -1
        return SyntaxProblem(_tab_diagnostic(file, line, col, message), stop, tab)
    hint = next((h for needle, h in _SYNTAX_HINTS if needle in problem), None)
    return SyntaxProblem(diag(file, line, col, "yaml-syntax", message, hint=hint), stop)


def _where(mark: yaml.Mark | None) -> tuple[int, int, int]:
    """1-based line and column, and the offset, of a parser mark."""
    return (1, 1, 0) if mark is None else (mark.line + 1, mark.column + 1, mark.index)


def _tab_diagnostic(file: str, line: int, col: int, message: str) -> Diagnostic:
    message = f"tab character is not allowed here ({message})"
    return diag(file, line, col, "yaml-syntax", message, hint="use spaces instead of tabs")


def _with_context(exc: yaml.MarkedYAMLError, problem: str, mark: yaml.Mark | None) -> str:
    # "while scanning for the next token" adds nothing; "while parsing a flow
    # sequence started at line 3" tells where the unclosed thing began.
    if not exc.context or "next token" in exc.context:
        return problem
    context = exc.context
    if exc.context_mark is not None and exc.context_mark is not mark:
        context += f" started at line {exc.context_mark.line + 1}"
    return f"{problem} ({context})"
