"""Checks on the raw text before it is parsed: encoding, forbidden characters, positions."""

from __future__ import annotations

import bisect
import re
from typing import Final

from wfctl.document._errors import diag
from wfctl.format.diagnostics import Diagnostic, WorkflowError

__all__ = ["LineIndex", "decode", "forbidden_character"]

# The line breaks libyaml counts; our own positions must agree with its marks.
LINE_BREAK_RE: Final = re.compile("\r\n|[\r\n\x85\u2028\u2029]")
# Characters YAML forbids (lone surrogates included: libyaml raises UnicodeEncodeError
# on them, and its ReaderError positions are byte offsets, so we check ourselves).
_FORBIDDEN_CHAR_RE: Final = re.compile(
    "[^\t\n\r\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


class LineIndex:
    """Maps character offsets to the 1-based line:col that libyaml's marks would give."""

    def __init__(self, text: str) -> None:
        self.starts = [0] + [m.end() for m in LINE_BREAK_RE.finditer(text)]

    def position(self, index: int) -> tuple[int, int]:
        """1-based (line, col) of the character at `index`."""
        line = bisect.bisect_right(self.starts, index) - 1
        return line + 1, index - self.starts[line] + 1

    def index(self, line: int, col: int) -> int:
        """Character offset of a 1-based (line, col)."""
        return self.starts[line - 1] + col - 1


def decode(data: bytes, file: str) -> str:
    """UTF-8 text without its byte-order mark; raise WorkflowError if it is not UTF-8."""
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        line, col = LineIndex(prefix).position(len(prefix))
        byte = data[exc.start]
        raise WorkflowError(
            [
                diag(
                    file,
                    line,
                    col,
                    "encoding",
                    f"file is not valid UTF-8 (byte 0x{byte:02x})",
                    hint="save the file as UTF-8",
                )
            ]
        ) from None


def forbidden_character(text: str, file: str) -> Diagnostic | None:
    """The diagnostic for the first character YAML does not allow, if any."""
    match = _FORBIDDEN_CHAR_RE.search(text)
    if match is None:
        return None
    line, col = LineIndex(text).position(match.start())
    return diag(
        file,
        line,
        col,
        "encoding",
        f"character U+{ord(match.group()):04X} is not allowed in YAML",
        hint="remove it; control characters must be written as escapes "
        'inside double quotes ("\\x07")',
    )
