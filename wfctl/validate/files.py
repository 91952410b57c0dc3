"""Validate workflow files: load, JSON Schema, semantic checks; collect every problem."""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from wfctl.format.diagnostics import Diagnostic, WorkflowError

if TYPE_CHECKING:
    from wfctl.document.loader import LoadedDocument

WORKFLOW_SUFFIXES = (".yaml", ".yml")


@dataclass(frozen=True)
class FileResult:
    """The outcome of validating one file."""

    file: str
    diagnostics: tuple[Diagnostic, ...]

    @property
    def ok(self) -> bool:
        return not any(d.severity.value == "error" for d in self.diagnostics)


def _workflow_files(directory: Path) -> list[Path]:
    """*.yaml / *.yml below `directory`, sorted, skipping hidden files and directories."""
    found: list[Path] = []
    for root, dirs, names in os.walk(directory):
        # Hidden below the named directory only: `../x` or `~/.config/x` may be named.
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(
            Path(root) / name
            for name in names
            if name.endswith(WORKFLOW_SUFFIXES) and not name.startswith(".")
        )
    return sorted(found)


def expand_paths(paths: Iterable[str]) -> tuple[list[Path], list[Diagnostic]]:
    """Files named directly, plus every *.yaml / *.yml below named directories (sorted).

    A file named twice (directly, or through two directories) is listed once.
    """
    files: list[Path] = []
    problems: list[Diagnostic] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = _workflow_files(path)
            if not found:
                problems.append(
                    Diagnostic(
                        raw,
                        1,
                        1,
                        "no-files",
                        "no *.yaml or *.yml files in this directory",
                    )
                )
        elif path.exists():
            found = [path]
        else:
            problems.append(Diagnostic(raw, 1, 1, "not-found", "no such file or directory"))
            continue
        for file in found:
            key = Path(os.path.normpath(file))
            if key not in seen:
                seen.add(key)
                files.append(file)
    return files, problems


def check_document(doc: LoadedDocument) -> list[Diagnostic]:
    """Schema and semantic diagnostics of a loaded document, sorted by position."""
    from wfctl.validate.schema_messages import schema_diagnostics
    from wfctl.validate.semantic import semantic_diagnostics

    return sorted(set(schema_diagnostics(doc) + semantic_diagnostics(doc)))


def validate_file(path: Path, display: str | None = None) -> FileResult:
    """All diagnostics for one workflow file (loader errors stop further checks)."""
    from wfctl.document.loader import load_file

    name = display or str(path)
    try:
        doc = load_file(path, display_name=name)
    except WorkflowError as exc:
        return FileResult(name, tuple(sorted(exc.diagnostics)))
    except OSError as exc:
        return FileResult(
            name, (Diagnostic(name, 1, 1, "io-error", f"cannot read file: {exc.strerror}"),)
        )
    return FileResult(name, tuple(check_document(doc)))


def validate_paths(paths: Iterable[str]) -> list[FileResult]:
    """Validate every file named or found under the given paths."""
    files, problems = expand_paths(paths)
    results = [FileResult(p.file, (p,)) for p in problems]
    results.extend(validate_file(f) for f in files)
    return _regrouped(results)


def _regrouped(results: list[FileResult]) -> list[FileResult]:
    """Each problem once, under its own file when that file is listed too (a call's check
    reports the called file's problems, which that file's own check reports again)."""
    own = {os.path.realpath(r.file): i for i, r in enumerate(results)}
    found: list[set[Diagnostic]] = [set() for _ in results]
    for i, result in enumerate(results):
        for d in result.diagnostics:
            found[own.get(os.path.realpath(d.file), i)].add(d)
    return [FileResult(r.file, tuple(sorted(f))) for r, f in zip(results, found, strict=True)]
