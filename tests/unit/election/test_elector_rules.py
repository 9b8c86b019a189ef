"""The classic Lease-election table, driven step by step with a fake clock and an in-memory CAS store."""

from __future__ import annotations

import logging
import threading

import pytest
from election_fakes import Fault, MemoryLeaseStore

from coordinator.core.lease_rules import ElectionConfig
from coordinator.edge.election import LeaderElector
from coordinator.edge.lease_store import Conflict, TransientError
from tests.support.clock import FakeClock, FakeWall
from tests.support.logs import events, has_event

CFG = ElectionConfig(15, 10, 2)


class Recorder:
    def __init__(self) -> None:
        self.events: list[str] = []

    def started(self) -> None:
        self.events.append("started")

    def stopped(self) -> None:
        self.events.append("stopped")

    def new_leader(self, who: str) -> None:
        self.events.append(f"leader={who}")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store() -> MemoryLeaseStore:
    return MemoryLeaseStore()


def make(store: MemoryLeaseStore, clock: FakeClock, identity: str = "memgraph-0",
         rec: Recorder | None = None) -> LeaderElector:
    rec = rec or Recorder()
    return LeaderElector(store, identity, CFG, on_started_leading=rec.started, on_stopped_leading=rec.stopped,
                         on_new_leader=rec.new_leader, clock=clock, wall=FakeWall(clock))


def foreign(store: MemoryLeaseStore, clock: FakeClock, holder: str = "memgraph-9",
            duration: int = 15) -> None:
    store.put_directly(holder=holder, lease_duration_s=duration, renew_time=FakeWall(clock)(),
                       acquire_time=FakeWall(clock)(), transitions=4)


def lead(store: MemoryLeaseStore, clock: FakeClock, rec: Recorder | None = None) -> LeaderElector:
    e = make(store, clock, rec=rec)
    e.step()
    e.notifier.drain()
    assert e.is_leader()
    return e


def test_empty_lease_is_created_and_we_lead_at_once(store, clock):
    rec = Recorder()
    e = make(store, clock, rec=rec)
    e.step()
    e.notifier.drain()
    assert e.is_leader() and e.leader_identity() == "memgraph-0"
    assert store.calls == {"get": 1, "create": 1}
    lease = store.record
    assert lease is not None and lease.holder == "memgraph-0" and lease.lease_duration_s == 15
    assert lease.transitions == 0 and lease.acquire_time == lease.renew_time is not None
    assert rec.events == ["leader=memgraph-0", "started"]


def test_own_lease_is_renewed_with_one_put_and_keeps_acquire_time(store, clock):
    e = lead(store, clock)
    first = store.record
    clock.advance(2)
    e.step()
    assert store.calls["replace"] == 1 and store.calls["get"] == 1
    assert store.record.renew_time > first.renew_time and store.record.acquire_time == first.acquire_time
    assert store.record.resource_version != first.resource_version
    assert e.lease_valid_for() == pytest.approx(10)


def test_foreign_unexpired_lease_is_not_taken(store, clock):
    foreign(store, clock)
    e = make(store, clock)
    for _ in range(8):  # 0 .. 14 s
        e.step()
        assert not e.is_leader()
        clock.advance(2)
    clock.now -= 1.01  # 14.99 s after the first observation
    e.step()
    assert not e.is_leader() and store.record.holder == "memgraph-9"
    assert store.calls["replace"] == 0 and e.leader_identity() == "memgraph-9"


def test_foreign_lease_taken_after_full_duration_unchanged(store, clock):
    foreign(store, clock)
    rec = Recorder()
    e = make(store, clock, rec=rec)
    e.step()
    clock.advance(15)
    e.step()
    e.notifier.drain()
    assert e.is_leader()
    assert store.record.holder == "memgraph-0" and store.record.transitions == 5
    assert store.record.acquire_time == FakeWall(clock)()
    assert rec.events == ["leader=memgraph-9", "leader=memgraph-0", "started"]


def test_takeover_waits_the_duration_written_in_the_lease_not_our_own(store, clock):
    foreign(store, clock, duration=30)
    e = make(store, clock)
    e.step()
    clock.advance(29.9)
    e.step()
    assert not e.is_leader()
    clock.advance(0.1)
    e.step()
    assert e.is_leader()


def test_foreign_renewals_keep_resetting_the_observation(store, clock):
    foreign(store, clock)
    e = make(store, clock)
    for _ in range(20):  # 40 s of a live foreign leader renewing every 2 s
        e.step()
        clock.advance(2)
        store.put_directly(renew_time=FakeWall(clock)())
    e.step()  # observes the last renewal now
    assert not e.is_leader()
    clock.advance(14)
    e.step()
    assert not e.is_leader()
    clock.advance(1)
    e.step()
    assert e.is_leader()


