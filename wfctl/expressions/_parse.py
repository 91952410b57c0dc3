"""Parsing sources into checked-for-syntax Jinja trees (shared by compiling and analysis)."""

from __future__ import annotations

from typing import Any

from jinja2 import nodes
from jinja2.exceptions import TemplateSyntaxError
from jinja2.parser import Parser

from wfctl.expressions._environment import SandboxEnvironment
from wfctl.expressions._errors import ExpressionError
from wfctl.expressions._limits import MAX_SOURCE_LENGTH

__all__ = ["check_source", "parse_bare", "parse_template", "single_expression", "syntax_error"]


def syntax_error(exc: TemplateSyntaxError, source: str, *, bare: bool) -> ExpressionError:
    """A Jinja syntax error as an ExpressionError, in the words of expressions if `bare`."""
    message = exc.message or "invalid syntax"
    if bare:
        # Jinja's wording is about templates and print statements.
        message = message.replace("end of print statement", "end of expression").replace(
            "end of template", "end of expression"
        )
    return ExpressionError(
        f"syntax error: {message}", expression=source, kind="syntax", lineno=exc.lineno
    )


def check_source(source: Any) -> str:
    """`source` itself, once it is known to be a string of acceptable length."""
    if not isinstance(source, str):
        raise ExpressionError(
            f"an expression must be a string, not {type(source).__name__}",
            expression=repr(source),
            kind="syntax",
        )
    if len(source) > MAX_SOURCE_LENGTH:
        raise ExpressionError(
            f"expression is longer than {MAX_SOURCE_LENGTH:,} characters",
            expression=source[:200],
            kind="limit",
        )
    return source


def parse_template(env: SandboxEnvironment, source: str) -> nodes.Template:
    """The tree of a template string."""
    try:
        return Parser(env, source).parse()
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, source, bare=False) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "template is nested too deeply", expression=source, kind="limit"
        ) from None


def single_expression(tree: nodes.Template) -> nodes.Expr | None:
    """The expression of a template that is exactly one ``{{ expr }}``, else None."""
    if len(tree.body) == 1 and isinstance(tree.body[0], nodes.Output):
        parts = tree.body[0].nodes
        if len(parts) == 1 and not isinstance(parts[0], nodes.TemplateData):
            return parts[0]
    return None


def parse_bare(env: SandboxEnvironment, source: str) -> nodes.Expr:
    """The tree of a bare expression; a lone ``{{ expr }}`` around it is accepted."""
    stripped = source.strip()
    if stripped.startswith("{{") and stripped.endswith("}}"):
        # `if: "{{ x > 1 }}"` is a common habit: accept a lone {{ }} around a condition.
        try:
            single = single_expression(Parser(env, stripped).parse())
        except Exception:
            single = None
        if single is not None:
            return single
    parser = Parser(env, source, state="variable")
    try:
        expr = parser.parse_expression()
        if not parser.stream.eos:
            token = parser.stream.current
            raise TemplateSyntaxError(
                f"unexpected {token.value!r} after the expression",
                token.lineno,
            )
    except TemplateSyntaxError as exc:
        raise syntax_error(exc, source, bare=True) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(
            "expression is nested too deeply", expression=source, kind="limit"
        ) from None
    return expr
