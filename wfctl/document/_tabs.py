"""Tabs in indentation: one `tab-indent` diagnostic per line, scalar content left alone.

Tabs inside block scalars and multi-line quoted/plain scalars are content (think Makefile
recipes or `<<-EOF` heredocs in a shell step), so only tabs outside the scalars the parse
saw (or, past where it stopped, would see) are reported.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final

import yaml
from yaml.events import (
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
)

from wfctl.document._errors import diag
from wfctl.document._limits import MAX_DEPTH, MAX_DIAGNOSTICS
from wfctl.format.diagnostics import Diagnostic

__all__ = ["TabContext", "multiline_scalar_spans", "tab_candidates", "with_tab_diagnostics"]

Span = tuple[int, int]

_TAB_IN_INDENT_RE: Final = re.compile("(?:^|(?<=[\r\n\x85\u2028\u2029]))[ ]*\t")
_INDENT_RE: Final = re.compile("(?:^|(?<=[\r\n\x85\u2028\u2029]))[ \t]+")
_PLAIN_HINT: Final = "indent with spaces"
_BLOCK_SCALAR_HINT: Final = (
    "indent with spaces; if the tab is text of a block scalar, add an "
    'indentation indicator ("|2" for two spaces)'
)


def tab_candidates(text: str) -> list[tuple[int, bool]]:
    """Offset of the first tab in each line's indentation; whether spaces precede it."""
    if "\t" not in text:
        return []
    return [(m.end() - 1, m.end() - 1 > m.start()) for m in _TAB_IN_INDENT_RE.finditer(text)]


@dataclass(frozen=True)
class TabContext:
    """What the builder learnt that decides which tabs are indentation."""

    text: str
    file: str
    tabs: list[tuple[int, bool]]  # tab_candidates(text)
    spans: list[Span]  # multi-line scalars the parse saw, in order
    stop_index: int  # how far the parse got
    # libyaml (unlike the pure-Python parser) rejects a block scalar whose first line
    # starts with spaces then a tab, unless it has an indentation indicator.
    block_scalar_tab: int
    position: Callable[[int], tuple[int, int]]
    loader: Callable[[str], Any]  # the YAML loader class


def with_tab_diagnostics(ctx: TabContext, found: list[Diagnostic]) -> list[Diagnostic]:
    """`found` plus a diagnostic per tab-indented line, without the parser's own (less
    clear) complaints about the same tabs."""
    if not ctx.tabs:
        return found
    out = list(found)
    reported: set[int] = set()
    for index, after_spaces in _indentation_tabs(ctx):
        if len(out) >= MAX_DIAGNOSTICS:
            break
        line, col = ctx.position(index)
        reported.add(line)
        hint = _BLOCK_SCALAR_HINT if after_spaces and index == ctx.block_scalar_tab else _PLAIN_HINT
        out.append(
            diag(ctx.file, line, col, "tab-indent", "tab character in indentation", hint=hint)
        )
    if not reported:
        return out
    return [d for d in out if not _parser_tab_error(d, reported)]


def _indentation_tabs(ctx: TabContext) -> Iterator[tuple[int, bool]]:
    """The candidate tabs that are indentation, not scalar content."""
    guessed, known_until = _guessed_spans(ctx)
    for index, after_spaces in ctx.tabs:
        if index > known_until or _inside(ctx.spans, index):
            continue
        # Scalar content needs at least one space of indentation before any tab; a
        # line starting with a tab inside a guessed scalar is tab-indented itself.
        if after_spaces and _inside(guessed, index):
            continue
        yield index, after_spaces


def _parser_tab_error(d: Diagnostic, reported: set[int]) -> bool:
    return d.code == "yaml-syntax" and (d.line in reported or "tab" in d.message)


def _guessed_spans(ctx: TabContext) -> tuple[list[Span], int]:
    """Multi-line scalars past where the parse stopped, and how far that is known."""
    if ctx.tabs[-1][0] <= ctx.stop_index:
        return [], ctx.stop_index
    # The parse stopped early, usually at the first tab. To report the other tab-indented
    # lines without flagging block-scalar content, find the scalars in a copy whose
    # indentation tabs are spaces (same length: offsets hold).
    untabbed = _INDENT_RE.sub(lambda m: " " * len(m.group()), ctx.text)
    guessed, known_until = multiline_scalar_spans(untabbed, ctx.loader)
    return guessed, max(known_until, ctx.stop_index)


def multiline_scalar_spans(text: str, loader_class: Callable[[str], Any]) -> tuple[list[Span], int]:
    """(start, end) offsets of scalars spanning lines, and how far the parse got."""
    spans: list[Span] = []
    loader = loader_class(text)
    get_event: Callable[[], Any] = loader.get_event
    try:
        return spans, _collect_spans(get_event, spans, len(text))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return spans, mark.index if mark is not None else 0
    except yaml.YAMLError:
        return spans, 0
    finally:
        loader.dispose()


_OPEN: Final = (MappingStartEvent, SequenceStartEvent)
_CLOSE: Final = (MappingEndEvent, SequenceEndEvent)


def _collect_spans(get_event: Callable[[], Any], spans: list[Span], end_index: int) -> int:
    """Append multi-line scalar spans; return where the walk stopped (MAX_DEPTH too)."""
    depth = 0
    while (event := get_event()) is not None:
        kind = type(event)
        if kind is ScalarEvent:
            start, end = event.start_mark, event.end_mark
            if end.line != start.line:
                spans.append((start.index, end.index))
        elif kind in _OPEN:
            depth += 1
            if depth > MAX_DEPTH:
                return int(event.start_mark.index)
        elif kind in _CLOSE:
            depth -= 1
    return end_index


def _inside(spans: list[Span], index: int) -> bool:
    """Whether `index` falls strictly inside one of `spans` (sorted, not overlapping)."""
    at = bisect.bisect_left(spans, (index,)) - 1
    return at >= 0 and spans[at][0] < index < spans[at][1]
