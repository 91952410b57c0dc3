"""YAML workflow files -> plain JSON data plus a source map from JSON paths to line:col.

The loader reads YAML with a YAML 1.2-core-like resolver and refuses anything that
would silently change meaning (duplicate keys, YAML 1.1 booleans/dates/octals, NaN)
or that could hurt us (alias bombs, deep nesting, huge files).

We do not use PyYAML's composer: we consume the parser's event stream and build the
data ourselves. Measured reasons: libyaml's Cython composer recurses in C and
segfaults on ~100k nested `[`, and libyaml's flow parser is quadratic in nesting depth
(50k levels: 6 s), so depth must be checked while the events stream in, before the
parser reaches the deep part. Events also let us count alias expansion before any
expanded data exists.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import pathlib
import re
import stat
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

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

from wfctl.format.diagnostics import Diagnostic, WorkflowError

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

Path_ = tuple[str | int, ...]

MAX_FILE_BYTES: Final = 8 * 1024 * 1024
MAX_DEPTH: Final = 64
MAX_ALIASES: Final = 1000
MAX_EXPANDED_NODES: Final = 200_000
# A file with thousands of `- yes` lines should not produce thousands of messages.
_MAX_DIAGNOSTICS: Final = 100

_TAG: Final = "tag:yaml.org,2002:"
_STR: Final = _TAG + "str"
_INT: Final = _TAG + "int"
_FLOAT: Final = _TAG + "float"
_BOOL: Final = _TAG + "bool"
_NULL: Final = _TAG + "null"
_SEQ: Final = _TAG + "seq"
_MAP: Final = _TAG + "map"

# YAML 1.2 core schema, minus .nan/.inf (JSON cannot hold them; reported instead).
_NULL_RE: Final = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE: Final = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT_RE: Final = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT_RE: Final = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")

# YAML 1.1 readings that differ from ours; reported so nobody is surprised.
# y/n are 1.1 booleans on paper, but PyYAML (and its safe_dump) treats them as strings.
_YAML11_BOOL_RE: Final = re.compile(r"^(?:yes|no|on|off)$", re.IGNORECASE)
_YAML11_TIMESTAMP_RE: Final = re.compile(
    r"""^(?:[0-9]{4}-[0-9]{2}-[0-9]{2}
    |[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}
     (?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]*)?
     (?:[ \t]*(?:Z|[-+][0-9]{1,2}(?::[0-9]{2})?))?)$""",
    re.VERBOSE,
)
_NON_FINITE_RE: Final = re.compile(r"^[-+]?\.(?:inf|nan)$", re.IGNORECASE)
_LEADING_ZERO_RE: Final = re.compile(r"^[-+]?0[0-9]+$")
# 1.1 ints/floats with `_` separators or 0b prefixes; sexagesimal (22:22) is left as a
# string on purpose (times of day are far more common than base-60 numbers).
_YAML11_NUMBER_RE: Final = re.compile(
    r"""^[-+]?(?:0b[0-1_]+
    |0x[0-9a-fA-F_]+
    |[0-9][0-9_]*(?:\.[0-9_]*)?(?:[eE][-+][0-9]+)?
    |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?)$""",
    re.VERBOSE,
)

# Characters YAML forbids (lone surrogates included: libyaml raises UnicodeEncodeError
# on them, and its ReaderError positions are byte offsets, so we check ourselves).
_FORBIDDEN_CHAR_RE: Final = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)
# The line breaks libyaml counts; our own positions must agree with its marks.
_LINE_BREAK_RE: Final = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
_TAB_IN_INDENT_RE: Final = re.compile("(?:^|(?<=[\r\n\x85\u2028\u2029]))[ ]*\t")
_INDENT_RE: Final = re.compile("(?:^|(?<=[\r\n\x85\u2028\u2029]))[ \t]+")
_IDENTIFIER_RE: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

_SYNTAX_HINTS: Final = (
    ("cannot start any token", "quote the value"),
    ("mapping values are not allowed", "quote values that contain ': ', or fix the indentation"),
    ("could not find expected ':'", "check the indentation and that each key ends with ': '"),
    ("did not find expected key", "check the indentation of this line"),
    ("did not find expected '-'", "check the indentation of this list item"),
    ("undefined alias", "define the anchor (&name) before using *name"),
)


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
    (_BOOL, _BOOL_RE, "tTfF"),
    (_NULL, _NULL_RE, ["~", "n", "N", ""]),
    (_INT, _INT_RE, "-+0123456789"),
    (_FLOAT, _FLOAT_RE, "-+.0123456789"),
):
    WorkflowYamlLoader.add_implicit_resolver(_tag, _regexp, list(_first))

_IMPLICIT: Final[dict[str, list[tuple[str, re.Pattern[str]]]]] = (
    WorkflowYamlLoader.yaml_implicit_resolvers
)


def _resolve_plain(value: str) -> str:
    for tag, regexp in _IMPLICIT.get(value[:1], ()):
        if regexp.match(value):
            return tag
    return _STR


# --------------------------------------------------------------------------- public API


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


@dataclass(frozen=True)
class LoadedDocument:
    """A parsed workflow file: its text, its data and where each value came from."""

    file: str
    text: str
    data: dict[str, Any]
    source_map: SourceMap


def load_text(text: str | bytes, file: str = "<string>") -> LoadedDocument:
    """Parse one YAML document into JSON-compatible data; raise WorkflowError if unusable."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise WorkflowError([_too_large(file, len(text))])
        text = _decode(text, file)
    else:
        # A str can hold up to 4 UTF-8 bytes per character: only measure when it matters.
        if len(text) * 4 > MAX_FILE_BYTES:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > MAX_FILE_BYTES:
                raise WorkflowError([_too_large(file, size)])
        if text.startswith("\ufeff"):
            text = text[1:]
    return _Builder(text, file).run()


