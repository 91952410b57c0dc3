"""Defaults read from the schema: `schemas/workflow.schema.json` is their one source."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from types import MappingProxyType
from typing import Any

from wfctl.format import schema

__all__ = ["defaults"]


@cache
def defaults(definition: str | None = None) -> Mapping[str, Any]:
    """`default` of each property of `$defs/<definition>` (None: the top-level object)."""
    node = schema.node("" if definition is None else f"/$defs/{definition}")
    return MappingProxyType(
        {
            name: prop["default"]
            for name, prop in node.get("properties", {}).items()
            if isinstance(prop, Mapping) and "default" in prop
        }
    )
