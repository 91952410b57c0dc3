"""Which tag a plain scalar gets: a YAML 1.2-core-like resolver set on PyYAML's loader.

NaN and infinity are left out on purpose (JSON cannot hold them; they are reported).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import yaml

__all__ = [
    "BOOL",
    "FLOAT",
    "INT",
    "MAP",
    "NULL",
    "SEQ",
    "STR",
    "WorkflowYamlLoader",
    "resolve_plain",
    "short_tag",
]

_TAG: Final = "tag:yaml.org,2002:"
STR: Final = _TAG + "str"
INT: Final = _TAG + "int"
FLOAT: Final = _TAG + "float"
BOOL: Final = _TAG + "bool"
NULL: Final = _TAG + "null"
SEQ: Final = _TAG + "seq"
MAP: Final = _TAG + "map"

_NULL_RE: Final = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE: Final = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE: Final = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE: Final = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")


def _pick_loader_base() -> type[yaml.SafeLoader]:
    base: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return base


if TYPE_CHECKING:
    _LoaderBase = yaml.SafeLoader
else:
    _LoaderBase = _pick_loader_base()


class WorkflowYamlLoader(_LoaderBase):
    """PyYAML loader (libyaml when available) with the YAML 1.2-core-like resolvers."""

    yaml_implicit_resolvers: dict[Any, Any] = {}


for _tag, _regexp, _first in (
    (BOOL, _BOOL_RE, "tTfF"),
    (NULL, _NULL_RE, ["~", "n", "N", ""]),
    (INT, _INT_RE, "-+0123456789"),
    (FLOAT, _FLOAT_RE, "-+.0123456789"),
):
    WorkflowYamlLoader.add_implicit_resolver(_tag, _regexp, list(_first))

_IMPLICIT: Final[dict[str, list[tuple[str, re.Pattern[str]]]]] = (
    WorkflowYamlLoader.yaml_implicit_resolvers
)


def resolve_plain(value: str) -> str:
    """The tag of an untagged plain scalar."""
    for tag, regexp in _IMPLICIT.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return STR


def short_tag(tag: str) -> str:
    """`!!int` for the standard tags, the tag itself otherwise."""
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag
