"""CrashLoopBackOff as the kubelet applies it (sim/backoff.py), on explicit times."""

from __future__ import annotations

import random

import pytest

from sim.backoff import BackoffTimings, CrashLoopBackOff
from sim.timescale import TimeScale

NO_JITTER = BackoffTimings(jitter=0.0)


def restart_delays(crash_after_s: float, crashes: int, timings: BackoffTimings = NO_JITTER) -> list[float]:
    """A container that exits `crash_after_s` after every start: the delay from each exit to the next
    start, syncing the pod exactly when the kubelet's requeue says."""
    b = CrashLoopBackOff(timings, random.Random(1))
    now, delays = 0.0, []
    for _ in range(crashes):
        finished = now + crash_after_s
        sync_at: float | None = finished
        for _ in range(50):  # bounded: a sync per resync interval at most
            if sync_at is None:
                break
            now = sync_at
            sync_at = b.sync(now, finished)
        assert sync_at is None, "no restart within 50 syncs"
        delays.append(now - finished)
    return delays


def test_first_restart_is_immediate_then_10_20_40_up_to_300_seconds() -> None:
    assert restart_delays(1.0, 9) == [0.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 300.0]


def test_back_off_resets_after_ten_minutes_of_running() -> None:
    b = CrashLoopBackOff(NO_JITTER)
    assert b.sync(1.0, 1.0) is None  # first exit: started at once, entry 10 s
    assert b.sync(2.0, 2.0) is not None  # exit 1 s later: in back-off
    assert b.sync(12.0, 2.0) is None  # started at 12 s, back-off now 20 s
    # ran 601 s (> 2 x 300 s since the last restart): the entry expired, start at once, 10 s again
    assert b.sync(613.0, 613.0) is None
    assert b.current_s() == 10.0


def test_a_container_that_ran_less_than_ten_minutes_keeps_its_back_off() -> None:
    b = CrashLoopBackOff(NO_JITTER)
    b.sync(0.0, 0.0)
    assert b.sync(10.0, 0.5) is not None  # 9.5 s after the exit: still backing off
    assert b.sync(10.5, 0.5) is None
    assert b.current_s() == 20.0
    assert b.sync(500.0, 500.0) is not None  # ran 490 s: still in back-off, 20 s from the exit


def test_requeue_waits_for_the_back_off_expiry_capped_at_the_resync_interval() -> None:
    b = CrashLoopBackOff(BackoffTimings(jitter=0.0, resync_s=60.0))
    for _ in range(7):
        b.next(0.0, 0.0)
    assert b.current_s() == 300.0
    assert b.sync(1.0, 1.0) == 61.0  # 300 s left: the worker looks again after 60 s


def test_jitter_only_delays_a_restart_by_at_most_half_the_wait() -> None:
    timings = BackoffTimings(jitter=0.5)
    for seed in range(20):
        b = CrashLoopBackOff(timings, random.Random(seed))
        b.sync(0.0, 0.0)
        again = b.sync(1.0, 1.0)
        assert again is not None and 11.0 <= again < 1.0 + 10.0 * 1.5


def test_scaled_timings_keep_the_doubling() -> None:
    t = NO_JITTER.scaled(TimeScale(0.1))
    assert (t.initial_s, t.max_s, t.relist_s) == (1.0, 30.0, 0.1)
    assert restart_delays(0.1, 4, t) == pytest.approx([0.0, 1.0, 2.0, 4.0])
