"""A shell step's output: each stream decoded, split into lines, capped, shown live."""

from __future__ import annotations

import codecs
import json
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

from wfctl.secrets import Masker

__all__ = ["MAX_LINE_CHARS", "OUTPUT_CAP_CHARS", "Capture", "parse_json"]

log = logging.getLogger("wfctl.actions.shell")

#: Characters kept per stream (the tail).
OUTPUT_CAP_CHARS = 10 * 1024 * 1024
#: A "line" longer than this is passed on in pieces (live view and cap accounting).
MAX_LINE_CHARS = 1024 * 1024


class Capture:
    """Collects one stream: decodes incrementally, splits lines, keeps the tail, and
    reports each masked line to the live view."""

    def __init__(self, masker: Masker, on_line: Callable[[str], None] | None) -> None:
        self._masker = masker
        self._on_line = on_line
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._lines: deque[str] = deque()
        self._size = 0
        self.dropped = 0

    def feed(self, data: bytes) -> None:
        """Take the next chunk of the stream."""
        text = self._partial + self._decoder.decode(data)
        *complete, self._partial = text.split("\n")
        for line in complete:
            self._emit(line + "\n")
        while len(self._partial) > MAX_LINE_CHARS:
            self._emit(self._partial[:MAX_LINE_CHARS])
            self._partial = self._partial[MAX_LINE_CHARS:]

    def finish(self) -> None:
        """The stream ended: pass on what is left of the last line."""
        rest = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        if rest:
            self._emit(rest)

    def _emit(self, line: str) -> None:
        self._lines.append(line)
        self._size += len(line)
        while self._size > OUTPUT_CAP_CHARS and len(self._lines) > 1:
            old = self._lines.popleft()
            self._size -= len(old)
            self.dropped += len(old)
        if self._on_line is not None:
            try:
                self._on_line(self._masker.mask(line.removesuffix("\n").removesuffix("\r")))
            except Exception:
                log.exception("the output callback failed; live output disabled for this step")
                self._on_line = None

    def last_line(self) -> str:
        """The last non-blank line kept, stripped (for the error message)."""
        for line in reversed(self._lines):
            if line.strip():
                return line.strip()
        return ""

    def text(self) -> str:
        """Everything kept, with a marker line first if the head was dropped."""
        body = "".join(self._lines)
        if self.dropped:
            body = f"[wfctl: output truncated, first {self.dropped} characters dropped]\n" + body
        return body


def _reject_constant(name: str) -> Any:  # NaN, Infinity: not JSON
    raise ValueError(name)


def parse_json(stdout: str) -> Any:
    """stdout as strict JSON, or None when it is not JSON (cheap first-character test)."""
    text = stdout.removesuffix("\n").strip()
    if not text or text[0] not in '{["-0123456789tfn':
        return None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        return None
