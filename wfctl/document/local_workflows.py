"""The workflows a file defines under `workflows:`, each seen as a document of its own
(its data the entry's body, its positions those in the file), run by `uses: "#name"`.

Seeing one as a document lets the model build it and the semantic rules check it like a
workflow file, with every problem at the file's own line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wfctl.document.loader import LoadedDocument
from wfctl.document.sourcemap import Path_, SourceMap, format_path

__all__ = [
    "LocalWorkflow",
    "home_of",
    "in_file",
    "is_local",
    "local_body",
    "local_names",
    "local_workflow",
    "prefix_of",
]


@dataclass(frozen=True)
class LocalWorkflow(LoadedDocument):
    """An entry of a file's `workflows:` as a document; `home` is the file's document."""

    home: LoadedDocument
    name: str


def is_local(uses: str) -> bool:
    """Whether a `uses:` names a workflow of the same file (`#name`), not a file."""
    return uses.startswith("#")


def home_of(doc: LoadedDocument) -> LoadedDocument:
    """The document of the file `doc` is written in (`doc` itself for a file)."""
    return doc.home if isinstance(doc, LocalWorkflow) else doc


def _defined(doc: LoadedDocument) -> dict[str, Any]:
    defined = home_of(doc).data.get("workflows")
    return defined if isinstance(defined, dict) else {}


def local_names(doc: LoadedDocument) -> list[str]:
    """The names of the workflows `doc`'s file defines, in file order."""
    return [name for name, body in _defined(doc).items() if isinstance(body, dict)]


def prefix_of(doc: LoadedDocument) -> Path_:
    """Where `doc`'s data is in its file: () for a file, ("workflows", name) else."""
    return ("workflows", doc.name) if isinstance(doc, LocalWorkflow) else ()


def local_body(doc: LoadedDocument, name: str) -> dict[str, Any] | None:
    """The data of the workflow `name` of `doc`'s file's `workflows:`, or None."""
    body = _defined(doc).get(name)
    return body if isinstance(body, dict) else None


def local_workflow(doc: LoadedDocument, name: str) -> LocalWorkflow | None:
    """The workflow `name` of `doc`'s file's `workflows:` as a document, or None."""
    body = local_body(doc, name)
    if body is None:
        return None
    home = home_of(doc)
    sub = _sub_map(home.source_map, ("workflows", name))
    return LocalWorkflow(home.file, home.text, body, sub, home, name)


def _sub_map(source_map: SourceMap, prefix: Path_) -> SourceMap:
    n = len(prefix)

    def below(positions: Any) -> dict[Path_, tuple[int, int]]:
        return {path[n:]: pos for path, pos in positions.items() if path[:n] == prefix}

    return SourceMap(below(source_map.values), below(source_map.keys))


def in_file(doc: LoadedDocument, path: str) -> str:
    """A path of `doc`'s data (as printed) written as a path of its file."""
    prefix = format_path(prefix_of(doc))
    if not prefix or not path:
        return prefix or path
    return f"{prefix}{path}" if path.startswith("[") else f"{prefix}.{path}"