def test_remote_timestamps_are_never_compared_with_the_local_clock(store, clock):
    # renewTime far in the past (skewed writer): still a full duration of local observation.
    store.put_directly(holder="memgraph-9", lease_duration_s=15, renew_time=FakeWall(FakeClock(0))())
    e = make(store, clock)
    e.step()
    clock.advance(14)
    e.step()
    assert not e.is_leader()


def test_released_lease_is_claimed_at_once(store, clock):
    store.put_directly(holder="", lease_duration_s=1, transitions=3, annotations={"k": "v"})
    e = make(store, clock)
    e.step()
    assert e.is_leader()
    assert store.record.transitions == 4 and store.record.lease_duration_s == 15
    assert store.record.annotations == {"k": "v"}


def test_lease_naming_us_from_a_previous_run_is_reclaimed_without_a_transition(store, clock):
    store.put_directly(holder="memgraph-0", lease_duration_s=15, transitions=2)
    e = make(store, clock)
    e.step()
    assert e.is_leader() and store.record.transitions == 2


def test_conflict_on_claim_leaves_us_follower(store, clock):
    store.put_directly(holder="", lease_duration_s=1)
    store.faults.append(Fault("replace", hook=lambda: foreign(store, clock, holder="memgraph-2")))
    e = make(store, clock)
    e.step()
    assert not e.is_leader() and store.record.holder == "memgraph-2"
    e.step()  # next round reads the winner and starts a fresh observation
    assert e.leader_identity() == "memgraph-2" and not e.is_leader()


def test_create_conflict_rereads_and_follows_the_winner(store, clock):
    store.faults.append(Fault("get", error=_not_found(store)))
    store.faults.append(Fault("create", hook=lambda: foreign(store, clock, holder="memgraph-1")))
    e = make(store, clock)
    e.step()
    assert not e.is_leader() and e.leader_identity() == "memgraph-1"


def _not_found(store):
    from coordinator.edge.lease_store import NotFound

    return NotFound("not found", 404)


def test_conflict_on_renew_still_ours_stays_leader(store, clock):
    e = lead(store, clock)
    clock.advance(2)
    store.faults.append(Fault("replace", hook=lambda: store.put_directly(annotations={"x": "y"})))
    e.step()
    assert e.is_leader() and e.lease_valid_for() == pytest.approx(10)
    assert store.calls["replace"] == 2 and store.calls["get"] == 2  # 409, re-read, one retry
    assert store.record.holder == "memgraph-0" and store.record.annotations == {"x": "y"}


def test_conflict_on_renew_taken_by_another_steps_down_at_once(store, clock):
    rec = Recorder()
    e = lead(store, clock, rec)
    e.notifier.drain()
    clock.advance(2)
    store.faults.append(Fault("replace", hook=lambda: foreign(store, clock, holder="memgraph-2")))
    e.step()
    e.notifier.drain()
    assert not e.is_leader() and e.lease_valid_for() == 0
    assert rec.events[-2:] == ["stopped", "leader=memgraph-2"]
    assert store.record.holder == "memgraph-2"


def test_timeout_after_sending_renew_counts_when_reread_shows_our_write(store, clock):
    e = lead(store, clock)
    clock.advance(2)
    store.faults.append(Fault("replace", error=TransientError("read timed out", 0), after_apply=True))
    e.step()
    assert e.is_leader() and e.lease_valid_for() == pytest.approx(10)
    assert store.calls["replace"] == 1 and store.calls["get"] == 2


def test_timeout_before_applying_renew_is_not_a_success(store, clock):
    e = lead(store, clock)
    clock.advance(2)
    store.faults.append(Fault("replace", error=TransientError("read timed out", 0)))
    store.faults.append(Fault("replace", error=TransientError("read timed out", 0)))  # the retry too
    e.step()
    assert e.is_leader() and e.lease_valid_for() == pytest.approx(8)  # still from the renewal at t0


def test_forbidden_renew_is_retried_without_a_reread(store, clock, caplog):
    e = lead(store, clock)
    caplog.set_level(logging.WARNING, logger="coordinator.edge.election")
    for _ in range(2):
        clock.advance(2)
        store.faults.append(Fault("replace", error=TransientError("HTTP 403 Forbidden", 403)))
        e.step()
    assert e.is_leader() and store.calls["get"] == 1
    failed = events(caplog.records, "lease call failed")
    assert [(f["call"], f["attempt"]) for f in failed] == [("renew", 1), ("renew", 2)]
    assert all("Forbidden" in f["error"] for f in failed)
    clock.advance(2)
    e.step()
    assert e.lease_valid_for() == pytest.approx(10)


