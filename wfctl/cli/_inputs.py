"""Run inputs from the command line: `--inputs-file`, then `-i KEY=VALUE` (later ones win)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wfctl.document._limits import MAX_FILE_BYTES
from wfctl.model.inputs import InputError, parse_assignment, resolve_inputs


def _read_text(path: Path) -> str:
    # Read at most one byte past the limit: `--inputs-file /dev/zero` must not run forever.
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError(f"cannot read inputs file {path}: {exc.strerror}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError(f"inputs file {path} is larger than the limit of {MAX_FILE_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"inputs file {path} is not UTF-8 text (byte {exc.start})") from None


def _parse_json(text: str, path: Path) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise InputError(f"inputs file {path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise InputError(f"inputs file {path} is nested too deeply") from None
    if not isinstance(data, dict):
        raise InputError(f"inputs file {path} must hold a mapping of names to values")
    return data


def _parse_yaml(text: str, path: Path) -> dict[str, Any]:
    # The same strict loader as workflows: no duplicate keys, no YAML 1.1 surprises.
    from wfctl.document.loader import load_text
    from wfctl.format.diagnostics import WorkflowError
    from wfctl.validate.output import diagnostic_line

    if not text.strip():
        return {}
    try:
        data: dict[str, Any] = load_text(text, str(path)).data
    except WorkflowError as exc:
        raise InputError(
            "bad inputs file: " + "; ".join(diagnostic_line(d) for d in exc.diagnostics)
        ) from None
    return data


def read_inputs_file(name: str) -> dict[str, Any]:
    """The mapping in a JSON (by its suffix) or YAML inputs file."""
    path = Path(name)
    text = _read_text(path)
    return _parse_json(text, path) if path.suffix == ".json" else _parse_yaml(text, path)


def read_inputs(inputs_file: str | None, assignments: tuple[str, ...]) -> dict[str, Any]:
    """Inputs from --inputs-file then -i KEY=VALUE (later ones win)."""
    values: dict[str, Any] = read_inputs_file(inputs_file) if inputs_file else {}
    for assignment in assignments:
        key, value = parse_assignment(assignment)
        values[key] = value
    return values


# JSON value type -> the JSON Schema type names it satisfies.
_JSON_TYPES: dict[type, frozenset[str]] = {
    type(None): frozenset({"null"}),
    bool: frozenset({"boolean"}),
    int: frozenset({"integer", "number"}),
    float: frozenset({"number"}),
    str: frozenset({"string"}),
    list: frozenset({"array"}),
    dict: frozenset({"object"}),
}


def _declared_types(schema: Any) -> frozenset[str]:
    types = schema.get("type") if isinstance(schema, Mapping) else None
    if isinstance(types, str):
        return frozenset({types})
    if isinstance(types, list):
        return frozenset(t for t in types if isinstance(t, str))
    return frozenset()


def coerce_cli_strings(
    declared: Mapping[str, Any], assignments: tuple[str, ...], values: dict[str, Any]
) -> None:
    """`-i tag=123` for a string input means the text "123", not the number.

    Also for an input typed `[string, "null"]` (issue 12): the JSON reading of the value
    is kept only when the input accepts its type (`-i x=null` is null, `-i x=1` is "1").
    """
    for assignment in assignments:
        key, _, raw = assignment.partition("=")
        name = key.strip()
        types = _declared_types(declared.get(name))
        if "string" not in types:
            continue
        parsed = values.get(name)
        if types == {"string"} or not _JSON_TYPES.get(type(parsed), frozenset()) & types:
            values[name] = raw


def run_inputs(
    declared: Mapping[str, Any],
    inputs_file: str | None,
    assignments: tuple[str, ...],
    base: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """`base` (a resumed run's inputs), overridden by the command line, resolved and checked."""
    given = dict(base or {})
    given.update(read_inputs(inputs_file, assignments))
    coerce_cli_strings(declared, assignments, given)
    return resolve_inputs(declared, given)
