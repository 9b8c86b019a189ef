"""Fake time for tests of timing logic: a monotonic clock that moves only when the test says so.

`FakeClock` is the one fake monotonic clock of the test suite: call it for the time, `advance(s)` to move
it, and pass `clock.sleep` where the code under test sleeps (a fake sleep advances the clock, so a wait
loop ends after exactly the time it would take, in no real time). `FakeWall` is a UTC wall clock tied
to a FakeClock (for code that stamps wall-clock times, e.g. a Lease's renewTime).
"""

from __future__ import annotations

import datetime as dt

DEFAULT_START = 1000.0  # far from 0 so "never happened" sentinels (-1e9, 0.0) stay distinguishable


class FakeClock:
    """Monotonic seconds that move only through `advance` (or `sleep`)."""

    def __init__(self, start: float = DEFAULT_START) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock never goes back ({seconds}s)")
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        """A sleep that takes no real time: the clock moves by `seconds` (never backwards)."""
        self.advance(max(0.0, seconds))


class FakeWall:
    """A UTC wall clock tied to a FakeClock (starts at a whole second: microseconds 0 on purpose)."""

    def __init__(self, clock: FakeClock, base: dt.datetime | None = None) -> None:
        self._clock = clock
        self._base = base or dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self._base + dt.timedelta(seconds=self._clock.now)
