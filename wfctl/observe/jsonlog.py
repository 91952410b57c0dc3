"""`--log-format json`: one JSON object per event on a stream (stderr), for log shippers.

Each line is a whole object: `time` (ISO 8601 UTC), `level`, `event` (the event's kind),
`run_id`, then the event's own fields. Values are masked with the run's secrets once more
(outputs are masked by the engine already; an error message from an action may not be).
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from typing import IO, Any

from wfctl.events import CircuitChanged, Event, HandlerRan, RunFinished, StepStateChanged
from wfctl.model import StepStatus, WorkflowState
from wfctl.secrets import Masker

__all__ = ["JsonLog", "iso_time"]

_STEP_LEVELS = {StepStatus.FAILED: "error", StepStatus.RETRYING: "warning"}
_RUN_LEVELS = {
    WorkflowState.FAILED: "error",
    WorkflowState.TIMEOUT: "error",
    WorkflowState.CANCELLED: "warning",
}


def iso_time(ts: float) -> str:
    """`ts` (seconds since the epoch) as ISO 8601 UTC with milliseconds, `...Z`."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _finite(value: Any) -> Any:
    """`value` with non-finite floats as strings ("inf", "nan")."""
    match value:
        case float() if not math.isfinite(value):
            return str(value)
        case dict():
            return {k: _finite(v) for k, v in value.items()}
        case list() | tuple():
            return [_finite(v) for v in value]
    return value


def _level(event: Event) -> str:
    match event:
        case StepStateChanged():
            return _STEP_LEVELS.get(event.status, "info")
        case RunFinished():
            return _RUN_LEVELS.get(event.status, "info")
        case CircuitChanged(state="open"):
            return "warning"
        case HandlerRan(status=StepStatus.FAILED):
            return "error"
    return "info"


class JsonLog:
    """Event subscriber writing one masked JSON object per event, one per line."""

    def __init__(self, out: IO[str], masker: Masker | None = None) -> None:
        self.out = out
        self.masker = masker or Masker()

    def __call__(self, event: Event) -> None:
        fields = event.to_json()
        kind = fields.pop("kind")
        ts = fields.pop("ts")
        record = {"time": iso_time(ts), "level": _level(event), "event": kind}
        record["run_id"] = event.run_id
        record.update(fields)
        self.write(record)

    def write(self, record: dict[str, Any]) -> None:
        """One object as one line (masked), flushed: a shipper reads it at once."""
        data = self.masker.mask_data(record)
        try:
            line = json.dumps(data, default=str, allow_nan=False)
        except ValueError:  # NaN/Infinity from a step's output: strict parsers reject them
            line = json.dumps(_finite(data), default=str)
        self.out.write(line + "\n")
        self.out.flush()