def load_file(path: str | os.PathLike[str], display_name: str | None = None) -> LoadedDocument:
    """Read and parse a workflow file (size checked before reading); raise WorkflowError."""
    name = display_name if display_name is not None else os.fspath(path)
    file_path = pathlib.Path(path)
    try:
        info = file_path.stat()
        # A FIFO or device would block or never end; only regular files are workflows.
        if not stat.S_ISREG(info.st_mode):
            raise WorkflowError([_diag(name, 1, 1, "io-error", "not a regular file")])
        if info.st_size > MAX_FILE_BYTES:
            raise WorkflowError([_too_large(name, info.st_size)])
        with file_path.open("rb") as handle:
            # The file may have grown since stat: read at most one byte over the limit,
            # which load_text then rejects.
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise WorkflowError([_diag(name, 1, 1, "io-error", f"cannot read file: {reason}")]) from exc
    return load_text(data, name)


# ------------------------------------------------------------------------------ helpers


def _diag(
    file: str, line: int, col: int, code: str, message: str, path: str = "", hint: str | None = None
) -> Diagnostic:
    return Diagnostic(
        file=file, line=line, col=col, code=code, message=message, path=path, hint=hint
    )


def _too_large(file: str, size: int) -> Diagnostic:
    return _diag(
        file,
        1,
        1,
        "too-large",
        f"file is {size} bytes; the limit is {MAX_FILE_BYTES} bytes",
        hint="split the workflow or move large data out of it",
    )


