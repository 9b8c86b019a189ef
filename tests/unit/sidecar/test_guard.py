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
