"""agent.guard: when the local MAIN is demoted (I1/I2), and when it is left alone (I7)."""

from __future__ import annotations

import pytest

from agent.guard import Guard, should_demote
from coordinator.core.model import ClusterRecord, Role

ME = "memgraph-1"


@pytest.mark.parametrize(
    ("role", "record", "demote"),
    [
        (Role.MAIN, ClusterRecord(main="memgraph-0", generation=3), True),  # restarted old MAIN / fresh pod
        (Role.MAIN, ClusterRecord(main=ME), False),  # we are the designated MAIN
        (Role.MAIN, ClusterRecord(main=""), False),  # before bootstrap: nobody is designated yet
        (Role.MAIN, None, False),  # record never read (API down since start): I7, leave the MAIN alone
        (Role.REPLICA, ClusterRecord(main="memgraph-0"), False),
        (None, ClusterRecord(main="memgraph-0"), False),  # local Memgraph unreachable: nothing to demote
    ],
    ids=["rogue-main", "designated", "no-main-yet", "no-record", "replica", "unreachable"],
)
def test_should_demote_table(role: Role | None, record: ClusterRecord | None, demote: bool) -> None:
    reason = should_demote(role, record, ME)
    assert bool(reason) is demote
    if demote:
        assert "memgraph-0" in reason and "generation 3" in reason


def test_guard_demotes_a_rogue_main_once_per_interval() -> None:
    now = [0.0]
    calls: list[int] = []
    guard = Guard(ME, lambda: calls.append(1), min_interval_s=1.0, clock=lambda: now[0])
    rogue = ClusterRecord(main="memgraph-0")
    assert guard.check(Role.MAIN, rogue)
    assert not guard.check(Role.MAIN, rogue)  # within the interval: no tight demotion loop
    now[0] = 1.5
    assert guard.check(Role.MAIN, rogue)
    assert calls == [1, 1] and guard.demotions == 2


def test_a_fresh_record_naming_this_pod_prevents_demoting_a_just_promoted_main() -> None:
    # the switchover wrote main=ME and promoted us; our in-memory copy still names the old MAIN
    calls: list[int] = []
    guard = Guard(ME, lambda: calls.append(1), confirm=lambda: ClusterRecord(main=ME, generation=5))
    assert not guard.check(Role.MAIN, ClusterRecord(main="memgraph-0", generation=4))
    assert calls == []


def test_an_unreadable_fresh_record_postpones_the_demotion() -> None:
    calls: list[int] = []
    guard = Guard(ME, lambda: calls.append(1), confirm=lambda: None)
    assert not guard.check(Role.MAIN, ClusterRecord(main="memgraph-0"))
    assert calls == []


def test_a_failed_demotion_is_reported_not_raised() -> None:
    def boom() -> None:
        raise RuntimeError("bolt down")

    guard = Guard(ME, boom)
    assert not guard.check(Role.MAIN, ClusterRecord(main="memgraph-0"))
    assert guard.demotions == 0


class _Reads:
    """A fresh-read stub: answers `record` and counts the reads (each one is an API request)."""

    def __init__(self, record: ClusterRecord | None) -> None:
        self.record, self.count = record, 0

    def __call__(self) -> ClusterRecord | None:
        self.count += 1
        return self.record


def _stale_guard(reads: _Reads, age: float | None, calls: list[int]) -> Guard:
    return Guard(ME, lambda: calls.append(1), confirm=reads, record_age=lambda: age, stale_after_s=4.0)


@pytest.mark.parametrize(
    ("role", "age", "fresh", "reads", "demoted"),
    [
        # thawed after a node freeze: the copy still names us, the fresh record names the promoted pod
        (Role.MAIN, 60.0, ClusterRecord(main="memgraph-0", generation=9), 1, True),
        (Role.MAIN, 60.0, ClusterRecord(main=ME, generation=8), 1, False),  # still ours: left alone
        (Role.MAIN, 60.0, None, 1, False),  # API server unreachable: I7, the MAIN is left alone
        (Role.MAIN, 1.0, ClusterRecord(main="memgraph-0"), 0, False),  # a recent copy: no API request
        (Role.MAIN, None, ClusterRecord(main="memgraph-0"), 0, False),  # never read: nothing to judge
        (Role.REPLICA, 60.0, ClusterRecord(main="memgraph-0"), 0, False),  # nothing to demote
    ],
    ids=["thawed-main", "still-ours", "api-down", "recent-copy", "never-read", "replica"],
)
def test_an_old_copy_naming_this_pod_is_confirmed_afresh_before_it_is_trusted(
    role: Role, age: float | None, fresh: ClusterRecord | None, reads: int, demoted: bool
) -> None:
    calls: list[int] = []
    read = _Reads(fresh)
    guard = _stale_guard(read, age, calls)
    assert guard.check(role, ClusterRecord(main=ME, generation=8)) is demoted
    assert read.count == reads
    assert calls == ([1] if demoted else [])


def test_an_old_copy_that_cannot_be_read_afresh_is_retried_once_per_interval_and_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    read, calls = _Reads(None), []
    guard = Guard(ME, lambda: calls.append(1), clock=lambda: now[0], confirm=read,
                  record_age=lambda: 60.0, stale_after_s=4.0)
    mine = ClusterRecord(main=ME)
    with caplog.at_level("INFO", logger="agent.guard"):
        for t in (0.0, 0.5, 1.0, 2.0, 3.0):
            now[0] = t
            assert not guard.check(Role.MAIN, mine)
    assert read.count == 4  # 0.5 is within the interval
    assert calls == []
    assert sum("could not be read afresh" in r.getMessage() for r in caplog.records) == 1
    read.record = ClusterRecord(main="memgraph-2", generation=10)  # the API server answers again
    now[0] = 4.0
    assert guard.check(Role.MAIN, mine)
    assert calls == [1]


def test_a_failed_demotion_is_tried_again_at_the_next_check_not_an_interval_later() -> None:
    # a refused demotion (a commit in flight kept refusing, or the pooled connection was dead) must not
    # leave a MAIN the record does not name running for another interval
    now, tries = [0.0], []

    def flaky() -> None:
        tries.append(now[0])
        if len(tries) == 1:
            raise RuntimeError("defunct connection")

    guard = Guard(ME, flaky, min_interval_s=1.0, clock=lambda: now[0])
    rogue = ClusterRecord(main="memgraph-0")
    assert not guard.check(Role.MAIN, rogue)
    now[0] = 0.5
    assert guard.check(Role.MAIN, rogue)
    assert tries == [0.0, 0.5] and guard.demotions == 1