def test_api_down_past_renew_deadline_ends_leadership_even_with_a_stuck_call(store, clock):
    rec = Recorder()
    e = lead(store, clock, rec)
    e.notifier.drain()
    gate = threading.Event()
    clock.advance(2)
    store.faults.append(Fault("replace", error=TransientError("timed out", 0), block=gate))
    stuck = threading.Thread(target=e.step, daemon=True)
    stuck.start()
    try:
        clock.advance(7.99)  # 9.99 s after the last successful renewal started
        assert e.is_leader()
        clock.advance(0.01)
        assert not e.is_leader() and e.lease_valid_for() == 0
        e.notifier.drain()
        assert stuck.is_alive() and rec.events[-1] == "stopped"
    finally:
        gate.set()
        stuck.join(5)
    assert not e.is_leader()


def test_api_outage_longer_than_deadline_then_recovery_reclaims(store, clock, caplog):
    e = lead(store, clock)
    caplog.set_level(logging.WARNING, logger="coordinator.edge.election")
    store.down = TransientError("HTTP 503", 503)
    for _ in range(5):
        clock.advance(2)
        e.step()
        assert e.is_leader() == (clock.now < 1010)
    failed = "lease call failed"
    assert has_event(caplog.records, failed, call="renew", attempt=4, failing_s=6.0, lease_left_s=2.0)
    # at 10 s: no longer leader
    assert has_event(caplog.records, failed, call="read", attempt=5, failing_s=8.0, lease_left_s=0.0)
    store.down = None
    clock.advance(2)
    e.step()  # API back, nobody took over: the Lease still names us
    assert e.is_leader() and store.record.transitions == 0


def test_api_failing_for_says_how_long_the_lease_calls_have_failed(store, clock):
    e = lead(store, clock)
    assert e.api_failing_for() is None
    store.down = TransientError("HTTP 503", 503)
    clock.advance(2)
    e.step()  # the first failure starts the count
    clock.advance(3)
    e.step()
    assert e.api_failing_for() == 3.0  # the status page's api-server-unreachable warning
    store.down = None
    clock.advance(2)
    e.step()
    assert e.api_failing_for() is None


def test_seen_age_counts_from_the_last_read_or_write_of_the_lease(store, clock):
    follower = make(store, clock, identity="memgraph-1")
    assert follower.seen_age_s() is None  # never read: the guard has nothing to judge by
    foreign(store, clock)
    follower.step()
    clock.advance(1.5)
    assert follower.seen_age_s() == 1.5
    follower.step()  # a follower's read every retry period keeps its copy young
    assert follower.seen_age_s() == 0.0
    own = MemoryLeaseStore()
    e = lead(own, clock)
    own.down = TransientError("HTTP 503", 503)
    clock.advance(2)
    e.step()  # a failed renewal refreshes nothing: the copy ages (a frozen pod's ages the same way)
    assert e.seen_age_s() == 2.0
    own.down = None
    clock.advance(2)
    e.step()
    assert e.seen_age_s() == 0.0


def test_stop_releases_the_lease_keeping_record_and_transitions(store, clock):
    rec = Recorder()
    e = lead(store, clock, rec)
    assert e.update_annotations({"memgraph-ha.io/main": "memgraph-0"})
    e.stop()
    assert not e.is_leader() and rec.events[-1] == "stopped"
    lease = store.record
    assert lease.holder == "" and lease.lease_duration_s == 1 and lease.transitions == 0
    assert lease.annotations == {"memgraph-ha.io/main": "memgraph-0"}


def test_stop_without_release_leaves_the_lease_to_expire(store, clock):
    e = lead(store, clock)
    e.stop(release=False)
    assert not e.is_leader() and store.record.holder == "memgraph-0"


def test_follower_stop_does_not_touch_the_lease(store, clock):
    foreign(store, clock)
    e = make(store, clock)
    e.step()
    e.stop()
    assert store.calls["replace"] == 0 and store.record.holder == "memgraph-9"


def test_transitions_count_every_change_of_holder(store, clock):
    a, b = make(store, clock, "memgraph-0"), make(store, clock, "memgraph-1")
    a.step()
    b.step()
    assert store.record.transitions == 0
    clock.advance(15)  # a stopped renewing (crash)
    b.step()
    assert b.is_leader() and store.record.transitions == 1
    b.stop()  # release: holder "" keeps the count
    assert store.record.transitions == 1
    a.step()
    assert a.is_leader() and store.record.transitions == 2


@pytest.mark.parametrize("timings", [(15, 15, 2), (10, 15, 2), (15, 10, 10), (15, 10, 12), (0, 10, 2),
                                     (15, -1, 2), (15, 10, 0), (float("nan"), 10, 2)])
def test_invalid_timings_are_rejected(timings):
    with pytest.raises(ValueError, match="must be"):
        ElectionConfig(*timings)


def test_request_timeout_must_be_shorter_than_retry_period(clock):
    with pytest.raises(ValueError, match="request timeout"):
        LeaderElector(MemoryLeaseStore(request_timeout=2.0), "memgraph-0", CFG, clock=clock)


