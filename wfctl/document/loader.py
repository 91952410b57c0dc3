"""YAML workflow files -> plain JSON data plus a source map from JSON paths to line:col.

The loader reads YAML with a YAML 1.2-core-like resolver and refuses anything that
would silently change meaning (duplicate keys, YAML 1.1 booleans/dates/octals, NaN)
or that could hurt us (alias bombs, deep nesting, huge files).

This module is the public face; the work is done by the private modules beside it:
`_text` (encoding, forbidden characters), `_builder` (parser events -> data and source
map), `_resolver` and `_scalars` (what a scalar means), `_limits` (size, depth, aliases),
`_syntax` and `_tabs` (syntax errors worded for people).
"""

from __future__ import annotations

import os
import pathlib
import stat
from dataclasses import dataclass
from typing import Any

from wfctl.document._builder import Builder
from wfctl.document._errors import diag
from wfctl.document._limits import (
    MAX_ALIASES,
    MAX_DEPTH,
    MAX_EXPANDED_NODES,
    MAX_FILE_BYTES,
    oversized,
    too_large,
)
from wfctl.document._resolver import WorkflowYamlLoader
from wfctl.document._text import decode
from wfctl.document.sourcemap import Path_, SourceMap, format_path
from wfctl.format.diagnostics import WorkflowError

__all__ = [
    "MAX_ALIASES",
    "MAX_DEPTH",
    "MAX_EXPANDED_NODES",
    "MAX_FILE_BYTES",
    "LoadedDocument",
    "Path_",
    "SourceMap",
    "WorkflowYamlLoader",
    "format_path",
    "load_file",
    "load_text",
]


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed workflow file: its text, its data and where each value came from."""

    file: str
    text: str
    data: dict[str, Any]
    source_map: SourceMap


def load_text(text: str | bytes, file: str = "<string>") -> LoadedDocument:
    """Parse one YAML document into JSON-compatible data; raise WorkflowError if unusable."""
    too_big = oversized(text, file)
    if too_big is not None:
        raise WorkflowError([too_big])
    if isinstance(text, bytes):
        text = decode(text, file)
    elif text.startswith("\ufeff"):
        text = text[1:]
    # The loader class is looked up here, at call time, so it can be swapped (the tests
    # run the pure-Python parser through the same code).
    data, source_map = Builder(text, file, WorkflowYamlLoader).run()
    return LoadedDocument(file, text, data, source_map)


def load_file(path: str | os.PathLike[str], display_name: str | None = None) -> LoadedDocument:
    """Read and parse a workflow file (size checked before reading); raise WorkflowError."""
    name = display_name if display_name is not None else os.fspath(path)
    file_path = pathlib.Path(path)
    try:
        info = file_path.stat()
        # A FIFO or device would block or never end; only regular files are workflows.
        if not stat.S_ISREG(info.st_mode):
            raise WorkflowError([diag(name, 1, 1, "io-error", "not a regular file")])
        if info.st_size > MAX_FILE_BYTES:
            raise WorkflowError([too_large(name, info.st_size)])
        with file_path.open("rb") as handle:
            # The file may have grown since stat: read at most one byte over the limit,
            # which load_text then rejects.
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WorkflowError([diag(name, 1, 1, "io-error", f"cannot read file: {reason}")]) from exc
    return load_text(data, name)
