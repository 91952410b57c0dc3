"""Every diagnostic code a stage may emit, with its meaning: the one registry.

`Diagnostic` refuses a code that is not listed here, so no stage can invent a loose
string; docs/FORMAT.md's table of codes is generated from this list
(`python -m wfctl.format.docs`). Codes are stable: scripts match on them
(`wfctl validate --format json`), so rename one only with a note in the changelog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = ["CODES", "CODE_NAMES", "Code", "Stage", "is_registered"]


class Stage(StrEnum):
    """The part of `wfctl validate` that finds a problem."""

    FILES = "files"  # finding the workflow files (wfctl/validate/files.py)
    DOCUMENT = "document"  # reading YAML (wfctl/document/)
    SCHEMA = "schema"  # the JSON Schema (wfctl/validate/schema_messages.py)
    SEMANTIC = "semantic"  # ids, graph, expressions, agents (wfctl/validate/semantic.py)


@dataclass(frozen=True)
class Code:
    """A diagnostic code: its name, the stages that emit it, and what it means."""

    name: str
    stages: tuple[Stage, ...]
    meaning: str


_F, _D, _SC, _SE = Stage.FILES, Stage.DOCUMENT, Stage.SCHEMA, Stage.SEMANTIC

_ENTRIES: Final[tuple[tuple[str, tuple[Stage, ...], str], ...]] = (
    # -- finding and reading files
    ("not-found", (_F,), "A path given on the command line does not exist."),
    ("no-files", (_F,), "A directory given on the command line holds no *.yaml or *.yml file."),
    ("io-error", (_D, _F), "The file cannot be read, or is not a regular file (FIFO, device)."),
    ("too-large", (_D,), "The file is over the size limit (8 MiB)."),
    ("encoding", (_D,), "The file is not UTF-8, or holds a character YAML forbids."),
    # -- YAML
    ("yaml-syntax", (_D,), "The text is not valid YAML (or uses an undefined/duplicate anchor)."),
    ("tab-indent", (_D,), "A line is indented with a tab; YAML indents with spaces."),
    ("empty", (_D,), "The file has no content."),
    ("not-mapping", (_D,), "The top level is not a mapping (a list, a string, a number)."),
    ("multiple-documents", (_D,), "The file holds more than one YAML document (`---`)."),
    ("duplicate-key", (_D,), "A mapping has the same key twice."),
    ("non-string-key", (_D,), "A mapping key is not a string (a number, a boolean, null)."),
    ("merge-key-unsupported", (_D,), "A merge key (`<<`) is used; write the keys out."),
    ("unsupported-tag", (_D,), "A YAML tag other than the standard ones it agrees with."),
    ("too-deep", (_D,), "Nesting (aliases included) is deeper than 64 levels."),
    ("alias-limit", (_D,), "Too many aliases, a too large alias expansion, or a recursive alias."),
    (
        "number-too-large",
        (_D,),
        "An integer has too many digits to convert, or does not fit in 64 bits.",
    ),
    (
        "yaml-ambiguous-bool",
        (_D,),
        "An unquoted yes/no/on/off: a boolean in YAML 1.1, a string here.",
    ),
    (
        "yaml-ambiguous-number",
        (_D,),
        "An unquoted value YAML 1.1 and wfctl read differently (1_000, 0b1, 0o17, 1e3).",
    ),
    (
        "yaml-ambiguous-octal",
        (_D,),
        "An unquoted number with a leading zero: octal in YAML 1.1, decimal here.",
    ),
    (
        "yaml-timestamp",
        (_D,),
        "An unquoted date or time: a timestamp in YAML 1.1, a string here.",
    ),
    ("yaml-non-finite", (_D,), "NaN or infinity, which JSON cannot hold."),
    # -- the JSON Schema
    ("schema", (_SC,), "The document does not match schemas/workflow.schema.json."),
    # -- semantic rules
    ("duplicate-step-id", (_SE,), "Two steps have the same step_id (nested steps included)."),
    ("self-dependency", (_SE,), "A step depends on itself or lists itself as a next step."),
    ("unknown-step", (_SE,), "A step id that names no step (dependencies, handlers, branches)."),
    ("subflow-not-found", (_SE,), "A `uses:` names a sub-workflow file that does not exist."),
    ("subflow-invalid", (_SE,), "A sub-workflow file has problems (listed at its own lines)."),
    ("subflow-cycle", (_SE,), "Sub-workflow calls lead back to a file through another file."),
    (
        "subflow-input",
        (_SE,),
        "A call's `with:` misfits the child's inputs: unknown, missing, type.",
    ),
    ("loop-body", (_SE,), "An approval, handler or tool step inside a loop's `steps:` body."),
    ("matrix", (_SE,), "A matrix's include or exclude entry that is not a mapping of values."),
    (
        "cross-level-reference",
        (_SE,),
        "dependencies or next_steps name a step at another nesting level.",
    ),
    ("else-not-last", (_SE,), "A conditional's branch without `when` is not the last one."),
    (
        "handler-has-dependencies",
        (_SE,),
        "A handler step (or a react tool's step) has dependencies.",
    ),
    ("cycle", (_SE,), "The dependencies form a cycle."),
    ("unreachable", (_SE,), "A step waits on a handler step, so it can never run."),
    ("expression-syntax", (_SE,), "An expression or template does not compile."),
    (
        "unknown-name",
        (_SE,),
        "An expression uses a name (or a `workflow.` attribute) not visible there.",
    ),
    (
        "not-upstream",
        (_SE,),
        "An expression reads a step that may not have run yet (not upstream, or itself).",
    ),
    ("secret-in-shell", (_SE,), "A secret is templated into a shell command."),
    ("duplicate-agent", (_SE,), "Two agents have the same name."),
    ("unknown-action", (_SE,), "An action name that is neither built in nor installed."),
    ("unknown-capability", (_SE,), "No agent provides the capability a step asks for."),
    (
        "invalid-json-schema",
        (_SE,),
        "A user JSON Schema (an input, input_validation, output_schema) is invalid.",
    ),
    ("input-default", (_SE,), "An input's default violates the input's own schema."),
    (
        "unbounded-pattern",
        (_SE,),
        "A user schema's `pattern` cannot be matched in linear time (lookaround, backreferences).",
    ),
    (
        "expression-limit",
        (_SE,),
        "An expression exceeds a resource limit on constants alone (a huge `range()`, power "
        "or repetition).",
    ),
    (
        "depends-trigger-rule",
        (_SE,),
        "A step has both `depends` and `trigger_rule`; `depends` decides alone.",
    ),
    (
        "recover-misuse",
        (_SE,),
        "`recover` on a step no error_handlers list names, or recover_output without it.",
    ),
    (
        "exit-step",
        (_SE,),
        "An on_exit step with dependencies, of a type other than action, or depended on.",
    ),
)

#: Code name -> Code, in the order the table in docs/FORMAT.md lists them.
CODES: Final[Mapping[str, Code]] = MappingProxyType(
    {name: Code(name, stages, meaning) for name, stages, meaning in _ENTRIES}
)
CODE_NAMES: Final[frozenset[str]] = frozenset(CODES)


def is_registered(name: str) -> bool:
    """Whether `name` is a registered diagnostic code."""
    return name in CODE_NAMES