class _LineIndex:
    """Maps character offsets to the 1-based line:col that libyaml's marks would give."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in _LINE_BREAK_RE.finditer(text)]

    def position(self, index: int) -> tuple[int, int]:
        line = bisect.bisect_right(self.starts, index) - 1
        return line + 1, index - self.starts[line] + 1


def _decode(data: bytes, file: str) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        line, col = _LineIndex(prefix).position(len(prefix))
        byte = data[exc.start]
        raise WorkflowError(
            [
                _diag(
                    file,
                    line,
                    col,
                    "encoding",
                    f"file is not valid UTF-8 (byte 0x{byte:02x})",
                    hint="save the file as UTF-8",
                )
            ]
        ) from None


def _multiline_scalar_spans(text: str) -> tuple[list[tuple[int, int]], int]:
    """(start, end) offsets of scalars spanning lines, and how far the parse got."""
    spans: list[tuple[int, int]] = []
    loader = WorkflowYamlLoader(text)
    get_event: Callable[[], Any] = loader.get_event
    depth = 0
    try:
        while (event := get_event()) is not None:
            kind = type(event)
            if kind is ScalarEvent:
                start, end = event.start_mark, event.end_mark
                if end.line != start.line:
                    spans.append((start.index, end.index))
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                depth += 1
                if depth > MAX_DEPTH:
                    return spans, event.start_mark.index
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                depth -= 1
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return spans, mark.index if mark is not None else 0
    except yaml.YAMLError:
        return spans, 0
    finally:
        loader.dispose()
    return spans, len(text)


def _inside(spans: list[tuple[int, int]], index: int) -> bool:
    """Whether `index` falls strictly inside one of `spans` (sorted, not overlapping)."""
    at = bisect.bisect_left(spans, (index,)) - 1
    return at >= 0 and spans[at][0] < index < spans[at][1]


def _copy(value: Any) -> Any:
    # Alias targets are copied, not shared, so a later in-place edit of one use (merging
    # defaults, say) cannot leak into the others. Depth is bounded by MAX_DEPTH.
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


# ------------------------------------------------------------------------------ builder


class _Fatal(Exception):
    """Stops the event loop; the diagnostics gathered so far are reported."""


@dataclass
class _Anchor:
    value: Any
    size: int
    height: int
    path: Path_
    # Range of this subtree's entries in _Builder.order, replayed under each alias.
    first: int
    last: int


class _Frame:
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


_ROOT, _KEY, _VALUE = 0, 1, 2
# Path element for nodes that are not reachable through a string key (complex keys).
_KEY_PLACEHOLDER: Final = "<key>"
# Stands for a scalar key already reported as non-string.
_BAD_KEY: Final = object()


class _Builder:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
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
        self.tabs = self._tab_candidates()
        self.spans: list[tuple[int, int]] = []
        # libyaml (unlike the pure-Python parser) rejects a block scalar whose first
        # line starts with spaces then a tab, unless it has an indentation indicator.
        self.block_scalar_tab = -1
        self._lines: _LineIndex | None = None

    # ---------------------------------------------------------------- entry point

    def run(self) -> LoadedDocument:
        self._check_characters()
        events = self._events()
        try:
            self._consume(events)
        except _Fatal:
            pass
        except yaml.MarkedYAMLError as exc:
            self._syntax_error(exc)
        except yaml.YAMLError as exc:
            self.diagnostics.append(_diag(self.file, 1, 1, "yaml-syntax", str(exc)))
            self.stop_index = 0
        finally:
            events.close()  # frees the parser now, not when the generator is collected
        self._report_tabs()
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
        return LoadedDocument(self.file, self.text, self.root, SourceMap(self.values, self.keys))

    def _events(self) -> Generator[Any, None, None]:
        loader = WorkflowYamlLoader(self.text)
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
        for event in events:
            kind = type(event)
            if kind is ScalarEvent:
                self._scalar(event)
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self._start(event, kind is MappingStartEvent)
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                self._end()
            elif kind is AliasEvent:
                self._alias(event)
            elif kind is DocumentStartEvent:
                self.documents += 1
                if self.documents > 1:
                    self._fatal(
                        event.start_mark,
                        "multiple-documents",
                        "file has more than one YAML document",
                        hint="keep one workflow per file; remove this `---`",
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
        self.diagnostics.append(_diag(self.file, line, col, code, message, format_path(path), hint))
        if len(self.diagnostics) >= _MAX_DIAGNOSTICS:
            self.stop_index = self.text_index(line, col)
            raise _Fatal

    def _fatal(
        self, mark: Any, code: str, message: str, path: Path_ = (), hint: str | None = None
    ) -> None:
        self.diagnostics.append(
            _diag(self.file, mark.line + 1, mark.column + 1, code, message, format_path(path), hint)
        )
        self.stop_index = mark.index
        raise _Fatal

    def text_index(self, line: int, col: int) -> int:
        return self.line_index().starts[line - 1] + col - 1

    def line_index(self) -> _LineIndex:
        if self._lines is None:
            self._lines = _LineIndex(self.text)
        return self._lines

    def _check_characters(self) -> None:
        match = _FORBIDDEN_CHAR_RE.search(self.text)
        if match is None:
            return
        line, col = self.line_index().position(match.start())
        code_point = ord(match.group())
        raise WorkflowError(
            [
                _diag(
                    self.file,
                    line,
                    col,
                    "encoding",
                    f"character U+{code_point:04X} is not allowed in YAML",
                    hint="remove it; control characters must be written as escapes "
                    'inside double quotes ("\\x07")',
                )
            ]
        )

    def _syntax_error(self, exc: yaml.MarkedYAMLError) -> None:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        self.stop_index = mark.index if mark is not None else 0
        problem = exc.problem or "invalid YAML"
        message = problem
        # "while scanning for the next token" adds nothing; "while parsing a flow
        # sequence started at line 3" tells where the unclosed thing began.
        if exc.context and "next token" not in exc.context:
            context = exc.context
            if exc.context_mark is not None and exc.context_mark is not mark:
                context += f" started at line {exc.context_mark.line + 1}"
            message = f"{problem} ({context})"
        if "maximum nesting depth" in problem:
            # libyaml >= 0.2.6 (PyYAML 6.0.4 wheels) stops at 1000 levels; its scanner can
            # run ahead of our MAX_DEPTH check in flow context, so it is the same error.
            message = f"nesting is deeper than {MAX_DEPTH} levels"
            self.diagnostics.append(_diag(self.file, line, col, "too-deep", message))
            return
        hint = next((h for needle, h in _SYNTAX_HINTS if needle in problem), None)
        if mark is not None and self.text[mark.index : mark.index + 1] == "\t":
            message = f"tab character is not allowed here ({message})"
            hint = "use spaces instead of tabs"
            if "block scalar" in (exc.context or ""):
                self.block_scalar_tab = mark.index
        self.diagnostics.append(_diag(self.file, line, col, "yaml-syntax", message, hint=hint))

    # ------------------------------------------------------------------- tabs

    def _tab_candidates(self) -> list[tuple[int, bool]]:
        """Offset of the first tab in each line's indentation; whether spaces precede it."""
        if "\t" not in self.text:
            return []
        return [
            (m.end() - 1, m.end() - 1 > m.start()) for m in _TAB_IN_INDENT_RE.finditer(self.text)
        ]

    def _report_tabs(self) -> None:
        if not self.tabs:
            return
        # Tabs inside block scalars and multi-line quoted/plain scalars are content
        # (think Makefile recipes or `<<-EOF` heredocs in a shell step).
        spans = self.spans
        guessed: list[tuple[int, int]] = []
        known_until = self.stop_index
        if self.tabs[-1][0] > known_until:
            # The parse stopped early, usually at the first tab. To report the other
            # tab-indented lines without flagging block-scalar content, find the scalars
            # in a copy whose indentation tabs are spaces (same length: offsets hold).
            untabbed = _INDENT_RE.sub(lambda m: " " * len(m.group()), self.text)
            guessed, known_until = _multiline_scalar_spans(untabbed)
            known_until = max(known_until, self.stop_index)
        reported: set[int] = set()
        for index, after_spaces in self.tabs:
            if index > known_until or _inside(spans, index):
                continue
            # Scalar content needs at least one space of indentation before any tab; a
            # line starting with a tab inside a guessed scalar is tab-indented itself.
            if after_spaces and _inside(guessed, index):
                continue
            if len(self.diagnostics) >= _MAX_DIAGNOSTICS:
                break
            line, col = self.line_index().position(index)
            reported.add(line)
            self.diagnostics.append(
                _diag(
                    self.file,
                    line,
                    col,
                    "tab-indent",
                    "tab character in indentation",
                    hint=(
                        "indent with spaces; if the tab is text of a block scalar, add an "
                        'indentation indicator ("|2" for two spaces)'
                        if after_spaces and index == self.block_scalar_tab
                        else "indent with spaces"
                    ),
                )
            )
        if not reported:
            return
        # The parser's complaint about the same tab says the same thing, less clearly.
        self.diagnostics = [
            d
            for d in self.diagnostics
            if not (d.code == "yaml-syntax" and (d.line in reported or "tab" in d.message))
        ]

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

    def _start(self, event: Any, is_map: bool) -> None:
        role, path = self._slot()
        mark = event.start_mark
        if role == _ROOT and not is_map:
            self._fatal(
                mark,
                "not-mapping",
                "top level is a list; a workflow must be a mapping",
                hint="write `key: value` pairs at the top level",
            )
        if len(self.stack) >= MAX_DEPTH:
            self._fatal(mark, "too-deep", f"nesting is deeper than {MAX_DEPTH} levels", path)
        tag = event.tag
        expected = _MAP if is_map else _SEQ
        if tag is not None and tag != "!" and tag != expected:
            self._add(
                mark.line + 1,
                mark.column + 1,
                "unsupported-tag",
                f"unsupported tag {_short_tag(tag)}",
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

    def _end(self) -> None:
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
        value = self._scalar_value(event, role, path, pos)
        if role == _KEY and not isinstance(value, str):
            self._add(
                *pos,
                "non-string-key",
                f"mapping key {event.value!r} is {_kind(value)}; keys must be strings",
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
                f"top level is {_kind(value)}; a workflow must be a mapping",
                hint="write `key: value` pairs at the top level",
            )
        if event.anchor is not None:
            self._define(event.anchor, mark, _Anchor(value, 1, 0, path, 0, 0))
        plain_merge = value == "<<" and not event.style and event.tag is None
        self._attach(value, 1, 0, path, pos, plain_merge)

    def _alias(self, event: Any) -> None:
        role, path = self._slot()
        mark = event.start_mark
        name = event.anchor
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
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            self._fatal(mark, "alias-limit", f"more than {MAX_ALIASES} aliases", path)
        self.expanded += anchor.size
        if self.expanded > MAX_EXPANDED_NODES:
            self._fatal(
                mark,
                "alias-limit",
                f"aliases expand to more than {MAX_EXPANDED_NODES} nodes",
                path,
                hint="this looks like an alias bomb; write the data out instead",
            )
        if len(self.stack) + anchor.height > MAX_DEPTH:
            self._fatal(
                mark,
                "too-deep",
                f"alias *{name} makes nesting deeper than {MAX_DEPTH} levels",
                path,
            )
        pos = (mark.line + 1, mark.column + 1)
        value = _copy(anchor.value)
        if role == _VALUE and anchor.last > anchor.first:
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
        self._attach(value, anchor.size, anchor.height, path, pos, False)

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
                f"mapping key is {_kind(key)}; keys must be strings",
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

    def _scalar_value(self, event: Any, role: int, path: Path_, pos: tuple[int, int]) -> Any:
        value: str = event.value
        tag = event.tag
        if tag is None and not event.style:
            tag = _resolve_plain(value)
            if tag == _STR:
                if role == _VALUE:
                    self._check_yaml11(value, path, pos)
                return value
            return self._construct(tag, value, path, pos, implicit=True, role=role)
        if tag is None or tag == "!" or tag == _STR:
            return value
        if tag in (_NULL, _BOOL, _INT, _FLOAT):
            resolved = _resolve_plain(value)
            if resolved == tag or (tag == _FLOAT and resolved == _INT):
                return self._construct(tag, value, path, pos, implicit=False, role=role)
        self._add(
            *pos,
            "unsupported-tag",
            f"unsupported tag {_short_tag(tag)} on value {value!r}",
            path,
            hint="remove the tag, or quote the value to make it a string",
        )
        return value

    def _construct(
        self, tag: str, value: str, path: Path_, pos: tuple[int, int], *, implicit: bool, role: int
    ) -> Any:
        if tag == _NULL:
            return None
        if tag == _BOOL:
            return value[0] in "tT"
        if tag == _INT:
            prefix = value[:2]
            try:
                if prefix == "0x":
                    return int(value[2:], 16)
                if prefix == "0o":
                    if implicit and role == _VALUE:
                        # A YAML 1.1 reader (PyYAML included) sees the string "0o17".
                        self._add(
                            *pos,
                            "yaml-ambiguous-number",
                            f"unquoted {value!r} is a string in YAML 1.1 but a number here",
                            path,
                            hint=f'write {int(value[2:], 8)} for a number, or quote it ("{value}")',
                        )
                    return int(value[2:], 8)
                number = int(value)
            except ValueError:
                # Python refuses to convert decimal strings over 4300 digits.
                self._add(
                    *pos,
                    "number-too-large",
                    f"integer with {len(value)} digits is too large",
                    path,
                    hint="quote it to keep it as a string",
                )
                return value
            if implicit and role == _VALUE and _LEADING_ZERO_RE.match(value):
                self._report_octal(value, number, path, pos)
            return number
        real = float(value)
        if math.isfinite(real) and implicit and role == _VALUE and "." not in value:
            # `1e3`: a float in YAML 1.2, a string for PyYAML and other YAML 1.1 readers.
            self._add(
                *pos,
                "yaml-ambiguous-number",
                f"unquoted {value!r} is a string in YAML 1.1 but a number here",
                path,
                hint=f"write {value.lower().replace('e', '.0e', 1)} for a number, "
                f'or quote it ("{value}") for a string',
            )
        if not math.isfinite(real):
            self._add(
                *pos,
                "yaml-non-finite",
                f"{value!r} overflows to infinity, and JSON has no NaN/Infinity",
                path,
                hint="use a smaller number, or quote it to keep it as a string",
            )
            return value
        return real

    def _check_yaml11(self, value: str, path: Path_, pos: tuple[int, int]) -> None:
        first = value[:1]
        if first in ("y", "Y", "n", "N", "o", "O"):
            if 2 <= len(value) <= 3 and _YAML11_BOOL_RE.match(value):
                self._add(
                    *pos,
                    "yaml-ambiguous-bool",
                    f"unquoted {value!r} is a boolean in YAML 1.1 but a string here",
                    path,
                    hint=f'quote it ("{value}") or write true/false',
                )
        elif first.isdigit():
            if _YAML11_TIMESTAMP_RE.match(value):
                self._add(
                    *pos,
                    "yaml-timestamp",
                    f"unquoted {value!r} is a date/time in YAML 1.1 but a string here",
                    path,
                    hint=f'quote it ("{value}")',
                )
            elif ("_" in value or "0b" in value) and _YAML11_NUMBER_RE.match(value):
                self._report_number(value, path, pos)
        elif first in (".", "+", "-"):
            if _NON_FINITE_RE.match(value):
                self._add(
                    *pos,
                    "yaml-non-finite",
                    f"unquoted {value!r} is NaN/Infinity in YAML 1.1, and JSON has no NaN/Infinity",
                    path,
                    hint=f'quote it ("{value}") to keep it as a string, or use a number',
                )
            elif ("_" in value or "0b" in value) and _YAML11_NUMBER_RE.match(value):
                self._report_number(value, path, pos)

    def _report_number(self, value: str, path: Path_, pos: tuple[int, int]) -> None:
        self._add(
            *pos,
            "yaml-ambiguous-number",
            f"unquoted {value!r} is a number in YAML 1.1 but a string here",
            path,
            hint=f'quote it ("{value}"), or write the number without `_` or `0b`',
        )

    def _report_octal(self, value: str, decimal: int, path: Path_, pos: tuple[int, int]) -> None:
        digits = value.lstrip("+-")
        if set(digits) <= set("01234567"):
            octal = int(value, 8)
            if octal == decimal:
                return
            reading = f"octal ({octal})"
        else:
            reading = "a string"
        self._add(
            *pos,
            "yaml-ambiguous-octal",
            f"unquoted {value!r} is {reading} in YAML 1.1 but decimal {decimal} here",
            path,
            hint=f'quote it ("{value}"), or write 0o{digits.lstrip("0")} for octal or '
            f"{decimal} for decimal",
        )
