"""The `shell` action's `with:` arguments, checked once into a :class:`ShellArgs`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wfctl.actions.base import ActionError

__all__ = ["SHELL", "ShellArgs", "invalid", "parse_shell_args"]

SHELL = "/bin/sh"
_DEFAULT_OK = frozenset({0})


def invalid(message: str) -> ActionError:
    """A non-retryable `validation` error about the shell step's arguments."""
    return ActionError(f"shell: {message}", kind="validation", retryable=False)


@dataclass(frozen=True, slots=True)
class ShellArgs:
    """What to run and how: the argv (``/bin/sh -c`` for a string), the environment
    overrides (``None`` removes a variable), the directory, stdin and the accepted codes."""

    argv: tuple[str, ...]
    is_shell: bool
    env: Mapping[str, str | None]
    cwd: Path
    stdin: bytes | None
    ok_exit_codes: frozenset[int]


def parse_shell_args(args: Mapping[str, Any], workdir: Path) -> ShellArgs:
    """Check the rendered `with:` map; raise a `validation` ActionError on the first
    problem."""
    argv, is_shell = _command(args.get("command"))
    return ShellArgs(
        argv=argv,
        is_shell=is_shell,
        env=_env(args.get("env")),
        cwd=_cwd(args.get("cwd"), workdir),
        stdin=_stdin(args.get("stdin")),
        ok_exit_codes=_ok_exit_codes(args.get("ok_exit_codes")),
    )


def _no_nul(text: str, what: str) -> str:
    if "\0" in text:
        raise invalid(f"{what} contains a NUL character")
    return text


def _command(command: Any) -> tuple[tuple[str, ...], bool]:
    match command:
        case str():
            if not command.strip():
                raise invalid("`command` is empty")
            return (SHELL, "-c", _no_nul(command, "command")), True
        case list() | tuple():
            if not command:
                raise invalid("`command` is an empty list")
            argv = tuple([_argv_item(v) for v in command])
            if not argv[0]:
                raise invalid("`command` starts with an empty program name")
            return argv, False
        case _:
            raise invalid(f"`command` must be a string or a list, got {type(command).__name__}")


def _argv_item(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(f"command list items must be strings, got {value!r}")
    return _no_nul(str(value), "command")


def _env(raw: Any) -> dict[str, str | None]:
    raw = raw or {}
    if not isinstance(raw, Mapping):
        raise invalid("`env` must be a map")
    return {_env_name(key): _env_value(key, value) for key, value in raw.items()}


def _env_name(key: Any) -> str:
    if not isinstance(key, str) or not key or "=" in key or "\0" in key:
        raise invalid(f"invalid environment variable name {key!r}")
    return key


def _env_value(key: str, value: Any) -> str | None:
    match value:
        case None:
            return None
        case bool():
            return "true" if value else "false"
        case str() | int() | float():
            return _no_nul(str(value), f"env {key!r}")
        case _:
            raise invalid(
                f"env {key!r} must be a string, number or boolean, got {type(value).__name__}"
            )


def _cwd(raw: Any, workdir: Path) -> Path:
    if raw is None or raw == "":
        return workdir
    if not isinstance(raw, str):
        raise invalid("`cwd` must be a string")
    return workdir / raw


def _stdin(raw: Any) -> bytes | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise invalid("`stdin` must be a string")
    return raw.encode("utf-8")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _ok_exit_codes(raw: Any) -> frozenset[int]:
    if raw is None:
        return _DEFAULT_OK
    codes = [raw] if _is_int(raw) else raw
    if not isinstance(codes, list | tuple) or not all(_is_int(c) for c in codes):
        raise invalid("`ok_exit_codes` must be a list of integers")
    return frozenset(codes)
