"""The event builder: PyYAML's parser events -> plain data and a source map.

We do not use PyYAML's composer. Measured reasons: libyaml's Cython composer recurses in
C and segfaults on ~100k nested `[`, and libyaml's flow parser is quadratic in nesting
depth (50k levels: 6 s), so depth must be checked while the events stream in, before the
parser reaches the deep part. Events also let us count alias expansion before any
expanded data exists.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from wfctl.document._errors import Fatal, describe, diag
from wfctl.document._limits import MAX_DEPTH, MAX_DIAGNOSTICS, alias_problem
from wfctl.document._resolver import MAP, SEQ, short_tag
from wfctl.document._scalars import scalar_value
from wfctl.document._syntax import syntax_problem
from wfctl.document._tabs import TabContext, tab_candidates, with_tab_diagnostics
from wfctl.document._text import LineIndex, forbidden_character
from wfctl.document.sourcemap import Path_, SourceMap, format_path
from wfctl.format.diagnostics import Diagnostic, WorkflowError

__all__ = ["Builder"]

_ROOT, _KEY, _VALUE = 0, 1, 2
# Path element for nodes that are not reachable through a string key (complex keys).
_KEY_PLACEHOLDER: Final = "<key>"
# Stands for a scalar key already reported as non-string.
_BAD_KEY: Final = object()
_TOP_LEVEL_HINT: Final = "write `key: value` pairs at the top level"


@dataclass
class _Anchor:
    value: Any
    size: int
    height: int
    path: Path_
    # Range of this subtree's entries in Builder.order, replayed under each alias.
    first: int
    last: int


class _Frame:
    """A mapping or sequence being built."""

    __slots__ = (
        "anchor",
        "first",
        "height",
        "index",
        "is_map",
        "key",
        "key_ok",
        "path",
        "seen",
        "size",
        "value",
        "want_key",
    )

    def __init__(
        self, value: Any, path: Path_, is_map: bool, anchor: str | None, first: int
    ) -> None:
        self.value = value
        self.path = path
        self.is_map = is_map
        self.anchor = anchor
        self.first = first
        self.index = 0
        self.want_key = True
        self.key: str = ""
        self.key_ok = False
        self.seen: dict[str, int] = {}
        self.size = 1
        self.height = 1


def _copy(value: Any) -> Any:
    # Alias targets are copied, not shared, so a later in-place edit of one use (merging
    # defaults, say) cannot leak into the others. Depth is bounded by MAX_DEPTH.
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


class Builder:
    """Builds one document from `text`; `loader` is the PyYAML loader class to parse with."""

    def __init__(self, text: str, file: str, loader: Callable[[str], Any]) -> None:
        self.text = text
        self.file = file
        self.loader = loader
        self.diagnostics: list[Diagnostic] = []
        self.values: dict[Path_, tuple[int, int]] = {}
        self.keys: dict[Path_, tuple[int, int]] = {}
        # Value paths in document order, so an anchored subtree is a contiguous slice.
        self.order: list[Path_] = []
        self.anchors: dict[str, _Anchor | None] = {}
        self.stack: list[_Frame] = []
        self.root: dict[str, Any] | None = None
        self.documents = 0
        self.aliases = 0
        self.expanded = 0
        self.stop_index = len(text)
        self.tabs = tab_candidates(text)
        self.spans: list[tuple[int, int]] = []
        self.block_scalar_tab = -1
        self._lines: LineIndex | None = None

    # ---------------------------------------------------------------- entry point

    def run(self) -> tuple[dict[str, Any], SourceMap]:
        """The document's data and source map; raise WorkflowError with every problem."""
        bad_char = forbidden_character(self.text, self.file)
        if bad_char is not None:
            raise WorkflowError([bad_char])
        self._parse()
        if self.tabs:
            self.diagnostics = with_tab_diagnostics(self._tab_context(), self.diagnostics)
        if not self.diagnostics and self.root is None:
            self._add(
                1,
                1,
                "empty",
                "file has no content; expected a workflow mapping",
                hint="start with `workflow_id: ...`",
            )
        if self.diagnostics:
            raise WorkflowError(sorted(self.diagnostics, key=lambda d: (d.line, d.col)))
        assert self.root is not None
        return self.root, SourceMap(self.values, self.keys)

    def _parse(self) -> None:
        events = self._events()
        try:
            self._consume(events)
        except Fatal:
            pass
        except yaml.MarkedYAMLError as exc:
            problem = syntax_problem(exc, self.text, self.file)
            self.diagnostics.append(problem.diagnostic)
            self.stop_index = problem.stop_index
            if problem.block_scalar_tab >= 0:
                self.block_scalar_tab = problem.block_scalar_tab
        except yaml.YAMLError as exc:
            self.diagnostics.append(diag(self.file, 1, 1, "yaml-syntax", str(exc)))
            self.stop_index = 0
        finally:
            events.close()  # frees the parser now, not when the generator is collected

    def _events(self) -> Generator[Any, None, None]:
        loader = self.loader(self.text)
        # The stubs leave get_event untyped; events are plain objects read by attribute.
        get_event: Callable[[], Any] = loader.get_event
        try:
            while True:
                event = get_event()
                if event is None:
                    return
                yield event
        finally:
            loader.dispose()

    def _consume(self, events: Iterator[Any]) -> None:
        # Built per document and never stored on self: bound methods kept in an attribute
        # would make a reference cycle, leaving every finished Builder (and the data it
        # holds) to the cyclic garbage collector.
        handlers: dict[type, Callable[[Any], None]] = {
            ScalarEvent: self._scalar,
            MappingStartEvent: self._start,
            SequenceStartEvent: self._start,
            MappingEndEvent: self._end,
            SequenceEndEvent: self._end,
            AliasEvent: self._alias,
            DocumentStartEvent: self._document,
        }
        for event in events:
            handler = handlers.get(type(event))
            if handler is not None:
                handler(event)

    def _document(self, event: Any) -> None:
        self.documents += 1
        if self.documents > 1:
            self._fatal(
                event.start_mark,
                "multiple-documents",
                "file has more than one YAML document",
                hint="keep one workflow per file; remove this `---`",
            )

    def _tab_context(self) -> TabContext:
        return TabContext(
            text=self.text,
            file=self.file,
            tabs=self.tabs,
            spans=self.spans,
            stop_index=self.stop_index,
            block_scalar_tab=self.block_scalar_tab,
            position=lambda index: self.line_index().position(index),
            loader=self.loader,
        )

    # ---------------------------------------------------------------- diagnostics

    def _add(
        self,
        line: int,
        col: int,
        code: str,
        message: str,
        path: Path_ = (),
        hint: str | None = None,
    ) -> None:
        self.diagnostics.append(diag(self.file, line, col, code, message, format_path(path), hint))
        if len(self.diagnostics) >= MAX_DIAGNOSTICS:
            self.stop_index = self.line_index().index(line, col)
            raise Fatal

    def _fatal(
        self, mark: Any, code: str, message: str, path: Path_ = (), hint: str | None = None
    ) -> None:
        self.diagnostics.append(
            diag(self.file, mark.line + 1, mark.column + 1, code, message, format_path(path), hint)
        )
        self.stop_index = mark.index
        raise Fatal

    def line_index(self) -> LineIndex:
        """Offsets -> positions, built on first use (most files never need it)."""
        if self._lines is None:
            self._lines = LineIndex(self.text)
        return self._lines

    # ------------------------------------------------------------------ nodes

    def _slot(self) -> tuple[int, Path_]:
        """Role and JSON path of the node about to start."""
        if not self.stack:
            return _ROOT, ()
        top = self.stack[-1]
        if not top.is_map:
            return _VALUE, (*top.path, top.index)
        if top.want_key:
            return _KEY, (*top.path, _KEY_PLACEHOLDER)
        return _VALUE, (*top.path, top.key)

    def _start(self, event: Any) -> None:
        is_map = type(event) is MappingStartEvent
        role, path = self._slot()
        mark = event.start_mark
        if role == _ROOT and not is_map:
            self._fatal(
                mark,
                "not-mapping",
                "top level is a list; a workflow must be a mapping",
                hint=_TOP_LEVEL_HINT,
            )
        if len(self.stack) >= MAX_DEPTH:
            self._fatal(mark, "too-deep", f"nesting is deeper than {MAX_DEPTH} levels", path)
        tag = event.tag
        if tag is not None and tag != "!" and tag != (MAP if is_map else SEQ):
            self._add(
                mark.line + 1,
                mark.column + 1,
                "unsupported-tag",
                f"unsupported tag {short_tag(tag)}",
                path,
                hint="remove the tag",
            )
        anchor = event.anchor
        if anchor is not None:
            self._define(anchor, mark, None)
        first = len(self.order)
        self.values[path] = (mark.line + 1, mark.column + 1)
        self.order.append(path)
        self.stack.append(_Frame({} if is_map else [], path, is_map, anchor, first))

    def _end(self, event: Any) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = _Anchor(
                frame.value, frame.size, frame.height, frame.path, frame.first, len(self.order)
            )
        if self.stack:
            self._attach(frame.value, frame.size, frame.height, frame.path, None, False)
        else:
            self.root = frame.value

    def _scalar(self, event: Any) -> None:
        role, path = self._slot()
        mark = event.start_mark
        pos = (mark.line + 1, mark.column + 1)
        if self.tabs and event.end_mark.line != mark.line:
            self.spans.append((mark.index, event.end_mark.index))
        value = scalar_value(event, role == _VALUE, path, pos, self._add)
        if type(value) is str:
            # One object per text: keys, actions and the ids in dependencies repeat once
            # per step (34 MB of a 100k-step load), and equal ids then match by identity.
            value = sys.intern(value)
        if role == _KEY and not isinstance(value, str):
            self._add(
                *pos,
                "non-string-key",
                f"mapping key {event.value!r} is {describe(value)}; keys must be strings",
                path[:-1],
                hint=f'quote it ("{event.value}")',
            )
            value = _BAD_KEY
        elif role == _ROOT:
            if value is None:
                return  # an empty document; reported as `empty` once we know there is no other
            self._fatal(
                mark,
                "not-mapping",
                f"top level is {describe(value)}; a workflow must be a mapping",
                hint=_TOP_LEVEL_HINT,
            )
        if event.anchor is not None:
            self._define(event.anchor, mark, _Anchor(value, 1, 0, path, 0, 0))
        plain_merge = value == "<<" and not event.style and event.tag is None
        self._attach(value, 1, 0, path, pos, plain_merge)

    def _alias(self, event: Any) -> None:
        role, path = self._slot()
        mark = event.start_mark
        anchor = self._target(event.anchor, mark, path)
        self.aliases += 1
        self.expanded += anchor.size
        depth = len(self.stack) + anchor.height
        problem = alias_problem(event.anchor, self.aliases, self.expanded, depth)
        if problem is not None:
            code, message, hint = problem
            self._fatal(mark, code, message, path, hint)
        if role == _VALUE and anchor.last > anchor.first:
            self._replay_positions(anchor, path)
        pos = (mark.line + 1, mark.column + 1)
        self._attach(_copy(anchor.value), anchor.size, anchor.height, path, pos, False)

    def _target(self, name: str, mark: Any, path: Path_) -> _Anchor:
        """The finished node an alias names (undefined and recursive aliases are fatal)."""
        if name not in self.anchors:
            self._fatal(
                mark,
                "yaml-syntax",
                f"found undefined alias {name!r}",
                path,
                hint="define the anchor (&name) before using *name",
            )
        anchor = self.anchors[name]
        if anchor is None:
            self._fatal(
                mark,
                "alias-limit",
                f"alias *{name} refers to a node that contains it",
                path,
                hint="recursive structures cannot be represented in JSON",
            )
        assert anchor is not None
        return anchor

    def _replay_positions(self, anchor: _Anchor, path: Path_) -> None:
        # The alias root points at the alias; deeper paths at where they are written.
        values, keys, order = self.values, self.keys, self.order
        cut = len(anchor.path)
        for old in order[anchor.first + 1 : anchor.last]:
            new = path + old[cut:]
            values[new] = values[old]
            key = keys.get(old)
            if key is not None:
                keys[new] = key
            order.append(new)

    def _define(self, name: str, mark: Any, anchor: _Anchor | None) -> None:
        if name in self.anchors:
            # PyYAML rejects this too; YAML would let the second silently shadow the first.
            self._fatal(
                mark,
                "yaml-syntax",
                f"duplicate anchor &{name}",
                hint="give each anchor a unique name",
            )
        self.anchors[name] = anchor

    def _attach(
        self,
        value: Any,
        size: int,
        height: int,
        path: Path_,
        pos: tuple[int, int] | None,
        plain_merge: bool,
    ) -> None:
        """Put a finished node into its parent; `pos` is None when already recorded."""
        top = self.stack[-1]
        if height >= top.height:
            top.height = height + 1
        top.size += size
        if not top.is_map:
            if pos is not None:
                self.values[path] = pos
                self.order.append(path)
            top.value.append(value)
            top.index += 1
        elif top.want_key:
            self._key(top, value, pos, plain_merge)
            top.want_key = False
        else:
            if top.key_ok:
                if pos is not None:
                    self.values[path] = pos
                    self.order.append(path)
                top.value[top.key] = value
            top.want_key = True

    def _key(self, top: _Frame, key: Any, pos: tuple[int, int] | None, plain_merge: bool) -> None:
        top.key_ok = False
        if key is _BAD_KEY:
            top.key = _KEY_PLACEHOLDER
            return
        if pos is None:
            # A collection as key: its position is the value position recorded at its start.
            pos = self.values.get((*top.path, _KEY_PLACEHOLDER), (1, 1))
        line, col = pos
        if not isinstance(key, str):
            self._add(
                line,
                col,
                "non-string-key",
                f"mapping key is {describe(key)}; keys must be strings",
                top.path,
                hint="use a string key",
            )
            top.key = _KEY_PLACEHOLDER
            return
        top.key = key
        if plain_merge:
            self._add(
                line,
                col,
                "merge-key-unsupported",
                "merge keys (<<) are not supported",
                top.path,
                hint="write the keys out, or quote it ('<<') for a literal key",
            )
            return
        first = top.seen.get(key)
        if first is not None:
            self._add(
                line,
                col,
                "duplicate-key",
                f"duplicate key {key!r} (first defined at line {first})",
                (*top.path, key),
                hint="remove one of them",
            )
            return
        top.seen[key] = line
        top.key_ok = True
        self.keys[(*top.path, key)] = pos
