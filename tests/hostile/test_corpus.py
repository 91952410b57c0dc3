"""The hostile corpus (issue 15): each file in tests/hostile/corpus/ is run through the real
CLI and must end as its header says.

A corpus file starts with comment lines:

    # hostile: what it tries
    # run: run {file} --json -i x=1     (wfctl's arguments; {file} is the corpus file)
    # exit: 2                            (the exit code)
    # expect: text                       (in stdout or stderr; as many lines as needed)
    # absent: text                       (in neither)
    # stored-absent: text                (in no file the run left: journal, checkpoints,
                                          reports)

Whatever the file, the output never holds a traceback, an internal error, or a raw
control character (escape sequences from the workflow are printed escaped).
"""

from __future__ import annotations

import re
import shlex
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cli_helpers import wfctl

CORPUS = Path(__file__).parent / "corpus"
_HEADER = re.compile(r"^# (hostile|run|exit|expect|absent|stored-absent): (.*)$")
# Raw control characters other than newline and tab (the plain log uses neither colour
# nor cursor movement: a raw ESC can only come from the workflow).
_RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@dataclass
class Case:
    """What one corpus file says about itself."""

    path: Path
    what: str = ""
    args: list[str] = field(default_factory=list)
    exit: int | None = None
    expect: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    stored_absent: list[str] = field(default_factory=list)


def read_case(path: Path) -> Case:
    """The header of a corpus file."""
    case = Case(path)
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _HEADER.match(line)
        if match is None:
            break
        key, value = match.groups()
        if key == "hostile":
            case.what = value
        elif key == "run":
            case.args = shlex.split(value)
        elif key == "exit":
            case.exit = int(value)
        else:
            getattr(case, key.replace("-", "_")).append(value)
    return case


CASES = sorted(CORPUS.glob("*.yaml"))


def test_every_corpus_file_says_what_it_expects() -> None:
    assert len(CASES) >= 10
    for path in CASES:
        case = read_case(path)
        assert case.what and case.args and case.exit is not None, path.name
        assert case.expect or case.absent, path.name


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_hostile_input_ends_as_its_header_says(path: Path, tmp_path: Path) -> None:
    case = read_case(path)
    shutil.copy(path, tmp_path / path.name)
    args = [arg.replace("{file}", path.name) for arg in case.args]
    run = wfctl(args, tmp_path, timeout=120)
    output = run.stdout + run.stderr
    assert run.rc == case.exit, f"{case.what}\n{run}"
    for text in case.expect:
        assert text in output, f"{case.what}: {text!r} not in the output\n{run}"
    for text in case.absent:
        assert text not in output, f"{case.what}: {text!r} in the output\n{run}"
    assert "Traceback" not in output and "internal error" not in output, str(run)
    raw = _RAW_CONTROL.search(output)
    assert raw is None, f"raw control character {raw.group()!r} in the output\n{run}"
    stored = [p for p in (tmp_path / ".wfctl").rglob("*") if p.is_file()]
    if case.stored_absent:
        assert stored, "the run left no journal"
    for text in case.stored_absent:
        found = [p.name for p in stored if text.encode() in p.read_bytes()]
        assert not found, f"{case.what}: {text!r} stored in {found}"
