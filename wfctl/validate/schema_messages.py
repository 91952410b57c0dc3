"""JSON Schema validation of a loaded workflow, with messages that read like a human wrote them.

Three stages: a compiled yes/no check first (`_fast_check`: most files are valid, and
jsonschema is slow), then jsonschema's errors for the files it rejects, each explained in
the author's terms by one function per keyword (`_explain`), then positions.

Errors that are mere consequences of another one are dropped: a value of the wrong type
also "fails" every keyword that assumes the right type (an `if`/`then` on a step that is a
string, say), and a misspelt required key is also a missing one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from wfctl.format.diagnostics import Diagnostic
from wfctl.validate._explain import Explainer, Problem, leaf_errors
from wfctl.validate._fast_check import compile_schema_check, fast_is_valid
from wfctl.validate._words import describe_value, did_you_mean

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument, Path_

__all__ = [
    "compile_schema_check",
    "describe_value",
    "did_you_mean",
    "fast_is_valid",
    "schema_diagnostics",
]


def _schema_errors(data: Any) -> list[Any]:
    from wfctl.format.schema import validator_for

    errors: list[Any] = []
    for top in validator_for().iter_errors(data):
        errors.extend(leaf_errors(top))
    return errors


def schema_diagnostics(doc: LoadedDocument) -> list[Diagnostic]:
    """Validate `doc.data` against the workflow schema; one Diagnostic per problem."""
    if fast_is_valid(doc.data):
        return []
    errors = _schema_errors(doc.data)
    if not errors:
        return []
    return _diagnostics(doc, _without_absorbed(_explained(doc, errors)))


def _explained(doc: LoadedDocument, errors: list[Any]) -> list[Problem]:
    from wfctl.format.schema import load_schema

    # A value of the wrong type "fails" every keyword that expects the right type too
    # (a step written as a string fails each `if`/`then`/`not` clause): keep the type error.
    wrong_type = {tuple(e.absolute_path) for e in errors if e.validator == "type"}
    explainer = Explainer(doc, load_schema())
    problems: list[Problem] = []
    for error in errors:
        path = tuple(error.absolute_path)
        if error.validator == "type" or not any(
            path[:n] in wrong_type for n in range(len(path) + 1)
        ):
            problems.extend(explainer.explain(error))
    return problems


def _without_absorbed(problems: list[Problem]) -> list[Problem]:
    """A misspelt required key is reported once, as an unknown key with a hint."""
    suggested = {
        (p.path[:-1], p.hint) for p in problems if p.message.startswith("unknown key ") and p.hint
    }
    return [
        p
        for p in problems
        if p.missing is None or (p.path, f"did you mean '{p.missing}'?") not in suggested
    ]


def _diagnostics(doc: LoadedDocument, problems: list[Problem]) -> list[Diagnostic]:
    from wfctl.document.loader import format_path

    seen: set[tuple[Path_, str]] = set()
    out: list[Diagnostic] = []
    for problem in problems:
        dedup = (problem.path, problem.message)
        if dedup in seen:
            continue
        seen.add(dedup)
        line, col = _position(doc, problem)
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


def _position(doc: LoadedDocument, problem: Problem) -> tuple[int, int]:
    sm = doc.source_map
    if problem.at_key or _value_at(doc.data, problem.path) is None:
        return sm.key_pos(problem.path)
    return sm.value_pos(problem.path)


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