def test_defaults_are_15_10_2():
    assert ElectionConfig() == ElectionConfig(15, 10, 2)


def test_steady_state_costs_one_request_per_retry_period(store, clock):
    leader, follower = make(store, clock, "memgraph-0"), make(store, clock, "memgraph-1")
    leader.step()
    follower.step()
    before = dict(store.calls)
    for _ in range(30):  # one minute
        clock.advance(2)
        leader.step()
        follower.step()
    spent = {k: store.calls[k] - before.get(k, 0) for k in store.calls}
    assert spent == {"replace": 30, "get": 30, "create": 0}
    assert leader.is_leader() and not follower.is_leader()


def test_annotations_survive_renewals_and_a_takeover(store, clock):
    a = lead(store, clock)
    assert a.update_annotations({"memgraph-ha.io/main": "memgraph-2", "memgraph-ha.io/generation": "3"})
    for _ in range(5):
        clock.advance(2)
        a.step()
    assert store.record.annotations["memgraph-ha.io/generation"] == "3"
    b = make(store, clock, "memgraph-1")
    b.step()
    clock.advance(15)
    b.step()
    assert b.is_leader() and b.read_record()[0]["memgraph-ha.io/main"] == "memgraph-2"


def test_update_annotations_sets_and_removes_and_counts_as_renewal(store, clock):
    e = lead(store, clock)
    assert e.update_annotations({"a": "1", "b": "2"})
    clock.advance(3)
    assert e.update_annotations({"a": None, "c": "3"})
    assert store.record.annotations == {"b": "2", "c": "3"}
    assert e.lease_valid_for() == pytest.approx(10)
    assert e.read_record() == ({"b": "2", "c": "3"}, store.record.resource_version)


def test_update_annotations_conflict_rereads_and_retries_while_ours(store, clock):
    e = lead(store, clock)
    store.faults.append(Fault("replace", hook=lambda: store.put_directly(annotations={"other": "x"})))
    assert e.update_annotations({"a": "1"})
    assert store.record.annotations == {"other": "x", "a": "1"}
    assert store.calls["replace"] == 2


def test_update_annotations_gives_up_after_bounded_conflicts(store, clock):
    e = lead(store, clock)
    for i in range(3):
        store.faults.append(Fault("replace", hook=lambda i=i: store.put_directly(annotations={"n": str(i)})))
    assert not e.update_annotations({"a": "1"})
    assert "a" not in store.record.annotations and store.calls["replace"] == 3


def test_update_annotations_refused_once_the_lease_names_another(store, clock):
    e = lead(store, clock)
    store.faults.append(Fault("replace", hook=lambda: foreign(store, clock, holder="memgraph-2")))
    assert not e.update_annotations({"a": "1"})
    assert not e.is_leader() and "a" not in store.record.annotations


def test_update_annotations_refused_when_not_leader(store, clock):
    foreign(store, clock)
    e = make(store, clock)
    e.step()
    assert not e.update_annotations({"a": "1"})
    assert store.calls["replace"] == 0


def test_update_annotations_refused_after_the_renew_deadline(store, clock):
    e = lead(store, clock)
    clock.advance(10)
    assert not e.update_annotations({"a": "1"})
    assert store.calls["replace"] == 0


def test_update_annotations_conflict_error_from_store_is_typed(store, clock):
    e = lead(store, clock)
    store.faults.append(Fault("replace", error=Conflict("conflict", 409)))
    assert e.update_annotations({"a": "1"})  # re-read shows the Lease still ours: one retry
    assert store.record.annotations == {"a": "1"}


def test_follower_reads_the_record_with_a_get(store, clock):
    store.put_directly(holder="memgraph-9", lease_duration_s=15, annotations={"m": "1"})
    e = make(store, clock)
    assert e.read_record() == ({"m": "1"}, store.record.resource_version)
    assert store.calls["get"] == 1


def test_timeout_after_sending_create_counts_when_reread_shows_our_lease(store, clock):
    store.faults.append(Fault("create", error=TransientError("timed out", 0), after_apply=True))
    e = make(store, clock)
    e.step()
    assert e.is_leader() and store.calls["get"] == 2


def test_slow_started_callback_never_delays_renewals(store, clock):
    gate = threading.Event()
    started = threading.Event()

    def slow_start() -> None:
        started.set()
        gate.wait(5)

    e = LeaderElector(store, "memgraph-0", CFG, on_started_leading=slow_start, clock=clock,
                      wall=FakeWall(clock))
    e.notifier.start()
    try:
        e.step()
        assert started.wait(5)  # the callback runs, and blocks, on the notifier thread
        for _ in range(3):
            clock.advance(2)
            e.step()
        assert e.is_leader() and store.calls["replace"] == 3
    finally:
        gate.set()
        e.stop(timeout_s=2)
