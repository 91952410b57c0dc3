"""The last lines a step wrote, per stream, for its latest attempt (why a step failed).

Lines arrive already masked (the shell action masks each one before it is reported), as
`StepOutputLine` events during a run and as `step_output` rows in the journal after it;
both feed the same `OutputTails`. A step's tail starts again with each attempt, so it
shows the attempt that failed, not a mix of retries.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from wfctl.model import StepStatus
from wfctl.state.output_cap import DROPPED_KIND

if TYPE_CHECKING:
    from wfctl.records import StepRecord

#: Lines of each stream kept for a failed step unless `--tail N` says otherwise.
TAIL_LINES: Final = 20
STREAMS: Final = ("stdout", "stderr")

# ANSI escape sequences (CSI such as colours, OSC such as hyperlinks and titles, and
# two-character escapes), then every other C0/C1 control character except tab.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def plain_text(text: str) -> str:
    """`text` without terminal escape sequences and control characters (tab and newline
    kept): what a log, an XML file or a CI page can show."""
    return _CONTROL.sub("", _ANSI.sub("", text))


@dataclass
class StepTail:
    """The last lines of one step's stdout and stderr, and how many lines each had."""

    size: int
    stdout: deque[str] = field(init=False)
    stderr: deque[str] = field(init=False)
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))
    # Lines of each stream the journal dropped from the head (its output cap).
    dropped: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STREAMS, 0))

    def __post_init__(self) -> None:
        self.stdout = deque(maxlen=self.size)
        self.stderr = deque(maxlen=self.size)

    def add(self, line: str, stream: str) -> None:
        """Keep `line` of `stream` ("stdout" or "stderr")."""
        (self.stderr if stream == "stderr" else self.stdout).append(line)
        self.counts["stderr" if stream == "stderr" else "stdout"] += 1

    def to_json(self) -> dict[str, Any]:
        """The report's `output_tail`: the kept lines and each stream's line count."""
        lines = {s: n + self.dropped[s] for s, n in self.counts.items()}
        return {"stdout": list(self.stdout), "stderr": list(self.stderr), "lines": lines}

    @property
    def empty(self) -> bool:
        return not (self.stdout or self.stderr)


class OutputTails:
    """Collects the tail of every step's output; `size` lines per stream (0: none)."""

    def __init__(self, size: int = TAIL_LINES) -> None:
        self.size = size
        self.steps: dict[str, StepTail] = {}
        self._attempts: dict[str, int] = {}  # step id -> the attempt its tail is of

    def _tail(self, step_id: str) -> StepTail:
        tail = self.steps.get(step_id)
        if tail is None:
            tail = self.steps[step_id] = StepTail(self.size)
        return tail

    def line(self, step_id: str, line: str, stream: str | None) -> None:
        """A line a step wrote; `stream` None means stdout (or the step's own words)."""
        self._tail(step_id).add(line, stream or "stdout")

    def restart(self, step_id: str, attempt: int = 0) -> None:
        """Attempt `attempt` of `step_id` began: forget what the earlier one wrote."""
        self.steps.pop(step_id, None)
        self._attempts[step_id] = attempt

    def dropped(self, marker: Mapping[str, Any]) -> None:
        """A `step_output_dropped` journal event: lines of the head the journal let go."""
        step_id = marker["step_id"]
        if marker.get("attempt", 0) == self._attempts.get(step_id, 0):
            stderr = int(marker.get("dropped_stderr_lines") or 0)
            total = int(marker.get("dropped_lines") or 0)
            self._tail(step_id).dropped.update(stdout=total - stderr, stderr=stderr)

    def feed_journal(self, events: Iterable[Mapping[str, Any]]) -> OutputTails:
        """Fold journal rows (`step_output` and `step_state` running) into the tails."""
        for e in events:
            match e.get("kind"):
                case "step_output":
                    self.line(e["step_id"], e.get("line", ""), e.get("stream"))
                case "step_state" if e.get("status") == "running":
                    self.restart(e["step_id"], int(e.get("attempt") or 0))
                case "step_output_dropped":
                    self.dropped(e)
        return self

    def report(self, step_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """`output_tail` of each of `step_ids` that wrote anything."""
        if not self.size:
            return {}
        return {s: t.to_json() for s in step_ids if (t := self.steps.get(s)) and not t.empty}


def tail_block(step_id: str, tail: Mapping[str, Any], indent: str = "  ") -> list[str]:
    """Lines showing a report's `output_tail` of `step_id` to a person, controls removed:

    `  build stderr (last 20 of 45 lines):` then each line after `  | `.
    """
    shown: list[str] = []
    for stream in STREAMS:
        lines = tail.get(stream) or []
        if not lines:
            continue
        total = (tail.get("lines") or {}).get(stream, len(lines))
        which = f" (last {len(lines)} of {total} lines)" if total > len(lines) else ""
        shown.append(f"{indent}{step_id} {stream}{which}:")
        shown += [f"{indent}| {plain_text(line)}" for line in lines]
    return shown


def truncations(events: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """The report's `output_truncated` of each step whose output lines the journal capped:
    what it dropped of them, every attempt together, from its `step_output_dropped` events
    (each is cumulative for its attempt: the last one counts)."""
    last: dict[tuple[str, int], Mapping[str, Any]] = {}
    for e in events:
        if e.get("kind") == DROPPED_KIND:
            last[(e["step_id"], int(e.get("attempt") or 0))] = e
    out: dict[str, dict[str, int]] = {}
    for (step_id, _), e in last.items():
        total = out.setdefault(step_id, {"dropped_lines": 0, "dropped_bytes": 0})
        total["dropped_lines"] += int(e.get("dropped_lines") or 0)
        total["dropped_bytes"] += int(e.get("dropped_bytes") or 0)
    return out


def failed_tails(
    events: Iterable[Mapping[str, Any]], records: Mapping[str, StepRecord], size: int = TAIL_LINES
) -> dict[str, dict[str, Any]]:
    """The `output_tail` of each failed step of `records` from journal rows; `events` is
    not read at all when no step failed."""
    failed = [k for k, r in records.items() if r.status is StepStatus.FAILED]
    if not failed or size <= 0:
        return {}
    return OutputTails(size).feed_journal(events).report(failed)
