"""JSON paths and the source map: where in the file each value and mapping key was written."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["Path_", "SourceMap", "format_path"]

#: A JSON path as jsonschema reports it: mapping keys and list indexes from the root.
Path_ = tuple[str | int, ...]

_IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def format_path(path: Path_) -> str:
    """Render a JSON path the way users read it: `steps[3].with["my key"]`."""
    parts: list[str] = []
    for item in path:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif _IDENTIFIER_RE.match(item):
            parts.append(f".{item}" if parts else item)
        else:
            parts.append(f"[{json.dumps(item, ensure_ascii=False)}]")
    return "".join(parts)


@dataclass(frozen=True)
class SourceMap:
    """1-based (line, col) of every value, and of every mapping key, by JSON path."""

    values: Mapping[Path_, tuple[int, int]]
    keys: Mapping[Path_, tuple[int, int]]

    def value_pos(self, path: Path_) -> tuple[int, int]:
        """Position of the value at `path`, else of its nearest recorded ancestor."""
        values = self.values
        path = tuple(path)
        for end in range(len(path), -1, -1):
            pos = values.get(path[:end])
            if pos is not None:
                return pos
        return (1, 1)

    def key_pos(self, path: Path_) -> tuple[int, int]:
        """Position of the mapping key whose value is at `path`, else `value_pos(path)`."""
        pos = self.keys.get(tuple(path))
        return pos if pos is not None else self.value_pos(path)

    def has(self, path: Path_) -> bool:
        """Whether `path` names a value in the document."""
        return tuple(path) in self.values
