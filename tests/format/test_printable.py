"""Text from a workflow is printed with its control characters escaped (issue 15)."""

from __future__ import annotations

from wfctl.format.printable import printable


def test_plain_text_is_returned_as_is() -> None:
    text = "build ✔ déjà vu"
    assert printable(text) is text


def test_escape_sequences_and_bidi_overrides_are_escaped() -> None:
    assert printable("\x1b[2K\r1 file valid") == "\\x1b[2K\\x0d1 file valid"
    assert printable("a\u202eb\x9bc\x7f") == "a\\u202eb\\x9bc\\x7f"


def test_lines_keeps_newlines_and_tabs_only() -> None:
    assert printable("a\n\tb\x1b", lines=True) == "a\n\tb\\x1b"
    assert printable("a\nb") == "a\\x0ab"
