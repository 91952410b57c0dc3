"""Files a command writes on request (`--report`, `--junit`, `--metrics-file`, ...): the
one way every output path is checked and written.

A regular file (or a new one) is replaced whole: the text goes to a temporary file in the
same directory, then `os.replace` puts it in place, so a reader never sees half a file.
A character device (`/dev/null`, a terminal) and the process's own streams
(`/dev/stdout`, `/dev/stderr`, `/dev/fd/N`) are written through, deliberately: renaming
over `/dev/null` would replace the device (PITFALLS.md). Anything else (a symbolic link,
a FIFO, a socket, a block device, a directory) is refused, naming the path: following a
link or blocking on a FIFO is never what an output option means.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Final

__all__ = ["OutputPathError", "output_problem", "write_output"]

# The process's own streams: symbolic links into /proc that mean "where my fd N goes".
_OWN_STREAM: Final = re.compile(r"/dev/(stdout|stderr|fd/\d+)|/proc/self/fd/\d+")

# What each refused kind of file is called in the error.
_REFUSED: Final[dict[int, str]] = {
    stat.S_IFLNK: "a symbolic link (output files are replaced, never written through a link)",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory; give a file name",
}


class OutputPathError(Exception):
    """An output path that cannot be written; the message names it."""


def _writes_through(path: Path, mode: int) -> bool:
    return stat.S_ISCHR(mode) or _OWN_STREAM.fullmatch(str(path)) is not None


def _parent_problem(path: Path) -> str | None:
    """Why a new file cannot be made at `path` (its nearest existing ancestor)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{path}: {parent} is not a directory"
    if not os.access(parent, os.W_OK):
        return f"{path}: cannot write in {parent}"
    return None


def output_problem(path: str | os.PathLike[str]) -> str | None:
    """Why `path` cannot take an output file (the message names it); None if it can."""
    target = Path(path)
    if _OWN_STREAM.fullmatch(str(target)):
        return None
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return _parent_problem(target)
    except OSError as exc:
        return f"{target}: {exc.strerror}"
    refused = _REFUSED.get(stat.S_IFMT(mode))
    if refused is not None:
        return f"{target} is {refused}"
    if stat.S_ISREG(mode):
        return _parent_problem(target)
    return None  # a character device: written through


def _umask_mode() -> int:
    """The mode a plain `open(path, "w")` would give a new file."""
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def _replace(path: Path, data: bytes) -> None:
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = _umask_mode()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)  # os.replace: atomic within the directory
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _through(path: Path, data: bytes) -> None:
    # Append mode: opening /dev/stdout with O_TRUNC would empty a file stdout points to.
    with path.open("ab") as fh:
        fh.write(data)


def write_output(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write `data` (text is UTF-8) to `path`: a regular file atomically, a character
    device or the process's own stream through; OutputPathError for anything else, or
    when the write fails (disk full, no permission), naming the path."""
    target = Path(path)
    problem = output_problem(target)
    if problem is not None:
        raise OutputPathError(problem)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    try:
        mode = target.stat().st_mode if target.exists() else stat.S_IFREG
        if _writes_through(target, mode):
            _through(target, raw)
        else:
            _replace(target, raw)
    except OSError as exc:
        raise OutputPathError(f"cannot write {target}: {exc.strerror or exc}") from None
