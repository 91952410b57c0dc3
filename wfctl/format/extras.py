"""How to add an optional extra, said the way this installation was made (pip, pipx, uv)."""

from __future__ import annotations

import sys
from pathlib import PurePath

__all__ = ["install_hint"]


def _installer(prefix: str) -> str:
    """pipx and uv tool environments live under their own folders; anything else is pip."""
    parts = PurePath(prefix).parts
    for i, part in enumerate(parts[:-1]):
        if part == "pipx" and parts[i + 1] == "venvs":
            return "pipx"
        if part == "uv" and parts[i + 1] == "tools":
            return "uv"
    return "pip"


_COMMANDS = {
    "pip": "pip install 'wfctl[{extra}]'",
    "pipx": "pipx install --force 'wfctl[{extra}]'",
    "uv": "uv tool install --force 'wfctl[{extra}]'",
}


def install_hint(extra: str, prefix: str | None = None) -> str:
    """The command that adds `extra` to the wfctl that is running (or the one at `prefix`)."""
    return _COMMANDS[_installer(prefix or sys.prefix)].format(extra=extra)
