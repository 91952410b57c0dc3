"""Strict undefined values that still chain, so `x.y is defined` works on a missing `x`."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from jinja2.runtime import StrictUndefined
from jinja2.utils import missing, object_type_repr

__all__ = ["ChainedUndefined", "suggest"]


class ChainedUndefined(StrictUndefined):
    """StrictUndefined that chains through further attribute access.

    ``inputs.opt.sub is defined`` and ``inputs.opt.sub | default(1)`` then work when
    ``inputs.opt`` is missing, while every other use (truth test, comparison, arithmetic,
    printing) still raises, naming the first missing part.
    """

    __slots__ = ()

    def __getattr__(self, name: str) -> Any:
        # Keep Python's protocol probing (copy, pickle, ...) working, like Undefined does.
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return self

    def __getitem__(self, *args: Any, **kwargs: Any) -> Any:
        return self

    @property
    def _undefined_message(self) -> str:
        hint = self._undefined_hint
        if hint:
            return hint
        obj, name = self._undefined_obj, self._undefined_name
        if obj is missing:
            return f"{name!r} is undefined"
        what = object_type_repr(obj)
        if isinstance(obj, Mapping) and isinstance(name, str):
            return f"{what} has no attribute {name!r}{suggest(name, obj.keys())}"
        if isinstance(obj, (list, tuple, str)) and isinstance(name, int):
            return f"{what} has no item {name!r} (length {len(obj)})"
        if isinstance(name, str):
            return f"{what} has no attribute {name!r}"
        return f"{what} has no item {name!r}"


def suggest(name: str, candidates: Iterable[Any]) -> str:
    """'; did you mean ...' or the available keys, for an undefined-name message."""
    keys = sorted(str(k) for k in candidates)
    if not keys:
        return " (it is empty)"
    import difflib  # only on the error path

    close = difflib.get_close_matches(name, keys, n=1)
    if close:
        return f"; did you mean {close[0]!r}?"
    shown = ", ".join(keys[:10]) + (", ..." if len(keys) > 10 else "")
    return f" (available: {shown})"
