"""The time and allocation budget of one evaluation, checked while it runs.

Size caps on single operations (``_limits``) do not bound a whole evaluation: a loop of
100,000 iterations, each copying a megabyte, or ``map('upper')`` over a million
references to one long string, each stays under every per-operation cap and still ran
for minutes or took gigabytes (issue 15). A pure-Python evaluation never yields to the
event loop either, so neither a step's timeout nor Ctrl-C could stop it.

So every metered operation (each filter call, method call, checked operator and
``{% for %}`` iteration) adds to a counter of work here, one per operation plus the
characters of the strings and the items of the lists it produced. Past
``MAX_ALLOCATION`` the evaluation stops; every ``_CHECK_EVERY`` units the clock is read:
past ``MAX_EVALUATION_SECONDS`` (or the deadline of the enclosing anyio cancel scope,
i.e. the step's own timeout, when that is sooner) the evaluation stops with a limit
error. From that first clock check on, SIGINT and SIGTERM are also noted here (the
previous handler still runs, so the event loop sees them too) and stop the evaluation.

A cheap evaluation -- the common case on the engine's hot path -- pays a reset per
evaluation and one counter increment per metered operation; it never reads the clock.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Final

from wfctl.expressions._errors import LimitExceeded

__all__ = [
    "MAX_ALLOCATION",
    "MAX_EVALUATION_SECONDS",
    "allocate",
    "end",
    "metered",
    "start",
    "tick",
    "ticking",
    "time_limit",
]

#: Wall-clock seconds one evaluation may take (a step's sooner timeout wins).
MAX_EVALUATION_SECONDS: Final = 5.0
#: Characters of strings plus items of lists (plus metered operations) one evaluation
#: may produce in total.
MAX_ALLOCATION: Final = 50_000_000
# Read the clock every this much work (operations, characters, items).
_CHECK_EVERY: Final = 1024
_SIGNALS: Final = (signal.SIGINT, signal.SIGTERM)


class _State:
    """The budget of the evaluation in progress.

    One per process, not per thread: expressions are evaluated on the event loop's
    thread (threads would only share, and so loosen, a budget -- never fail one).
    ``work`` counts metered operations plus the characters and items they produced; the
    slow checks run when it passes ``checkpoint``, so a metered call costs one addition
    and one comparison.
    """

    __slots__ = ("checkpoint", "deadline", "interrupted", "previous", "seconds", "started", "work")

    def __init__(self) -> None:
        self.work = 0
        self.checkpoint = _CHECK_EVERY
        self.started = 0.0
        self.deadline: float | None = None
        self.interrupted: str | None = None
        self.previous: dict[int, Any] | None = None  # signal handlers replaced while hooked
        self.seconds = MAX_EVALUATION_SECONDS  # this evaluation's cap (a sooner step timeout)


_state: Final = _State()


class _Signals:
    """SIGINT/SIGTERM noted at delivery, for the whole run (see :func:`watching_signals`).

    A signal asyncio has queued but not yet handled (it reads its wakeup fd only between
    callbacks) must still stop an evaluation that began meanwhile; once the run has
    handled it (`handled`), later evaluations (exit hooks, rollbacks) run normally.
    """

    received = 0
    handled = 0


def watching_signals() -> Callable[[], None]:
    """Note SIGINT/SIGTERM as they arrive (wrapping the handlers now installed) until the
    returned undo is called; main thread only (elsewhere: a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous: dict[int, Any] = {}
    for signum in _SIGNALS:
        old = signal.getsignal(signum)
        if callable(old):
            previous[signum] = old
            signal.signal(signum, _counting(old))

    def undo() -> None:
        for signum, old in previous.items():
            signal.signal(signum, old)

    return undo


def _counting(old: Callable[..., Any]) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        _Signals.received += 1
        old(signum, frame)

    return handler


def signal_pending() -> bool:
    """A SIGINT/SIGTERM has arrived that the run has not acted on yet."""
    return _Signals.received > _Signals.handled


def signal_handled() -> None:
    """The run has acted on every signal so far (its cancellation has begun)."""
    _Signals.handled = _Signals.received


def start() -> None:
    """A new evaluation begins (resets the budget)."""
    state = _state
    state.work = 0
    state.checkpoint = _CHECK_EVERY
    state.started = time.monotonic()
    state.deadline = None


def end() -> None:
    """The evaluation is over: give the signal handlers back if they were hooked."""
    state = _state
    if state.previous is not None:
        _unhook(state)


def tick() -> None:
    """One metered operation."""
    state = _state
    state.work += 1
    if state.work > state.checkpoint:
        _check(state)


def allocate(size: int) -> None:
    """Account for `size` characters or items the evaluation just produced."""
    state = _state
    state.work += size
    if state.work > state.checkpoint:
        _check(state)


def _check(state: _State) -> None:
    """The slow checks: work done, a signal, the clock; then the next checkpoint."""
    if state.interrupted is not None:
        raise LimitExceeded(f"evaluation interrupted ({state.interrupted})")
    if _Signals.received > _Signals.handled:
        raise LimitExceeded("evaluation interrupted (a signal)")
    if state.work > MAX_ALLOCATION:
        raise LimitExceeded(
            f"evaluation produced more than {MAX_ALLOCATION:,} characters and items in total"
        )
    now = time.monotonic()
    if state.deadline is None:
        state.deadline = _deadline(state.started)
        _hook(state)
    if now > state.deadline:
        raise LimitExceeded(
            f"evaluation took longer than {state.deadline - state.started:.3g} s (the step's "
            f"timeout, or at most {MAX_EVALUATION_SECONDS:g} s per evaluation)"
        )
    state.checkpoint = state.work + _CHECK_EVERY


def _deadline(started: float) -> float:
    """The evaluation cap, or the enclosing cancel scope's deadline when sooner."""
    deadline = started + _state.seconds
    anyio = sys.modules.get("anyio")  # only if the engine is running: never import it
    if anyio is not None:
        try:
            scope_deadline = float(anyio.current_effective_deadline())
        except Exception:  # no event loop in this thread (validation, a worker thread)
            return deadline
        # anyio's clock on asyncio is the loop's, time.monotonic().
        deadline = min(deadline, scope_deadline)
    return deadline


def _hook(state: _State) -> None:
    """From now on, note SIGINT/SIGTERM here too (main thread only: Python's rule)."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous: dict[int, Any] = {}
    for signum in _SIGNALS:
        old = signal.getsignal(signum)
        if not callable(old):
            continue  # SIG_DFL / SIG_IGN: the default action happens anyway
        previous[signum] = old
        signal.signal(signum, _noting(old))
    state.previous = previous


def _noting(old: Callable[..., Any]) -> Callable[[int, Any], None]:
    def handler(signum: int, frame: Any) -> None:
        _state.interrupted = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        old(signum, frame)  # asyncio's no-op (its wakeup fd still saw the signal), or Python's

    return handler


def _unhook(state: _State) -> None:
    previous, state.previous = state.previous or {}, None
    state.interrupted = None
    for signum, old in previous.items():
        signal.signal(signum, old)


class time_limit:  # a context manager, named like a function
    """Evaluations inside take at most `seconds` each (a step's timeout; None: the cap)."""

    __slots__ = ("_saved", "_seconds")

    def __init__(self, seconds: float | None) -> None:
        self._seconds = seconds
        self._saved = MAX_EVALUATION_SECONDS

    def __enter__(self) -> None:
        state = _state
        self._saved = state.seconds
        if self._seconds is not None:
            state.seconds = min(self._saved, self._seconds)

    def __exit__(self, *exc: object) -> None:
        _state.seconds = self._saved


def metered(func: Callable[..., Any]) -> Callable[..., Any]:
    """`func` (a filter or method) with a tick per call and its result's size accounted."""

    state = _state

    def call(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        # tick() and allocate(), inlined: this is on every filter call.
        state.work += len(result) + 1 if type(result) in _SIZED else 1
        if state.work > state.checkpoint:
            _check(state)
        return result

    # Jinja reads how to call a filter (context, environment...) from this attribute.
    call.__dict__.update(getattr(func, "__dict__", {}))
    call.__name__ = getattr(func, "__name__", "filter")
    call.__doc__ = func.__doc__
    return call


_SIZED: Final = frozenset({str, list, tuple, dict})


class ticking(Iterable[Any]):  # named like the function it stands for
    """A ``{% for %}`` iterable that ticks on every iteration (and keeps its length)."""

    __slots__ = ("_items",)

    def __init__(self, items: Any) -> None:
        self._items = items

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[Any]:
        state = _state
        for item in self._items:
            state.work += 1  # tick(), inlined: this is on every iteration
            if state.work > state.checkpoint:
                _check(state)
            yield item
