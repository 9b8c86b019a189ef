"""Bounded waits for tests that watch real processes and threads (fake time has no need of them).

`wait_until(pred, timeout_s, what)` polls until `pred()` is truthy and returns that value, or fails the
test naming `what`; `waited(...)` does the same and also says when and after how long it held;
`poll(...)` never fails: it returns None when the time ran out (for tests that assert on timing).
Every loop here is bounded in time and in rounds; exceptions of `pred` fail the test at once unless the
caller names them in `ignore` (a process that is still starting refuses connections, say).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_INTERVAL_S = 0.02


@dataclass(frozen=True)
class Waited(Generic[T]):
    """A condition that held: its value, the monotonic time it was seen and how long the wait took."""

    value: T
    at: float
    elapsed_s: float


def _poll(
    pred: Callable[[], T], timeout_s: float, interval_s: float, ignore: tuple[type[BaseException], ...]
) -> tuple[Waited[T] | None, BaseException | None]:
    start = time.monotonic()
    last_error: BaseException | None = None
    for _ in range(math.ceil(timeout_s / interval_s) + 1):
        now = time.monotonic()
        out_of_time = now - start >= timeout_s
        try:
            value: T | None = pred()
        except ignore as exc:
            value, last_error = None, exc
        if value:
            return Waited(value, now, now - start), None
        if out_of_time:
            break
        time.sleep(min(interval_s, max(0.0, timeout_s - (time.monotonic() - start))))
    return None, last_error


def poll(
    pred: Callable[[], T],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    interval_s: float = DEFAULT_INTERVAL_S,
    ignore: tuple[type[BaseException], ...] = (),
) -> Waited[T] | None:
    """`pred()` every `interval_s` until truthy (then a Waited); None after `timeout_s` and one last try."""
    return _poll(pred, timeout_s, interval_s, ignore)[0]


def waited(
    pred: Callable[[], T],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    what: str = "condition",
    interval_s: float = DEFAULT_INTERVAL_S,
    ignore: tuple[type[BaseException], ...] = (),
) -> Waited[T]:
    """Like `poll`, but a condition that never held fails the test (AssertionError naming `what` and the
    last ignored error)."""
    result, last_error = _poll(pred, timeout_s, interval_s, ignore)
    if result is None:
        tail = f" (last error: {type(last_error).__name__}: {last_error})" if last_error else ""
        raise AssertionError(f"{what} not reached within {timeout_s}s{tail}")
    return result


def wait_until(
    pred: Callable[[], T],
    timeout_s: float = DEFAULT_TIMEOUT_S,
    what: str = "condition",
    interval_s: float = DEFAULT_INTERVAL_S,
    ignore: tuple[type[BaseException], ...] = (),
) -> T:
    """The truthy value of `pred()` once it holds; the test fails (naming `what`) after `timeout_s`."""
    return waited(pred, timeout_s, what, interval_s, ignore).value
