"""`--journal-output-limit SIZE` (`WFCTL_JOURNAL_OUTPUT_LIMIT`) of `run` and `resume`: how
much of each step attempt's output lines the journal keeps (the tail)."""

from __future__ import annotations

import re
from typing import Annotated, Final

import typer

__all__ = ["JournalOutputLimitOption", "parse_size"]

# Decimal and binary units, case-insensitive (`1MiB`, `512k`, `2 MB`). Pydantic's ByteSize
# parses the same, but importing it costs ~180 ms of start-up for one option.
_UNITS: Final = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "m": 10**6,
    "mb": 10**6,
    "g": 10**9,
    "gb": 10**9,
    "ki": 2**10,
    "kib": 2**10,
    "mi": 2**20,
    "mib": 2**20,
    "gi": 2**30,
    "gib": 2**30,
}
_SIZE: Final = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*", re.IGNORECASE)
_MAX: Final = 2**40  # beyond what a state file should ever hold per attempt


def parse_size(text: str) -> int:
    """Bytes from `1048576`, `1MiB`, `512k`, `2 MB`; a typer.BadParameter otherwise."""
    match = _SIZE.fullmatch(text)
    unit = _UNITS.get(match.group(2).lower()) if match else None
    if match is None or unit is None:
        raise typer.BadParameter(
            f"{text!r} is not a size (bytes, or a number with a unit: 512k, 1MiB, 2MB)"
        )
    size = float(match.group(1)) * unit
    if not size <= _MAX:  # (inf too: a number of 400 digits)
        raise typer.BadParameter(f"{text!r} is more than 1 TiB")
    return int(size)


JournalOutputLimitOption = Annotated[
    int | None,
    typer.Option(
        "--journal-output-limit",
        metavar="SIZE",
        envvar="WFCTL_JOURNAL_OUTPUT_LIMIT",
        parser=parse_size,
        help="Keep at most SIZE of each step attempt's output lines in the journal, the "
        "last ones (512k, 1MiB; 0: none); the live view still shows every line [1MiB].",
    ),
]
