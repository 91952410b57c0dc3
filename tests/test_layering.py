"""The package layout shows the flow, and no stage reaches back past its neighbours.

Every `import wfctl...` in the package (lazy ones inside functions included) is checked
against the packages its own package may use.
"""

from __future__ import annotations

import ast
from pathlib import Path

import wfctl

ROOT = Path(wfctl.__file__).parent

# package -> the wfctl packages it may import (besides itself).
_BASE = {"format"}
ALLOWED: dict[str, set[str]] = {
    "format": set(),
    "graph": set(),
    "secrets": set(),
    "expressions": _BASE | {"secrets"},
    "document": _BASE,
    "validate": _BASE | {"graph", "document", "expressions", "secrets"},
    "model": _BASE | {"graph", "document", "expressions", "validate"},
    "records": _BASE | {"model"},
    "events": _BASE | {"model", "records"},
    "compile": _BASE | {"graph", "model", "expressions"},
    "actions": _BASE | {"secrets", "expressions"},
    "state": _BASE | {"model", "records", "events"},
    "report": _BASE | {"model", "records", "events", "state", "secrets"},
    "view": _BASE | {"model", "records", "events", "report", "secrets", "graph"},
    # Traces, metrics, JSON logs: exporters on the event stream and the finished report.
    "observe": _BASE | {"model", "records", "events", "secrets", "report"},
    # Durable runs from Python: the engine over the journal (what the CLI's resume uses).
    "durable": _BASE | {"model", "records", "state", "report", "engine"},
    "engine": _BASE
    | {"graph", "model", "records", "events", "compile", "actions", "expressions", "secrets"}
    | {"state"},  # the runner subscribes the journal to the event stream
}
# The CLI and the package root (the public API) may use everything.
TOP = {"cli", "__init__", "__main__"}


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("wfctl.")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "wfctl":
                found += [(node.lineno, f"wfctl.{a.name}") for a in node.names]
            elif node.module.startswith("wfctl."):
                found.append((node.lineno, node.module))
    return found


def _violations() -> list[str]:
    bad: list[str] = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT.parent).with_suffix("")
        own = _package(".".join(rel.parts))
        if own in TOP:
            continue
        allowed = ALLOWED[own] | {own}
        for line, target in _imports(path):
            used = _package(target)
            if used == "__version__" or used in allowed:
                continue
            bad.append(f"{rel}.py:{line}: {own} imports {target}")
    return bad


def test_every_package_is_in_the_layer_table() -> None:
    packages = {
        p.stem if p.is_file() else p.name for p in ROOT.iterdir() if p.name != "__pycache__"
    }
    packages = {p for p in packages if not p.startswith(".") and p != "py"}
    assert packages - TOP - {"_schemas"} <= set(ALLOWED), packages - set(ALLOWED) - TOP


def test_no_stage_imports_a_later_one() -> None:
    assert _violations() == []


def test_state_and_validate_never_import_the_engine_or_actions() -> None:
    assert not ALLOWED["state"] & {"engine", "actions", "cli"}
    assert not ALLOWED["validate"] & {"engine", "actions", "model", "cli"}


def test_the_tests_mirror_the_packages() -> None:
    tests = Path(__file__).parent
    folders = {p.name for p in tests.iterdir() if p.is_dir() and any(p.glob("test_*.py"))}
    subpackages = {p.name for p in ROOT.iterdir() if (p / "__init__.py").is_file()}
    # tests/hostile/ (hostile inputs through the real CLI, the fuzz of the loader and
    # validator), tests/faults/ (fault injection across every stage) and tests/peers/ (other
    # engines' example workflows, translated, end to end) are cross-cutting on purpose
    # (issues 15, 12), not one package's tests.
    assert folders - {"hostile", "faults", "peers"} <= subpackages, folders - subpackages
    assert {"engine", "validate", "cli", "actions"} <= folders
